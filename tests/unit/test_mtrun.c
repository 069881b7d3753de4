/* mtrun (tools/mtrun, from the build tree) running tests/sym/argprog: the
 * program's exit status kept (128+N for signal N), shards in the chosen or
 * a fresh directory, the build tree's library preloaded by absolute path,
 * arguments passed through byte for byte, MTALLOC composed as documented,
 * and mtreport run on the directory (or its absence said).  Scratch files
 * go to a fresh directory under $TMPDIR. */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char tmp[1024]; /* short enough for every path made from it to fit */

/* Resolved (TMPDIR may pass through a link), so that paths made from it
 * compare equal to those the programs print. */
static void setup(void)
{
	char *made = tu_tmpdir();
	char real[PATH_MAX];

	cr_assert(realpath(made, real) && strlen(real) < sizeof(tmp));
	strcpy(tmp, real);
	free(made);
}

static void teardown(void)
{
	if (tmp[0])
		tu_rmtree(tmp);
}

TestSuite(mtrun, .init = setup, .fini = teardown, .timeout = 60);

/* ---- running mtrun -------------------------------------------------------------- */

struct result {
	int status;          /* as a shell reports it */
	char out[16384];     /* standard output */
	char err[16384];     /* standard error */
};

static void slurp(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = 0, k;

	cr_assert_geq(fd, 0);
	while ((size_t)n < size - 1 && (k = read(fd, buf + n, size - 1 - (size_t)n)) > 0)
		n += k;
	buf[n] = '\0';
	close(fd);
}

/* Runs mtrun with `argv` (NULL-terminated, mtrun's own name left out) in
 * directory `cwd` (NULL: tmp), with `env` ("NAME=value" to set, "NAME" to
 * unset; NULL-terminated) on top of a cleaned environment. */
static void mtrun(struct result *r, const char *cwd, const char *const *env,
		  const char *const *argv)
{
	char out[PATH_MAX + 8], err[PATH_MAX + 8];
	const char *args[64];
	int n = 0;

	snprintf(out, sizeof(out), "%s/.out", tmp);
	snprintf(err, sizeof(err), "%s/.err", tmp);
	args[n++] = MTRUN;
	for (; *argv && n < 63; argv++)
		args[n++] = *argv;
	args[n] = NULL;
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* a process group of its own, as a shell's job: signals sent to
		 * "the group" must not reach the test */
		setpgid(0, 0);
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0 ||
		    chdir(cwd ? cwd : tmp) != 0)
			_exit(121);
		unsetenv("MTALLOC");
		unsetenv("LD_PRELOAD");
		unsetenv("MTRUN_LIB");
		unsetenv("MTRUN_REPORT");
		unsetenv("ARGPROG_END");
		for (; env && *env; env++) {
			const char *eq = strchr(*env, '=');
			if (eq) {
				char name[256];
				snprintf(name, sizeof(name), "%.*s", (int)(eq - *env), *env);
				setenv(name, eq + 1, 1);
			} else {
				unsetenv(*env);
			}
		}
		execv(MTRUN, (char *const *)args);
		_exit(122);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "mtrun died of signal %d", WTERMSIG(st));
	r->status = WEXITSTATUS(st);
	slurp(out, r->out, sizeof(r->out));
	slurp(err, r->err, sizeof(r->err));
	unlink(out);
	unlink(err);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define ENV(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* The value argprog printed for "NAME=" (a line of its output). */
static const char *printed(const struct result *r, const char *name, char *buf, size_t size)
{
	size_t n = strlen(name);

	for (const char *p = r->out; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "") {
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			size_t len = strcspn(p + n + 1, "\n");
			cr_assert_lt(len, size);
			memcpy(buf, p + n + 1, len);
			buf[len] = '\0';
			return buf;
		}
	}
	cr_assert_fail("argprog printed no %s; output:\n%s\nerrors:\n%s", name, r->out, r->err);
	return NULL;
}

static int count_shards(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		n += len > 4 && strcmp(e->d_name + len - 4, ".mts") == 0;
	}
	closedir(d);
	return n;
}

static void write_script(const char *path, const char *body)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fprintf(f, "#!/bin/sh\n%s", body);
	fclose(f);
	cr_assert_eq(chmod(path, 0700), 0);
}

/* ---- the exit status --------------------------------------------------------------- */

