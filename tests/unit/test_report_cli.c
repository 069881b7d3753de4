/* mtreport as a program: golden reports of committed shards, end-to-end
 * runs of tests/track/trace under the built libmtalloc (every figure
 * against the truth it prints, estimates within doc/sampling.md's bounds),
 * merges of splits, damaged and random input, and usage.  Paths of the
 * built programs come from the Makefile (MTREPORT, LIBMTALLOC, TRACE,
 * TRACELIB, GOLDEN_DIR); files go to a fresh directory under $TMPDIR. */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json.h"
#include "synth.h"
#include "testutil.h"

#include <sys/resource.h>

extern char **environ;

TestSuite(golden, .init = tu_dir_make, .fini = tu_dir_remove, .timeout = 120);
TestSuite(e2e, .init = tu_dir_make, .fini = tu_dir_remove, .timeout = 300);
TestSuite(badinput, .init = tu_dir_make, .fini = tu_dir_remove, .timeout = 300);
TestSuite(cli, .init = tu_dir_make, .fini = tu_dir_remove, .timeout = 60);

static const char *tpath(const char *name)
{
	static char p[8][PATH_MAX + 64];
	static int k;

	k = (k + 1) % 8;
	snprintf(p[k], sizeof(p[k]), "%s/%s", tu_dir, name);
	return p[k];
}


struct run {
	int status;     /* exit status, or 128 + signal */
	char *out, *err;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* Runs argv with the extra environment entries (NULL-terminated), stdout
 * and stderr into files. */
static struct run run(const char *const *argv, const char *const *env)
{
	struct run r = { 0 };
	char out[PATH_MAX + 64], err[PATH_MAX + 64];
	static int n;

	snprintf(out, sizeof(out), "%s/.out%d", tu_dir, n);
	snprintf(err, sizeof(err), "%s/.err%d", tu_dir, n++);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(o, 1);
		dup2(e, 2);
		for (int i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r.out = tu_read_file(out, NULL);
	r.err = tu_read_file(err, NULL);
	unlink(out);
	unlink(err);
	return r;
}

/* Runs trace with ARGS under libmtalloc with MTALLOC=conf,dir:DIR/sub. */
static struct run trace(const char *conf, const char *sub, const char *a1, const char *a2)
{
	static char env_m[PATH_MAX + 256], env_p[PATH_MAX + 64];
	const char *argv[] = { TRACE, a1, a2, NULL };
	const char *env[] = { env_m, env_p, NULL };

