/* Real programs under LD_PRELOAD (absolute path of the built library), each
 * compared with the same command run on glibc's malloc: Python running some
 * of its own regression tests, git building and packing a repository, a
 * parallel sort of 2 million lines, and gcc compiling a C program.
 *
 * A program that is not installed is skipped, and the skip says so. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "testutil.h"

#define NEED(prog)                                                          \
	do {                                                                \
		if (!tu_have_program(prog))                                 \
			cr_skip_test("%s is not installed: skipped", prog); \
	} while (0)

/* Runs argv in cwd, preloaded or not, and requires exit status 0. */
static struct tu_proc must_run(const char *const *argv, const char *const *env,
			       const char *cwd, int preload)
{
	struct tu_spawn s = { .argv = argv, .env = env, .cwd = cwd,
			      .preload = preload };
	struct tu_proc p;

	cr_assert_eq(tu_run(&s, &p), 0, "cannot start %s", argv[0]);
	cr_assert(tu_exited_ok(&p), "%s%s %s: %s\n%s", preload ? "preloaded " : "",
		  argv[0], argv[1] ? argv[1] : "", tu_status_str(p.status), p.err);
	return p;
}

Test(programs, preload_puts_mtalloc_into_programs_and_their_children,
     .timeout = 30)
{
	const char *argv[] = { "sh", "-c", "cat /proc/self/maps", NULL };
	struct tu_proc with = must_run(argv, NULL, NULL, 1);
	struct tu_proc without = must_run(argv, NULL, NULL, 0);

	cr_assert_not_null(strstr(with.out, "libmtalloc.so"),
			   "a grandchild of a preloaded program lacks mtalloc");
	cr_assert_null(strstr(without.out, "libmtalloc.so"));
	tu_proc_free(&with);
	tu_proc_free(&without);
}

/* ---- python ----------------------------------------------------------------- */

/* The "Total tests: ..." line of regrtest's summary. */
static char *total_line(const char *out)
{
	const char *t = strstr(out, "Total tests:");

	if (!t)
		return strdup("");
	return strndup(t, strcspn(t, "\n"));
}

static const char py_script[] =
	"import json, random\n"
	"r = random.Random(7)\n"
	"d = {}\n"
	"for i in range(200000):\n"
	"    d[str(r.random())] = [i] * (i % 7)\n"
	"s = sorted(d.items())[:1000]\n"
	"t = json.loads(json.dumps(s))\n"
	"print(len(d), sum(len(v) for k, v in t), hash(tuple(map(str, t[:50]))))\n";

Test(programs, python_regression_tests_pass_as_on_glibc, .timeout = 150)
{
	NEED("python3");
	char *dir = tu_tmpdir(), *tmpenv;
	cr_assert(asprintf(&tmpenv, "TMPDIR=%s", dir) > 0);
	const char *env[] = { tmpenv, "PYTHONHASHSEED=0", "PYTHONDONTWRITEBYTECODE=1",
			      NULL };
	const char *probe[] = { "python3", "-c", "import test.support, test.libregrtest",
				NULL };
	struct tu_spawn ps = { .argv = probe, .env = env, .cwd = dir };
	struct tu_proc p;

	cr_assert_eq(tu_run(&ps, &p), 0);
	int have_tests = tu_exited_ok(&p);
	tu_proc_free(&p);

	if (have_tests) {
		const char *argv[] = { "python3", "-m", "test", "-q", "test_list",
				       "test_dict", "test_set", "test_json", NULL };
		struct tu_proc plain = must_run(argv, env, dir, 0);
		struct tu_proc pre = must_run(argv, env, dir, 1);
		char *a = total_line(plain.out), *b = total_line(pre.out);
		cr_assert_str_not_empty(a, "no summary from regrtest:\n%s", plain.out);
		cr_assert_str_eq(b, a, "preloaded: '%s', on glibc: '%s'", b, a);
		cr_assert_not_null(strstr(pre.out, "Result: SUCCESS"), "%s", pre.out);
		free(a);
		free(b);
		tu_proc_free(&plain);
		tu_proc_free(&pre);
	} else {
		cr_log_warn("python3's test package is not installed: running an "
			    "allocation-heavy script instead");
		const char *argv[] = { "python3", "-c", py_script, NULL };
		struct tu_proc plain = must_run(argv, env, dir, 0);
		struct tu_proc pre = must_run(argv, env, dir, 1);
		cr_assert_str_eq(pre.out, plain.out);
		tu_proc_free(&plain);
		tu_proc_free(&pre);
	}
	tu_rmtree(dir);
	free(dir);
	free(tmpenv);
}

