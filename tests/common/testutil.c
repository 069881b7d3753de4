/* See testutil.h. */
#include "config.h"

#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *tu_env(const char *name)
{
	const char *v = getenv(name);

	cr_assert(v && *v, "%s is not set: run the tests through `make check`",
		  name);
	return v;
}

const char *tu_lib(void)
{
	const char *lib = tu_env("MTALLOC_LIB");

	cr_assert(lib[0] == '/', "MTALLOC_LIB must be absolute: %s", lib);
	cr_assert(access(lib, R_OK) == 0, "%s: %s", lib, strerror(errno));
	return lib;
}

char *tu_path(const char *dir, const char *name)
{
	char *s;

	cr_assert(asprintf(&s, "%s/%s", dir, name) >= 0);
	return s;
}

char *tu_built(const char *rel)
{
	char *s = tu_path(tu_env("MTALLOC_BUILDDIR"), rel);

	cr_assert(access(s, F_OK) == 0, "%s is missing: %s", s, strerror(errno));
	return s;
}

char *tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *s;

	if (!base || !*base)
		base = "/tmp";
	cr_assert(asprintf(&s, "%s/mtalloc-test.XXXXXX", base) >= 0);
	cr_assert(mkdtemp(s), "mkdtemp %s: %s", s, strerror(errno));
	return s;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void tu_rmtree(const char *dir)
{
	if (dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_dir;

void tu_dir_make(void)
{
	tu_dir = tu_tmpdir();
}

void tu_dir_remove(void)
{
	tu_rmtree(tu_dir);
	free(tu_dir);
	tu_dir = NULL;
}

char *tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - n < 65536) {
			cap = cap ? 2 * cap : 65536;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

void tu_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	cr_assert(f, "%s: %s", path, strerror(errno));
	cr_assert(fwrite(data, 1, len, f) == len, "%s: short write", path);
	cr_assert(fclose(f) == 0, "%s: %s", path, strerror(errno));
}

size_t tu_count_lines(const char *s)
{
	size_t n = 0;

	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

int tu_scratch_fd(void)
{
	const char *base = getenv("TMPDIR");
	char *path;
	int fd;

	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&path, "%s/mtalloc-out.XXXXXX", base) < 0)
		return -1;
	fd = mkstemp(path);
	if (fd >= 0)
		unlink(path);
	free(path);
	return fd;
}

char *tu_read_fd(int fd, size_t *len)
{
	size_t n = 0, cap = 65536;
	char *buf = malloc(cap + 1);
	ssize_t r;

	cr_assert_not_null(buf);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	while ((r = read(fd, buf + n, cap - n)) != 0) {
		if (r < 0) {
			cr_assert_eq(errno, EINTR, "read: %s", strerror(errno));
			continue;
		}
		n += (size_t)r;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			cr_assert_not_null(buf);
		}
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

void tu_child_setup(pid_t parent, const char *const *env, int preload)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(126);
	for (const char *const *e = env; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (eq) {
			char name[256];
			size_t n = (size_t)(eq - *e);
			if (n >= sizeof(name))
				_exit(126);
			memcpy(name, *e, n);
			name[n] = '\0';
			setenv(name, eq + 1, 1);
		} else {
			unsetenv(*e);
		}
	}
	if (preload)
		setenv("LD_PRELOAD", getenv("MTALLOC_LIB"), 1);
}

static void child(const struct tu_spawn *s, pid_t parent, int out, int err)
{
	int in;

	tu_child_setup(parent, s->env, s->preload);
	in = open(s->stdin_path ? s->stdin_path : "/dev/null", O_RDONLY);
	if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(126);
	if (s->cwd && chdir(s->cwd))
		_exit(126);
	execvp(s->argv[0], (char *const *)s->argv);
	dprintf(2, "exec %s: %s\n", s->argv[0], strerror(errno));
	_exit(127);
}

int tu_run(const struct tu_spawn *s, struct tu_proc *p)
{
	int out, err, rc = -1;
	pid_t parent = getpid(), pid;

	memset(p, 0, sizeof(*p));
	if (s->preload)
		tu_lib();
	if (s->stdout_path)
		out = open(s->stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	else
		out = tu_scratch_fd();
	err = tu_scratch_fd();
	if (out < 0 || err < 0)
		goto out_close;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		goto out_close;
	if (pid == 0)
		child(s, parent, out, err);
	while (waitpid(pid, &p->status, 0) < 0)
		if (errno != EINTR)
			goto out_close;
	p->out = s->stdout_path ? strdup("") : tu_read_fd(out, &p->out_len);
	p->err = tu_read_fd(err, &p->err_len);
	rc = 0;
out_close:
	if (out >= 0)
		close(out);
	if (err >= 0)
		close(err);
	return rc;
}

void tu_proc_free(struct tu_proc *p)
{
	free(p->out);
	free(p->err);
	p->out = p->err = NULL;
}

int tu_exited_ok(const struct tu_proc *p)
{
	return WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0;
}

const char *tu_status_str(int status)
{
	static char buf[64];

	if (WIFEXITED(status))
		snprintf(buf, sizeof(buf), "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, sizeof(buf), "signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, sizeof(buf), "status 0x%x", status);
	return buf;
}

int tu_have_program(const char *prog)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;
	int found = 0;

	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0;
	if (!path)
		path = "/usr/bin:/bin";
	copy = strdup(path);
	for (dir = strtok_r(copy, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		char *full = tu_path(*dir ? dir : ".", prog);
		found = access(full, X_OK) == 0;
		free(full);
	}
	free(copy);
	return found;
}
