/* rusage: run a command and report its wall time, CPU time and peak RSS.
 *
 *   rusage OUTFILE COMMAND [ARG]...
 *
 * Writes one line to OUTFILE once COMMAND has exited:
 *
 *   wall_ns=<ns> user_us=<us> sys_us=<us> maxrss_kib=<KiB> status=<code>
 *
 * and exits with COMMAND's exit code (128 + signal if it was killed).
 * Peak RSS is wait4's ru_maxrss: the largest of COMMAND and the
 * descendants it waited for.  If RUSAGE_LD_PRELOAD is set, COMMAND gets it
 * as LD_PRELOAD: the allocator under test is loaded into the command, not
 * into this process.
 *
 * Why not measure from the driver directly: Linux keeps a process's peak
 * RSS across exec, and a child that Python forks (or vforks) starts with
 * the peak of the Python process itself, so every small program would
 * appear to use at least the driver's 30 MiB.  This process is small when
 * it forks, so its child's peak is the command's own. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct rusage ru;
	int status, code;
	pid_t pid;

	if (argc < 3) {
		fprintf(stderr, "usage: rusage OUTFILE COMMAND [ARG]...\n");
		return 2;
	}
	FILE *out = fopen(argv[1], "w");
	if (!out) {
		fprintf(stderr, "rusage: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	long long t0 = now_ns();
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "rusage: fork: %s\n", strerror(errno));
		return 2;
	}
	if (pid == 0) {
		const char *pre = getenv("RUSAGE_LD_PRELOAD");

		fclose(out);
		if (pre) {
			setenv("LD_PRELOAD", pre, 1);
			unsetenv("RUSAGE_LD_PRELOAD");
		}
		execvp(argv[2], argv + 2);
		fprintf(stderr, "rusage: %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "rusage: wait4: %s\n", strerror(errno));
			return 2;
		}
	long long wall = now_ns() - t0;
	code = WIFEXITED(status) ? WEXITSTATUS(status) :
	       WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 2;
	fprintf(out, "wall_ns=%lld user_us=%lld sys_us=%lld maxrss_kib=%ld "
		"status=%d\n", wall,
		(long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
		(long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec,
		ru.ru_maxrss, code);
	fclose(out);
	return code;
}