Test(programs, python_allocation_heavy_script_prints_as_on_glibc,
     .timeout = 60)
{
	NEED("python3");
	const char *env[] = { "PYTHONHASHSEED=0", NULL };
	const char *argv[] = { "python3", "-c", py_script, NULL };
	struct tu_proc plain = must_run(argv, env, NULL, 0);
	struct tu_proc pre = must_run(argv, env, NULL, 1);

	cr_assert_str_not_empty(plain.out);
	cr_assert_str_eq(pre.out, plain.out);
	tu_proc_free(&plain);
	tu_proc_free(&pre);
}

/* ---- git -------------------------------------------------------------------- */

#define GIT_FILES 300

static void write_tree(const char *repo, int version)
{
	for (int i = 0; i < GIT_FILES + (version ? 50 : 0); i++) {
		char sub[64], name[64], *d, *f;
		snprintf(sub, sizeof(sub), "dir%02d", i % 17);
		d = tu_path(repo, sub);
		mkdir(d, 0755);
		snprintf(name, sizeof(name), "file%04d.txt", i);
		f = tu_path(d, name);
		size_t n = 200 + (size_t)i * 37 % 5000, len = 0;
		char *text = malloc(n * 12);
		cr_assert_not_null(text);
		for (size_t k = 0; k < n; k++)
			len += (size_t)sprintf(text + len, "%zu %d\n",
					       k * 2654435761u % 100003,
					       version && i % 3 == 0 ? i : 0);
		tu_write_file(f, text, len);
		free(text);
		free(f);
		free(d);
	}
}

/* Builds a repository of two commits in dir/name and returns the output of
 * "git log" with tree and commit hashes and the patches. */
static char *git_history(const char *dir, const char *name, int preload)
{
	char *repo = tu_path(dir, name), *home;
	cr_assert(asprintf(&home, "HOME=%s", dir) > 0);
	const char *env[] = {
		home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.org",
		"GIT_AUTHOR_DATE=2024-01-02T03:04:05Z",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.org",
		"GIT_COMMITTER_DATE=2024-01-02T03:04:05Z", "LC_ALL=C", NULL
	};
	const char *init[] = { "git", "init", "-q", repo, NULL };
	const char *add[] = { "git", "add", "-A", NULL };
	const char *commit1[] = { "git", "commit", "-q", "-m", "first", NULL };
	const char *commit2[] = { "git", "commit", "-q", "-m", "second", NULL };
	const char *gc[] = { "git", "gc", "-q", "--aggressive", NULL };
	const char *fsck[] = { "git", "fsck", "--full", "--strict", NULL };
	const char *log[] = { "git", "log", "-p", "--format=%H %T %s", NULL };
	struct tu_proc p;
	char *out;

	p = must_run(init, env, dir, preload);
	tu_proc_free(&p);
	write_tree(repo, 0);
	p = must_run(add, env, repo, preload);
	tu_proc_free(&p);
	p = must_run(commit1, env, repo, preload);
	tu_proc_free(&p);
	write_tree(repo, 1);
	p = must_run(add, env, repo, preload);
	tu_proc_free(&p);
	p = must_run(commit2, env, repo, preload);
	tu_proc_free(&p);
	p = must_run(gc, env, repo, preload);
	tu_proc_free(&p);
	p = must_run(fsck, env, repo, preload); /* exit 0: no corruption */
	tu_proc_free(&p);
	p = must_run(log, env, repo, preload);
	out = p.out;
	p.out = NULL;
	tu_proc_free(&p);
	free(home);
	free(repo);
	return out;
}

Test(programs, git_commit_gc_fsck_give_the_same_history_as_on_glibc,
     .timeout = 120)
{
	NEED("git");
	char *dir = tu_tmpdir();
	char *plain = git_history(dir, "plain", 0);
	char *pre = git_history(dir, "preloaded", 1);

	cr_assert_gt(strlen(plain), 1000, "git log printed: %s", plain);
	cr_assert_eq(strlen(pre), strlen(plain));
	/* same trees, same commits, same patches */
	cr_assert(strcmp(pre, plain) == 0, "histories differ; first lines:\n"
					   "%.200s\n--- vs ---\n%.200s", pre, plain);
	free(plain);
	free(pre);
	tu_rmtree(dir);
	free(dir);
}

/* ---- sort ------------------------------------------------------------------- */

#define SORT_LINES 2000000