	snprintf(env_m, sizeof(env_m), "MTALLOC=%s,dir:%s", conf, tpath(sub));
	snprintf(env_p, sizeof(env_p), "LD_PRELOAD=%s", LIBMTALLOC);
	struct run r = run(argv, env);
	cr_assert_eq(r.status, 0, "trace %s: status %d: %s", a1, r.status, r.err);
	return r;
}

static struct json *report_json(const char *const *paths, int n, int want)
{
	const char *argv[16] = { MTREPORT, "--no-symbols", "-f", "json" };
	int k = 4;
	for (int i = 0; i < n && k < 15; i++)
		argv[k++] = paths[i];
	argv[k] = NULL;
	struct run r = run(argv, NULL);
	cr_assert_eq(r.status, want, "mtreport: status %d: %s", r.status, r.err);
	struct json *j = json_parse(r.out);
	cr_assert_not_null(j, "not JSON: %.200s", r.out);
	run_free(&r);
	return j;
}

/* ---- golden reports ------------------------------------------------------------- */

static void golden(const char *name, const char *format)
{
	char d[PATH_MAX], want[PATH_MAX + 32];
	snprintf(d, sizeof(d), "%s/%s", GOLDEN_DIR, name);
	snprintf(want, sizeof(want), "%s/expected.%s", d, format);
	const char *argv[] = { MTREPORT, "--no-symbols", "-f",
			       strcmp(format, "txt") ? format : "text", d, NULL };
	struct run r = run(argv, NULL);
	cr_assert_eq(r.status, 0, "%s: status %d: %s", name, r.status, r.err);
	char *exp = tu_read_file(want, NULL);
	cr_assert_not_null(exp, "%s is missing (make update-golden)", want);
	if (strcmp(exp, r.out)) {
		/* the first line that differs */
		size_t i = 0, line = 1;
		while (exp[i] && exp[i] == r.out[i])
			line += exp[i++] == '\n';
		const char *a = exp + i, *b = r.out + i;
		while (a > exp && a[-1] != '\n')
			a--, b--;
		cr_assert_fail("%s differs from %s at line %zu:\n want: %.*s\n  got: %.*s\n"
			       "(review, then make update-golden)",
			       name, want, line, (int)strcspn(a, "\n"), a,
			       (int)strcspn(b, "\n"), b);
	}
	free(exp);
	run_free(&r);
}

Test(golden, trace_all_text) { golden("trace-all", "txt"); }
Test(golden, trace_all_json) { golden("trace-all", "json"); }
Test(golden, trace_fork_text) { golden("trace-fork", "txt"); }
Test(golden, trace_fork_json) { golden("trace-fork", "json"); }
Test(golden, trace_sites_text) { golden("trace-sites", "txt"); }
Test(golden, trace_sites_json) { golden("trace-sites", "json"); }
Test(golden, wordfreq_text) { golden("wordfreq", "txt"); }
Test(golden, wordfreq_json) { golden("wordfreq", "json"); }

/* ---- end to end --------------------------------------------------------------------- */

/* The cell of thread `name` in site s. */
static const struct json *cell(const struct json *s, const char *name)
{
	const struct json *t = json_get(s, "threads");
	for (size_t i = 0; t && i < t->n; i++)
		if (!strcmp(json_str(t->v[i], "name"), name))
			return t->v[i];
	return NULL;
}

Test(e2e, every_figure_of_trace_all_equals_its_truth)
{
	struct run t = trace("sample:all,seed:1", "s", "all", NULL);
	const char *p[] = { tpath("s") };
	struct json *j = report_json(p, 1, 0);
	int truth[4][4];

	const char *s = t.out;
	for (int i = 0; i < 4; i++) {
		int k;
		cr_assert_eq(sscanf(s, "thread %*d allocs %d frees %d cross %d live %d\n",
				    &truth[i][0], &truth[i][1], &truth[i][2], &truth[i][3]), 4);
		for (k = 0; s[k] && s[k] != '\n'; k++)
			;
		s += k + 1;
	}
	/* trace's sites: the sizes 1000..1999 belong to it alone */
	const struct json *sites = json_get(j, "sites");
	int found = 0;
	double sum[4][4] = { { 0 } }, xcell[4] = { 0 };
	for (size_t k = 0; k < sites->n; k++) {
		const struct json *st = sites->v[k];
		if (json_num(st, "size_min") < 1000 || json_num(st, "size_max") > 1999)
			continue;
		found++;
		for (int i = 0; i < 4; i++) {
			char name[16];
			snprintf(name, sizeof(name), "trace-%d", i);
			const struct json *c = cell(st, name);
			if (!c)
				continue;
			double x = json_num(c, "cross_thread_frees.value");
			sum[i][0] += json_num(c, "allocs.value");
			sum[i][1] += json_num(c, "frees.value") - x;
			sum[i][3] += json_num(c, "live_objects.value");
			xcell[i] += x;
			cr_assert_eq(json_num(c, "allocs.ci95.0"), json_num(c, "allocs.ci95.1"));
		}
	}
	cr_assert_gt(found, 0, "no site of sizes 1000..1999");
	for (int i = 0; i < 4; i++) {
		sum[i][2] = xcell[(i + 3) % 4]; /* thread i frees what i-1 handed over */
		cr_assert_eq(sum[i][0], truth[i][0], "thread %d allocs %g, truth %d", i, sum[i][0], truth[i][0]);
		cr_assert_eq(sum[i][1], truth[i][1], "thread %d frees %g, truth %d", i, sum[i][1], truth[i][1]);
		cr_assert_eq(sum[i][2], truth[i][2], "thread %d cross %g, truth %d", i, sum[i][2], truth[i][2]);
		cr_assert_eq(sum[i][3], truth[i][3], "thread %d live %g, truth %d", i, sum[i][3], truth[i][3]);
	}
	/* the matrix says the same: trace-(i-1) -> trace-i */
	const struct json *m = json_get(j, "cross_thread.matrix");
	for (int i = 0; i < 4; i++) {
		char from[16], to[16];
		bool ok = false;
		snprintf(from, sizeof(from), "trace-%d", (i + 3) % 4);
		snprintf(to, sizeof(to), "trace-%d", i);
		for (size_t k = 0; k < m->n; k++)
			if (!strcmp(json_str(m->v[k], "from_name"), from) &&
			    !strcmp(json_str(m->v[k], "to_name"), to)) {
				cr_assert_eq(json_num(m->v[k], "objects.value"), truth[i][2]);
				ok = true;
			}
		cr_assert(ok, "no matrix cell %s -> %s", from, to);
	}
	cr_assert_eq(json_num(j, "totals.exact_weights"), 1);
	json_free(j);
	run_free(&t);
}

/* p(s) of the poisson policy. */
static double p_of(double size, double mean)
{
	return -expm1(-size / mean);
}

Test(e2e, poisson_estimates_fall_within_four_sigma)
{
	struct run t = trace("seed:1", "s", "sites", "200000");
	const char *p[] = { tpath("s") };
	struct json *j = report_json(p, 1, 0);
	double mean = json_num(j, "processes.0.policy.mean");
	struct { double size, n; bool seen; } want[] = { { 256, 200000, false },
							{ 4096, 20000, false } };

	cr_assert(mean > 0);
	const struct json *sites = json_get(j, "sites");
	for (size_t k = 0; k < sites->n; k++)
		for (int w = 0; w < 2; w++) {
			const struct json *s = sites->v[k];
			if (json_num(s, "size_min") != want[w].size ||
			    json_num(s, "size_max") != want[w].size)
				continue;
			double pr = p_of(want[w].size, mean);
			double sigma = sqrt(want[w].n * (1 - pr) / pr);
			double n = json_num(s, "allocs.value");
			double b = json_num(s, "bytes.value");
			cr_assert_leq(fabs(n - want[w].n), 4 * sigma,
				      "size %g: %g allocations estimated, %g made (sigma %g)",
				      want[w].size, n, want[w].n, sigma);
			cr_assert_leq(fabs(b - want[w].n * want[w].size),
				      4 * sigma * want[w].size + 1);
			/* the interval is the sampling model's */
			double lo = json_num(s, "allocs.ci95.0"), hi = json_num(s, "allocs.ci95.1");
			cr_assert(lo < n && n < hi);
			cr_assert_eq(json_num(s, "live_objects.value"), 0);
			want[w].seen = true;
		}
	cr_assert(want[0].seen && want[1].seen, "a site is missing");
	json_free(j);
	run_free(&t);
}

Test(e2e, a_forked_child_names_its_parent)
{
	struct run t = trace("sample:all,seed:1", "s", "fork", NULL);
	const char *p[] = { tpath("s") };
	struct json *j = report_json(p, 1, 0);
	const struct json *procs = json_get(j, "processes");

	cr_assert_eq(procs->n, 2);
	cr_assert(isnan(json_num(procs->v[0], "parent")));
	cr_assert_eq(json_num(procs->v[1], "parent"), json_num(procs->v[0], "pid"));
	/* the child's 100 blocks of 1500 bytes, all freed */
	const struct json *sites = json_get(j, "sites");
	bool ok = false;
	for (size_t k = 0; k < sites->n; k++)
		if (json_num(sites->v[k], "size_min") == 1500) {
			cr_assert_eq(json_num(sites->v[k], "allocs.value"), 100);
			cr_assert_eq(json_num(sites->v[k], "frees.value"), 100);
			ok = true;
		}
	cr_assert(ok);
	json_free(j);
	run_free(&t);
}

Test(e2e, a_module_loaded_late_names_its_frames)
{
	struct run t = trace("sample:all,seed:1", "s", "dlopen", TRACELIB);
	const char *p[] = { tpath("s") };
	struct json *j = report_json(p, 1, 0);
	const struct json *sites = json_get(j, "sites");
	bool ok = false;

	for (size_t k = 0; k < sites->n; k++)
		if (json_num(sites->v[k], "size_min") == 1700) {
			cr_assert_eq(json_num(sites->v[k], "allocs.value"), 50);
			const char *m = json_str(sites->v[k], "frames.0.module");
			cr_assert(m && strstr(m, "tracelib"), "module %s", m ? m : "(none)");
			ok = true;
		}
	cr_assert(ok);
	json_free(j);
	run_free(&t);
}

Test(e2e, any_grouping_of_merges_gives_the_one_pass_report)
{
	struct run t = trace("sample:all,seed:1", "s", "all", NULL);
	DIR *d = opendir(tpath("s"));
	struct dirent *e;
	char *files[16];
	int n = 0;

	while ((e = readdir(d)) && n < 16)
		if (strstr(e->d_name, ".mts")) {
			files[n] = malloc(PATH_MAX + 300);
			snprintf(files[n], PATH_MAX + 300, "%s/%s", tpath("s"), e->d_name);
			n++;
		}
	closedir(d);
	cr_assert_geq(n, 4);
	const char *all[] = { tpath("s") };
	const char *one_argv[] = { MTREPORT, "--no-symbols", "-f", "json", all[0], NULL };
	struct run one = run(one_argv, NULL);
	cr_assert_eq(one.status, 0);

	/* splits: by parity, first/rest, each alone; then merges of merges */
	for (int split = 0; split < 3; split++) {
		const char *a[20] = { MTREPORT, "merge", "-o", NULL }, *b[20] = { MTREPORT, "merge", "-o", NULL };
		int na = 4, nb = 4;
		char pa[PATH_MAX + 64], pb[PATH_MAX + 64];
		snprintf(pa, sizeof(pa), "%s", tpath("a.mta"));
		snprintf(pb, sizeof(pb), "%s", tpath("b.mta"));
		a[3] = pa;
		b[3] = pb;
		for (int i = 0; i < n; i++) {
			bool left = split == 0 ? i % 2 : split == 1 ? i == 0 : i < n - 1;
			if (left)
				a[na++] = files[i];
			else
				b[nb++] = files[i];
		}
		a[na] = b[nb] = NULL;
		struct run ra = run(a, NULL), rb = run(b, NULL);
		cr_assert_eq(ra.status, 0, "%s", ra.err);
		cr_assert_eq(rb.status, 0, "%s", rb.err);
		char pab[PATH_MAX + 64];
		snprintf(pab, sizeof(pab), "%s", tpath("ab.mta"));
		const char *m[] = { MTREPORT, "merge", "-o", pab, pb, pa, NULL };
		struct run rm = run(m, NULL);
		cr_assert_eq(rm.status, 0, "%s", rm.err);
		const char *r1[] = { MTREPORT, "--no-symbols", "-f", "json", pa, pb, NULL };
		const char *r2[] = { MTREPORT, "--no-symbols", "-f", "json", pab, NULL };
		struct run x1 = run(r1, NULL), x2 = run(r2, NULL);
		cr_assert_str_eq(x1.out, one.out, "split %d: merged report differs", split);
		cr_assert_str_eq(x2.out, one.out, "split %d: merge of merges differs", split);
		run_free(&ra);
		run_free(&rb);
		run_free(&rm);
		run_free(&x1);
		run_free(&x2);
	}
	for (int i = 0; i < n; i++)
		free(files[i]);
	run_free(&one);
	run_free(&t);
}

/* ---- damaged and random input ------------------------------------------------------------ */

/* The first shard of DIR/s (the largest, for damage in its middle). */
static char *largest_shard(size_t *len)
{
	DIR *d = opendir(tpath("s"));
	struct dirent *e;
	char best[PATH_MAX + 300] = "";
	off_t size = -1;

	while ((e = readdir(d))) {
		char p[PATH_MAX + 300];
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", tpath("s"), e->d_name);
		if (strstr(e->d_name, ".mts") && stat(p, &st) == 0 && st.st_size > size) {
			size = st.st_size;
			snprintf(best, sizeof(best), "%s", p);
		}
	}
	closedir(d);
	return tu_read_file(best, len);
}

Test(badinput, damaged_files_are_named_and_the_rest_is_reported)
{
	/* small chunks, so that damage leaves chunks to read */
	struct run t = trace("sample:all,seed:1,buffer:16k", "s", "all", NULL);
	size_t len;
	char *good = largest_shard(&len);
	char *bad = malloc(len);
	mkdir(tpath("bad"), 0700);

	tu_write_file(tpath("bad/empty.mts"), "", 0);
	tu_write_file(tpath("bad/short.mts"), "MTSH", 4);
	memcpy(bad, good, len);
	for (size_t i = 0; i < len; i++)
		bad[i] = (char)(i * 2654435761u >> 13);
	tu_write_file(tpath("bad/garbage.mts"), bad, len);
	memcpy(bad, good, len);
	bad[len / 2] ^= 0x55;
	tu_write_file(tpath("bad/flipped.mts"), bad, len); /* same identity: a duplicate... */
	mkdir(tpath("emptydir"), 0700);
	const char *argv[] = { MTREPORT, "--no-symbols", tpath("bad"), tpath("s"),
			       tpath("nonexistent"), tpath("emptydir"), NULL };
	struct run r = run(argv, NULL);
	cr_assert_eq(r.status, 2, "status %d: %s", r.status, r.err);
	cr_assert(strstr(r.err, "bad/empty.mts: "), "%s", r.err);
	cr_assert(strstr(r.err, "bad/short.mts: "), "%s", r.err);
	cr_assert(strstr(r.err, "bad/garbage.mts: "), "%s", r.err);
	cr_assert(strstr(r.err, "bad/flipped.mts: "), "%s", r.err);
	cr_assert(strstr(r.err, "nonexistent: "), "%s", r.err);
	cr_assert(strstr(r.err, "emptydir: no shard"), "%s", r.err);
	for (const char *l = r.err; *l; l = strchr(l, '\n') + 1)
		cr_assert(!strncmp(l, "mtreport: ", 10), "line: %.80s", l);
	cr_assert(strstr(r.out, "== 3. Top allocation sites =="));
	run_free(&r);

	/* a torn tail: the report of what is left, exit status 2 */
	mkdir(tpath("torn"), 0700);
	tu_write_file(tpath("torn/torn.mts"), good, len - len / 3);
	const char *targv[] = { MTREPORT, "--no-symbols", "-f", "json", tpath("torn"), NULL };
	r = run(targv, NULL);
	cr_assert_eq(r.status, 2, "status %d: %s", r.status, r.err);
	cr_assert(strstr(r.err, "torn tail"), "%s", r.err);
	struct json *j = json_parse(r.out);
	cr_assert_not_null(j);
	cr_assert_eq(json_num(j, "input.torn_tails"), 1);
	cr_assert_gt(json_num(j, "totals.sampled.allocs.value"), 0);
	json_free(j);
	run_free(&r);

	/* --strict: the first problem is fatal */
	const char *sargv[] = { MTREPORT, "--strict", "--no-symbols", tpath("torn"), NULL };
	r = run(sargv, NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_eq(r.out[0], '\0');
	run_free(&r);

	/* nothing readable */
	const char *nargv[] = { MTREPORT, tpath("bad/garbage.mts"), tpath("bad/empty.mts"), NULL };
	r = run(nargv, NULL);
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "nothing readable"));
	run_free(&r);
	free(bad);
	free(good);
	run_free(&t);
}

Test(badinput, random_and_mutated_input_never_crashes_it)
{
	struct run t = trace("sample:all,seed:1,buffer:16k", "s", "all", NULL);
	size_t len;
	char *good = largest_shard(&len);
	char *bad = malloc(len + 64);
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (int round = 0; round < 60; round++) {
		char name[64];
		size_t n = len;
		memcpy(bad, good, len);
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		switch (round % 4) {
		case 0: /* bytes flipped everywhere */
			for (int k = 0; k < 1 + round; k++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				bad[x % len] ^= (char)(x >> 32);
			}
			break;
		case 1: /* cut anywhere */
			n = x % len;
			break;
		case 2: /* payload bytes replaced, framing kept (CRCs fixed up would
			 * be needed to reach msgpack; a random file reaches the
			 * framing code) */
			for (size_t k = 16; k < len; k++)
				bad[k] = (char)(x >> (k % 57));
			break;
		default: /* a valid header, then noise */
			for (size_t k = 16 + x % 64; k < len; k += 1 + x % 7)
				bad[k] = (char)(k * 31);
		}
		snprintf(name, sizeof(name), "r%d.mts", round);
		tu_write_file(tpath(name), bad, n);
		const char *argv[] = { MTREPORT, "--no-symbols", "-f", round % 2 ? "json" : "text",
				       tpath(name), NULL };
		struct run r = run(argv, NULL);
		cr_assert(r.status == 0 || r.status == 1 || r.status == 2,
			  "round %d: status %d: %s", round, r.status, r.err);
		run_free(&r);
		unlink(tpath(name));
	}
	free(bad);
	free(good);
	run_free(&t);
}

/* ---- memory ------------------------------------------------------------------------------ */

#define STR(lit) ((struct mt_shard_str){ lit, sizeof(lit) - 1 })

/* Starts a shard of thread tid of process 77 (policy all). */
static void mem_shard(struct synth *s, uint64_t tid)
{
	static const uint64_t pcs[] = { 0x401234 };
	struct mt_shard_record r;

	synth_init(s, MT_SHARD_MAJOR, MT_SHARD_MINOR, 0);
	synth_begin_chunk(s, 0, 1000);
	memset(&r, 0, sizeof(r));
	r.kind = MT_REC_HEADER;
	r.u.header.present = MT_SHARD_H_HOST | MT_SHARD_H_PID | MT_SHARD_H_TID |
			     MT_SHARD_H_POLICY | MT_SHARD_H_SHARD_SEQ;
	r.u.header.host = STR("h");
	r.u.header.pid = 77;
	r.u.header.tid = tid;
	r.u.header.policy_name = STR("all");
	r.u.header.shard_seq = tid;
	synth_record(s, &r);
	r.kind = MT_REC_STACK;
	r.u.stack = (struct mt_shard_stack){ 1, pcs, 1 };
	synth_record(s, &r);
}

/* Moves what the shard holds so far to fd (keeps the test's memory low). */
static void mem_flush(struct synth *s, int fd)
{
	cr_assert_eq(write(fd, s->file.data, s->file.size), (ssize_t)s->file.size);
	msgpack_sbuffer_clear(&s->file);
}

Test(cli, memory_follows_live_objects_not_the_input_size)
{
	/* a producer thread allocates, a consumer thread frees each object
	 * right after: read shard by shard, every allocation would wait for
	 * its free; merged by event number, one object is live at a time */
	enum { PAIRS = 600000, PER_CHUNK = 2000 };
	struct synth a, b;
	struct mt_shard_record r;
	int fa = open(tpath("prod.mts"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int fb = open(tpath("cons.mts"), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	mem_shard(&a, 2);
	mem_shard(&b, 3);
	memset(&r, 0, sizeof(r));
	for (uint64_t i = 0; i < PAIRS; i++) {
		if (i && i % PER_CHUNK == 0) {
			synth_end_chunk(&a);
			synth_end_chunk(&b);
			mem_flush(&a, fa);
			mem_flush(&b, fb);
			synth_begin_chunk(&a, 2 * i, 1000 + 10 * i);
			synth_begin_chunk(&b, 2 * i, 1000 + 10 * i);
		}
		r.kind = MT_REC_ALLOC;
		r.u.alloc = (struct mt_shard_alloc){ 2 * i + 1, 1000 + 10 * i + 1, 0, 64, 0,
						     1, 0, false };
		synth_record(&a, &r);
		r.kind = MT_REC_FREE;
		r.u.free = (struct mt_shard_free){ 2 * i + 2, 1000 + 10 * i + 2, 0, 2 * i + 1 };
		synth_record(&b, &r);
	}
	synth_end_chunk(&a);
	synth_end_chunk(&b);
	mem_flush(&a, fa);
	mem_flush(&b, fb);
	synth_destroy(&a);
	synth_destroy(&b);
	close(fa);
	close(fb);

	struct stat st;
	cr_assert_eq(stat(tpath("prod.mts"), &st), 0);
	off_t input = st.st_size;
	cr_assert_eq(stat(tpath("cons.mts"), &st), 0);
	input += st.st_size;

	const char *argv[] = { MTREPORT, "--no-symbols", "-f", "json", "-j2",
			       tpath("prod.mts"), tpath("cons.mts"), NULL };
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int status;
	struct rusage ru;
	cr_assert_eq(wait4(pid, &status, 0, &ru), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
	/* the live table would need PAIRS x 40 bytes and more (24 MB here) */
	cr_assert_lt(ru.ru_maxrss, 16 * 1024, "peak RSS %ld KiB for %ld bytes of input",
		     ru.ru_maxrss, (long)input);
}

/* ---- usage ------------------------------------------------------------------------------ */

Test(cli, usage_errors_exit_with_status_one)
{
	const char *a1[] = { MTREPORT, NULL };
	const char *a2[] = { MTREPORT, "--format", "xml", "x", NULL };
	const char *a3[] = { MTREPORT, "merge", "x", NULL };
	const char *a4[] = { MTREPORT, "--top", "0", "x", NULL };
	const char *a5[] = { MTREPORT, "--bogus", "x", NULL };
	const char *a6[] = { MTREPORT, "--sort", "size", "x", NULL };
	const char *const *bad[] = { a1, a2, a3, a4, a5, a6 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct run r = run(bad[i], NULL);
		cr_assert_eq(r.status, 1, "case %zu: status %d", i, r.status);
		cr_assert(strstr(r.err, "usage:"), "case %zu: %s", i, r.err);
		run_free(&r);
	}
	const char *h[] = { MTREPORT, "--help", NULL };
	struct run r = run(h, NULL);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "mtreport merge -o OUT"));
	run_free(&r);
}

Test(cli, filters_and_options_shape_the_report)
{
	struct run t = trace("sample:all,seed:1", "s", "all", NULL);
	const char *argv[] = { MTREPORT, "--no-symbols", "-f", "json", "--top", "1",
			       "--sort", "count", "--thread", "trace-2", "-F",
			       tpath("s"), NULL };
	struct run r = run(argv, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	struct json *j = json_parse(r.out);
	cr_assert_not_null(j);
	cr_assert_eq(json_get(j, "sites")->n, 1);
	cr_assert_eq(json_get(j, "threads")->n, 1);
	cr_assert_str_eq(json_str(j, "threads.0.name"), "trace-2");
	cr_assert_str_eq(json_str(j, "sort"), "count");
	cr_assert_not_null(json_get(j, "functions"));
	json_free(j);
	run_free(&r);

	const char *pargv[] = { MTREPORT, "--no-symbols", "-P", tpath("s"), NULL };
	r = run(pargv, NULL);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "######## process "));
	cr_assert_eq(r.err[0], '\0'); /* no progress line: stderr is no terminal */
	run_free(&r);
	run_free(&t);
}