Test(mtrun, the_program_exit_status_is_kept)
{
	struct result r;
	const char *ends[] = { "exit:0", "exit:3", "exit:255" };
	const int want[] = { 0, 3, 255 };

	for (int i = 0; i < 3; i++) {
		char env[64];
		snprintf(env, sizeof(env), "ARGPROG_END=%s", ends[i]);
		mtrun(&r, NULL, ENV(env, "MTRUN_REPORT=/nonexistent/mtreport"),
		      ARGS("--no-report", ARGPROG));
		cr_assert_eq(r.status, want[i], "%s: status %d; stderr:\n%s", ends[i], r.status,
			     r.err);
	}
}

Test(mtrun, a_program_killed_by_a_signal_gives_128_plus_the_signal)
{
	struct result r;

	mtrun(&r, NULL, ENV("ARGPROG_END=signal:15"), ARGS("--no-report", ARGPROG));
	cr_assert_eq(r.status, 128 + SIGTERM, "status %d; stderr:\n%s", r.status, r.err);
	mtrun(&r, NULL, ENV("ARGPROG_END=signal:9"), ARGS(ARGPROG));
	cr_assert_eq(r.status, 128 + SIGKILL, "status %d", r.status);
}

Test(mtrun, the_group_interrupted_still_gets_its_report)
{
	char script[PATH_MAX], marker[PATH_MAX], env[PATH_MAX + 32];
	struct result r;

	/* a terminal's ^C, sent by the program itself: the whole group gets
	 * SIGINT; the program dies of it, mtrun reports and exits 130.  (The
	 * records the shell had buffered die with it; ls's shard is kept.) */
	snprintf(script, sizeof(script), "%s/report", tmp);
	snprintf(marker, sizeof(marker), "%s/reported", tmp);
	char body[PATH_MAX + 64];
	snprintf(body, sizeof(body), "touch '%s'\n", marker);
	write_script(script, body);
	snprintf(env, sizeof(env), "MTRUN_REPORT=%s", script);
	mtrun(&r, NULL, ENV(env, "ARGPROG_END=signal:2"),
	      ARGS("-s", "all", "--", "sh", "-c", "ls / >/dev/null; kill -INT 0; exit 7"));
	cr_assert_eq(r.status, 128 + SIGINT, "status %d; stderr:\n%s", r.status, r.err);
	cr_assert_eq(access(marker, F_OK), 0, "no report after ^C; stderr:\n%s", r.err);
}

/* ---- the directory ------------------------------------------------------------------ */