Test(programs, parallel_sort_of_two_million_lines_matches_glibc,
     .timeout = 120)
{
	NEED("sort");
	char *dir = tu_tmpdir();
	char *in = tu_path(dir, "in.txt"), *out_plain = tu_path(dir, "plain.txt"),
	     *out_pre = tu_path(dir, "pre.txt");
	FILE *f = fopen(in, "w");
	uint64_t x = 42;

	cr_assert_not_null(f);
	for (int i = 0; i < SORT_LINES; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		fprintf(f, "%08llx %d %s\n", (unsigned long long)(x >> 32), i,
			(x >> 20) & 1 ? "alpha" : "beta");
	}
	cr_assert_eq(fclose(f), 0);

	const char *env[] = { "LC_ALL=C", NULL };
	const char *plain_argv[] = { "sort", "--parallel=2", "-o", out_plain, in,
				     NULL };
	const char *pre_argv[] = { "sort", "--parallel=2", "-o", out_pre, in, NULL };
	struct tu_proc p = must_run(plain_argv, env, dir, 0);
	tu_proc_free(&p);
	p = must_run(pre_argv, env, dir, 1);
	tu_proc_free(&p);

	size_t na, nb, nin;
	char *a = tu_read_file(out_plain, &na), *b = tu_read_file(out_pre, &nb);
	char *orig = tu_read_file(in, &nin);
	cr_assert(a && b && orig);
	cr_assert_eq(na, nin, "sort on glibc lost bytes");
	cr_assert_eq(nb, na, "preloaded sort wrote %zu bytes, glibc %zu", nb, na);
	cr_assert(memcmp(a, b, na) == 0, "outputs differ");
	free(a);
	free(b);
	free(orig);
	tu_rmtree(dir);
	free(in);
	free(out_plain);
	free(out_pre);
	free(dir);
}

/* ---- gcc -------------------------------------------------------------------- */

/* A C program of a few hundred functions with data-dependent control flow,
 * enough to make cc1 allocate. */
static void write_c_program(const char *path)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fprintf(f, "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n");
	for (int i = 0; i < 300; i++) {
		fprintf(f, "static unsigned long f%d(unsigned long x) {\n"
			   "  unsigned long a[%d];\n"
			   "  for (int i = 0; i < %d; i++) a[i] = x * %d + i;\n"
			   "  switch (x %% 5) {\n", i, 8 + i % 24, 8 + i % 24, i + 3);
		for (int c = 0; c < 5; c++)
			fprintf(f, "  case %d: x ^= a[%d] << %d; break;\n", c,
				c % (8 + i % 24), (c + i) % 13);
		fprintf(f, "  }\n  return x + %s;\n}\n",
			i ? "0" : "1");
	}
	fprintf(f, "int main(void) {\n  unsigned long x = 1;\n"
		   "  char *s = malloc(1000);\n  strcpy(s, \"mtalloc\");\n");
	for (int i = 0; i < 300; i++)
		fprintf(f, "  x = f%d(x);\n", i);
	fprintf(f, "  printf(\"%%s %%lu\\n\", s, x);\n  free(s);\n"
		   "  return 0;\n}\n");
	cr_assert_eq(fclose(f), 0);
}

Test(programs, gcc_compiles_the_same_object_as_on_glibc, .timeout = 120)
{
	NEED("gcc");
	char *dir = tu_tmpdir();
	char *src = tu_path(dir, "prog.c");
	const char *env[] = { "LC_ALL=C", NULL };
	const char *cc_plain[] = { "gcc", "-O2", "-c", "prog.c", "-o", "plain.o",
				   NULL };
	const char *cc_pre[] = { "gcc", "-O2", "-c", "prog.c", "-o", "pre.o", NULL };
	const char *ld_pre[] = { "gcc", "pre.o", "-o", "pre", NULL };
	const char *ld_plain[] = { "gcc", "plain.o", "-o", "plain", NULL };
	struct tu_proc p;

	write_c_program(src);
	p = must_run(cc_plain, env, dir, 0);
	tu_proc_free(&p);
	p = must_run(cc_pre, env, dir, 1);
	tu_proc_free(&p);
	p = must_run(ld_plain, env, dir, 0);
	tu_proc_free(&p);
	p = must_run(ld_pre, env, dir, 1);
	tu_proc_free(&p);

	char *o_plain = tu_path(dir, "plain.o"), *o_pre = tu_path(dir, "pre.o");
	size_t na, nb;
	char *a = tu_read_file(o_plain, &na), *b = tu_read_file(o_pre, &nb);
	cr_assert(a && b);
	cr_assert_eq(nb, na, "object sizes differ: %zu vs %zu", nb, na);
	cr_assert(memcmp(a, b, na) == 0, "objects differ");

	char *exe_plain = tu_path(dir, "plain"), *exe_pre = tu_path(dir, "pre");
	const char *run_plain[] = { exe_plain, NULL };
	const char *run_pre[] = { exe_pre, NULL };
	struct tu_proc out_plain = must_run(run_plain, NULL, dir, 0);
	struct tu_proc out_pre = must_run(run_pre, NULL, dir, 1);
	cr_assert_not_null(strstr(out_plain.out, "mtalloc "));
	cr_assert_str_eq(out_pre.out, out_plain.out);

	tu_proc_free(&out_plain);
	tu_proc_free(&out_pre);
	free(a);
	free(b);
	free(exe_plain);
	free(exe_pre);
	free(o_plain);
	free(o_pre);
	free(src);
	tu_rmtree(dir);
	free(dir);
}