Test(mtrun, shards_go_to_the_chosen_directory)
{
	char dir[PATH_MAX], conf[4096];
	struct result r;

	snprintf(dir, sizeof(dir), "%s/out/run1", tmp);
	mtrun(&r, NULL, NULL, ARGS("-o", dir, "-s", "all", "--no-report", ARGPROG));
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	cr_assert_gt(count_shards(dir), 0, "no shards in %s; stderr:\n%s", dir, r.err);
	cr_assert(strstr(r.err, dir), "stderr does not name %s:\n%s", dir, r.err);
	printed(&r, "MTALLOC", conf, sizeof(conf));
	cr_assert(strncmp(conf, "dir:/", 5) == 0 && strstr(conf, dir), "MTALLOC=%s", conf);
	struct stat st;
	cr_assert_eq(stat(dir, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0700);

	/* -o relative to the current directory, --output=, an existing empty one */
	mkdir(strcat(dir, "x"), 0755);
	mtrun(&r, NULL, NULL, ARGS("--output=out/run1x", "-sall", "--no-report", ARGPROG));
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	cr_assert_gt(count_shards(dir), 0);
}

Test(mtrun, a_directory_that_is_not_empty_is_refused)
{
	char dir[PATH_MAX], f[PATH_MAX + 8];
	struct result r;

	snprintf(dir, sizeof(dir), "%s/used", tmp);
	mkdir(dir, 0700);
	snprintf(f, sizeof(f), "%s/x.mts", dir);
	close(open(f, O_WRONLY | O_CREAT, 0600));
	mtrun(&r, NULL, NULL, ARGS("-o", dir, ARGPROG, "ran"));
	cr_assert_eq(r.status, 125, "status %d", r.status);
	cr_assert_str_empty(r.out, "the program ran: %s", r.out);
	cr_assert(strstr(r.err, "not empty"), "%s", r.err);
	cr_assert_eq(count_shards(dir), 1);

	snprintf(f, sizeof(f), "%s/afile", tmp);
	close(open(f, O_WRONLY | O_CREAT, 0600));
	mtrun(&r, NULL, NULL, ARGS("-o", f, ARGPROG));
	cr_assert_eq(r.status, 125);
	cr_assert_str_empty(r.out);
}

Test(mtrun, the_default_directory_is_new_and_in_the_current_directory)
{
	char cwd[PATH_MAX], dirs[2][PATH_MAX] = { { 0 } };
	struct result r;

	snprintf(cwd, sizeof(cwd), "%s/work", tmp);
	mkdir(cwd, 0700);
	for (int i = 0; i < 2; i++) {
		mtrun(&r, cwd, NULL, ARGS("-s", "all", "--no-report", ARGPROG));
		cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
		char conf[4096];
		printed(&r, "MTALLOC", conf, sizeof(conf));
		/* dir:CWD/mtalloc.argprog.PID.d */
		size_t n = strcspn(conf + 4, ",");
		snprintf(dirs[i], sizeof(dirs[i]), "%.*s", (int)n, conf + 4);
		char prefix[PATH_MAX + 32];
		snprintf(prefix, sizeof(prefix), "%s/mtalloc.argprog.", cwd);
		cr_assert(strncmp(dirs[i], prefix, strlen(prefix)) == 0, "%s", dirs[i]);
		cr_assert(strcmp(dirs[i] + strlen(dirs[i]) - 2, ".d") == 0, "%s", dirs[i]);
		cr_assert_gt(count_shards(dirs[i]), 0, "no shards in %s", dirs[i]);
	}
	cr_assert_str_neq(dirs[0], dirs[1]);
}

/* ---- what the program gets ------------------------------------------------------------ */

Test(mtrun, the_build_tree_library_is_preloaded_by_absolute_path)
{
	char pre[PATH_MAX], want[PATH_MAX], got[PATH_MAX];
	struct result r;

	mtrun(&r, NULL, ENV("LD_PRELOAD=libextra.so"), ARGS("--no-report", ARGPROG));
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	printed(&r, "LD_PRELOAD", pre, sizeof(pre));
	cr_assert_eq(pre[0], '/', "LD_PRELOAD=%s", pre);
	char *space = strchr(pre, ' ');
	cr_assert_not_null(space, "the program's own LD_PRELOAD was dropped: %s", pre);
	cr_assert_str_eq(space + 1, "libextra.so");
	*space = '\0';
	cr_assert(realpath(BUILD_LIB, want) && realpath(pre, got), "%s", pre);
	cr_assert_str_eq(got, want);

	/* MTRUN_LIB, relative, made absolute */
	char link[PATH_MAX + 8];
	snprintf(link, sizeof(link), "%s/lib.so", tmp);
	cr_assert_eq(symlink(BUILD_LIB, link), 0);
	mtrun(&r, NULL, ENV("MTRUN_LIB=lib.so"), ARGS("--no-report", ARGPROG));
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	cr_assert_str_eq(printed(&r, "LD_PRELOAD", pre, sizeof(pre)), link);
	mtrun(&r, NULL, ENV("MTRUN_LIB=/nonexistent/libmtalloc.so"), ARGS(ARGPROG));
	cr_assert_eq(r.status, 125);
	cr_assert_str_empty(r.out);
}

Test(mtrun, arguments_pass_through_byte_for_byte)
{
	const char *args[] = { "a b", "", "it's", "\"quoted\"", "$HOME", "*", "-o", "--",
			       "new\nline", "\\", "tab\there", "--no-report", "`echo x`" };
	const size_t n = sizeof(args) / sizeof(args[0]);
	const char *argv[32] = { "--no-report", "--", ARGPROG };
	char want[4096] = "";
	struct result r;

	for (size_t i = 0; i < n; i++) {
		argv[3 + i] = args[i];
		char line[256];
		snprintf(line, sizeof(line), "%zu:%s\n", strlen(args[i]), args[i]);
		strcat(want, line);
	}
	argv[3 + n] = NULL;
	mtrun(&r, NULL, NULL, argv);
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	cr_assert(strncmp(r.out, want, strlen(want)) == 0, "got:\n%s\nwant:\n%s", r.out, want);
	cr_assert(strncmp(r.out + strlen(want), "LD_PRELOAD=", 11) == 0, "%s", r.out);
}

Test(mtrun, mtalloc_options_come_after_the_environment)
{
	char conf[4096], want[4096];
	struct result r;

	mtrun(&r, NULL, ENV("MTALLOC=seed:1"),
	      ARGS("-o", "d", "--sample=poisson:64k", "-O", "stack_depth:8",
		   "-Otimeline:0", "--no-report", ARGPROG));
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	snprintf(want, sizeof(want),
		 "seed:1,dir:%s/d,sample:poisson:64k,stack_depth:8,timeline:0", tmp);
	cr_assert_str_eq(printed(&r, "MTALLOC", conf, sizeof(conf)), want);
	cr_assert_eq(strstr(r.err, "option"), NULL, "mtalloc complained: %s", r.err);
}

/* ---- the report ---------------------------------------------------------------------- */

Test(mtrun, mtreport_runs_on_the_directory_with_the_report_args)
{
	char script[PATH_MAX], env[PATH_MAX + 32], dir[PATH_MAX], want[PATH_MAX * 2];
	struct result r;

	snprintf(script, sizeof(script), "%s/fake mtreport", tmp);
	write_script(script, "echo \"report: $# args: $*\"\nexit 4\n");
	snprintf(env, sizeof(env), "MTRUN_REPORT=%s", script);
	snprintf(dir, sizeof(dir), "%s/r", tmp);
	mtrun(&r, NULL, ENV(env, "ARGPROG_END=exit:5"),
	      ARGS("-o", dir, "--report-args", "--top 5", "--report-args=--json", ARGPROG));
	cr_assert_eq(r.status, 5, "status %d; stderr:\n%s", r.status, r.err);
	snprintf(want, sizeof(want), "report: 4 args: --top 5 --json %s\n", dir);
	cr_assert(strstr(r.err, want), "want %sstderr:\n%s", want, r.err);
	cr_assert(strstr(r.err, "exited with status 4"), "%s", r.err);
	cr_assert_eq(strstr(r.out, "report:"), NULL, "the report went to stdout");

	/* --no-report: not run */
	snprintf(dir, sizeof(dir), "%s/r2", tmp);
	mtrun(&r, NULL, ENV(env), ARGS("-o", dir, "--no-report", ARGPROG));
	cr_assert_eq(r.status, 0);
	cr_assert_eq(strstr(r.err, "report:"), NULL, "%s", r.err);
	cr_assert(strstr(r.err, dir), "%s", r.err);
}

Test(mtrun, a_missing_mtreport_is_said_with_the_directory)
{
	char dir[PATH_MAX];
	struct result r;

	snprintf(dir, sizeof(dir), "%s/m", tmp);
	mtrun(&r, NULL, ENV("MTRUN_REPORT=/nonexistent/mtreport", "ARGPROG_END=exit:3"),
	      ARGS("-o", dir, ARGPROG));
	cr_assert_eq(r.status, 3);
	cr_assert(strstr(r.err, "/nonexistent/mtreport not found"), "%s", r.err);
	cr_assert(strstr(r.err, dir), "%s", r.err);
}

Test(mtrun, no_shards_are_said)
{
	struct result r;

	mtrun(&r, NULL, ENV("MTALLOC=off"), ARGS("-o", "none", ARGPROG));
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	cr_assert(strstr(r.err, "no shards"), "%s", r.err);
}

/* ---- mtrun's own errors ----------------------------------------------------------------- */

Test(mtrun, usage_errors_exit_125_and_run_nothing)
{
	struct result r;

	mtrun(&r, NULL, NULL, ARGS("--bogus", ARGPROG));
	cr_assert_eq(r.status, 125);
	cr_assert_str_empty(r.out);
	mtrun(&r, NULL, NULL, ARGS("-o"));
	cr_assert_eq(r.status, 125);
	mtrun(&r, NULL, NULL, ARGS("--no-report"));
	cr_assert_eq(r.status, 125);
	cr_assert(strstr(r.err, "no program"), "%s", r.err);
	mtrun(&r, NULL, NULL, ARGS("-o", "a,b", ARGPROG));
	cr_assert_eq(r.status, 125);
	cr_assert(strstr(r.err, "comma"), "%s", r.err);
	mtrun(&r, NULL, NULL, ARGS("--help"));
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "Usage: mtrun"), "%s", r.out);
	mtrun(&r, NULL, NULL, ARGS("--version"));
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, PACKAGE_VERSION), "%s", r.out);
}

Test(mtrun, a_missing_program_exits_127_and_leaves_no_directory)
{
	char dir[PATH_MAX];
	struct result r;

	snprintf(dir, sizeof(dir), "%s/never", tmp);
	mtrun(&r, NULL, NULL, ARGS("-o", dir, "mtrun-no-such-program"));
	cr_assert_eq(r.status, 127, "status %d", r.status);
	cr_assert_neq(access(dir, F_OK), 0, "%s was created", dir);
	mtrun(&r, NULL, NULL, ARGS("-o", dir, "./no/such/program"));
	cr_assert_eq(r.status, 127);
	mtrun(&r, NULL, NULL, ARGS("-o", dir, "/dev/null"));
	cr_assert_eq(r.status, 126);
	cr_assert_neq(access(dir, F_OK), 0, "%s was created", dir);
}
