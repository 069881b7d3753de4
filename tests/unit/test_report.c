/* The report module (src/report) in process: the estimators, the adaptive
 * series and timeline, the live-object table, and the aggregate built from
 * synthetic shards (tests/reader/synth.c) -- cross-thread frees, unmatched
 * frees, duplicates, lost stacks, and the central property: merging the
 * aggregates of any split of the inputs gives the report of one pass.
 * Files go to a fresh directory under $TMPDIR (or /tmp). */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "report/report.h"
#include "synth.h"
#include "testutil.h"

/* ---- a temporary directory per test ------------------------------------- */

static const char *tpath(const char *name)
{
	static char p[8][PATH_MAX + 64];
	static int k;

	k = (k + 1) % 8;
	snprintf(p[k], sizeof(p[k]), "%s/%s", tu_dir, name);
	return p[k];
}

TestSuite(estimate, .timeout = 30);
TestSuite(series, .timeout = 60);
TestSuite(table, .timeout = 60);
TestSuite(agg, .init = tu_dir_make, .fini = tu_dir_remove, .timeout = 120);

/* ---- estimators ----------------------------------------------------------------- */

Test(estimate, weight_one_adds_exact_terms)
{
	struct mt_terms t;
	struct mt_est e = { 0 };

	mt_terms_of(1.0, 1000, &t);
	cr_assert_eq(t.n, MT_FX_ONE);
	cr_assert_eq(t.b, 1000);
	cr_assert(t.vn == 0 && t.vb == 0);
	for (int i = 0; i < 3; i++)
		mt_est_add(&e, &t);
	cr_assert_eq(mt_est_count(&e), 3.0);
	cr_assert_eq(mt_est_bytes(&e), 3000.0);
	cr_assert_eq(mt_est_count_ci(&e), 0.0);
	cr_assert_eq(e.samples, 3);
}

Test(estimate, horvitz_thompson_terms_and_variance)
{
	struct mt_terms t;
	struct mt_est e = { 0 };

	mt_terms_of(4.0, 10, &t);           /* p = 1/4 */
	cr_assert_eq(t.n, 4 * MT_FX_ONE);
	cr_assert_eq(t.b, 40);
	cr_assert(t.vn == 12);               /* (1-p)/p^2 = w(w-1) */
	cr_assert(t.vb == 1200);             /* s^2 w(w-1) */
	mt_est_add(&e, &t);
	mt_est_add(&e, &t);
	cr_assert_float_eq(mt_est_count_ci(&e), 1.96 * sqrt(24.0), 1e-9);
	cr_assert(mt_few(&e));
	mt_est_add(&e, &t);
	cr_assert(!mt_few(&e));
	mt_est_sub(&e, &t);
	cr_assert_eq(e.samples, 2);
	cr_assert_eq(mt_est_count(&e), 8.0);
}

Test(estimate, size_classes_are_jemallocs)
{
	static const uint64_t in[] = { 0, 1, 8, 9, 16, 17, 33, 48, 49, 64, 65, 80, 81,
				       128, 129, 257, 1000, 1025, 1792, 1793, 4097,
				       65537, 1048577 };
	static const uint64_t out[] = { 16, 16, 16, 16, 16, 32, 48, 48, 64, 64, 80, 80, 96,
					128, 160, 320, 1024, 1280, 1792, 2048, 5120,
					81920, 1310720 };
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		cr_assert_eq(mt_size_class(in[i]), out[i], "class of %lu: %lu, not %lu",
			     (unsigned long)in[i], (unsigned long)mt_size_class(in[i]),
			     (unsigned long)out[i]);
}

Test(estimate, lifetime_buckets_are_decades_from_one_microsecond)
{
	cr_assert_eq(mt_life_bucket(0), 0);
	cr_assert_eq(mt_life_bucket(999), 0);
	cr_assert_eq(mt_life_bucket(1000), 1);
	cr_assert_eq(mt_life_bucket(999999), 3);
	cr_assert_eq(mt_life_bucket(1000000), 4);
	cr_assert_eq(mt_life_bucket(UINT64_MAX), MT_LIFE_BUCKETS - 1);
	cr_assert_eq(mt_life_bound(0), 1000);
	cr_assert_eq(mt_life_bound(MT_LIFE_BUCKETS - 1), UINT64_MAX);
}

/* ---- series and timeline ----------------------------------------------------------- */

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static struct mt_series empty_series(void)
{
	struct mt_series s;
	memset(&s, 0, sizeof(s));
	s.tmin = UINT64_MAX;
	return s;
}

Test(series, any_split_merges_to_the_same_buckets)
{
	enum { N = 2000 };
	static uint64_t t[N];
	static int64_t d[N];

	for (int i = 0; i < N; i++) {
		/* times spread over orders of magnitude */
		t[i] = 1000000000ull + (rnd() % (1ull << (10 + i % 30)));
		d[i] = (int64_t)(rnd() % 100000) - 50000;
	}
	struct mt_series one = empty_series();
	for (int i = 0; i < N; i++)
		mt_series_add(&one, t[i], d[i]);
	for (int split = 1; split < 8; split++) {
		struct mt_series part[3] = { empty_series(), empty_series(), empty_series() };
		for (int i = N - 1; i >= 0; i--) /* another order too */
			mt_series_add(&part[(i * split + i / 7) % 3], t[i], d[i]);
		struct mt_series m = empty_series();
		mt_series_merge(&part[2], &part[0]);
		mt_series_merge(&m, &part[1]);
		mt_series_merge(&m, &part[2]);
		cr_assert_eq(memcmp(&m, &one, sizeof(m)), 0, "split %d differs", split);
	}
	cr_assert(mt_series_peak(&one) >= 0);
}

Test(series, peak_is_the_largest_running_sum)
{
	struct mt_series s = empty_series();

	mt_series_add(&s, 1000, 100);
	mt_series_add(&s, 1001, 50);
	mt_series_add(&s, 1002, -120);
	mt_series_add(&s, 1003, 10);
	cr_assert(mt_series_peak(&s) == 150);
}

Test(series, timeline_keeps_the_peak_and_the_last_point_in_any_order)
{
	enum { N = 3000 };
	static struct mt_tpoint p[N];
	struct mt_timeline one, a, b;

	memset(&one, 0, sizeof(one));
	one.tmin = UINT64_MAX;
	a = b = one;
	for (int i = 0; i < N; i++) {
		p[i].time_ns = 5000000000ull + (uint64_t)i * 1000003ull;
		p[i].allocated = rnd() % 1000000;
		p[i].resident = rnd() % 1000;
	}
	p[1234].allocated = 5000000;
	for (int i = 0; i < N; i++)
		mt_timeline_add(&one, &p[i]);
	for (int i = N - 1; i >= 0; i--)
		mt_timeline_add(i % 3 ? &a : &b, &p[i]);
	mt_timeline_merge(&b, &a);
	cr_assert_eq(memcmp(&b, &one, sizeof(b)), 0);
	bool peak = false, last = false;
	for (unsigned i = 0; i < MT_TL_N; i++) {
		peak |= one.s[i].used && one.s[i].max.allocated == 5000000;
		last |= one.s[i].used && one.s[i].last.time_ns == p[N - 1].time_ns;
	}
	cr_assert(peak && last);
}

/* ---- the live-object table ------------------------------------------------------------- */

Test(table, inserts_and_deletes_match_a_reference)
{
	enum { K = 5000 };
	static bool in[2][K];   /* keys i, and i << 21 (strided) */
	struct mt_otab t;
	size_t n = 0;

	mt_otab_init(&t, sizeof(struct mt_live));
	for (int i = 0; i < 200000; i++) {
		int kind = (int)(rnd() & 1);
		uint64_t idx = 1 + rnd() % (K - 1), k = kind ? idx << 21 : idx;
		struct mt_live *e = mt_otab_get(&t, k);
		cr_assert_eq(e != NULL, in[kind][idx], "key %lu", (unsigned long)k);
		if (e) {
			cr_assert_eq(e->size, k + 1);
			mt_otab_del(&t, e);
			in[kind][idx] = false;
			n--;
		} else {
			e = mt_otab_add(&t, k);
			cr_assert_not_null(e);
			cr_assert_null(mt_otab_add(&t, k));
			e = mt_otab_get(&t, k);
			e->size = k + 1;
			in[kind][idx] = true;
			n++;
		}
		cr_assert_eq(t.n, n);
	}
	cr_assert_null(mt_otab_add(&t, MT_OTAB_EMPTY));
	mt_otab_free(&t);
}

/* ---- synthetic shards ------------------------------------------------------------------ */

#define STR(lit) ((struct mt_shard_str){ lit, sizeof(lit) - 1 })

struct sh {
	struct synth s;
	uint64_t t;
};

static const uint8_t BID[] = { 0xde, 0xad, 0xbe, 0xef };

static void rec(struct sh *x, struct mt_shard_record r)
{
	synth_record(&x->s, &r);
}

/* A shard of thread tid of process pid, with one module and two stacks
 * (ids 1 and 2); events follow with seqs from seq_base. */
static void sh_begin(struct sh *x, uint64_t pid, uint64_t tid, const char *name,
		     const char *policy, uint64_t seq_base)
{
	struct mt_shard_record r;
	static struct mt_shard_str argv[] = { STR("prog"), STR("--flag") };
	static const uint64_t pc1[] = { 0x401100, 0x401200 }, pc2[] = { 0x401300 };

	memset(x, 0, sizeof(*x));
	x->t = 1000000000ull;
	synth_init(&x->s, MT_SHARD_MAJOR, MT_SHARD_MINOR, 0);
	synth_begin_chunk(&x->s, seq_base, x->t);
	memset(&r, 0, sizeof(r));
	r.kind = MT_REC_HEADER;
	struct mt_shard_header *h = &r.u.header;
	h->present = MT_SHARD_H_HOST | MT_SHARD_H_PID | MT_SHARD_H_PPID | MT_SHARD_H_TID |
		     MT_SHARD_H_THREAD | MT_SHARD_H_EXE | MT_SHARD_H_ARGV |
		     MT_SHARD_H_START_REAL | MT_SHARD_H_START_MONO | MT_SHARD_H_POLICY |
		     MT_SHARD_H_MEAN | MT_SHARD_H_SHARD_SEQ | MT_SHARD_H_ADDR_BASE |
		     MT_SHARD_H_VERSION;
	h->version = STR("0.1.0");
	h->host = STR("testhost");
	h->pid = pid;
	h->ppid = 1;
	h->tid = tid;
	h->thread = (struct mt_shard_str){ name, (uint32_t)strlen(name) };
	h->exe = STR("/usr/bin/prog");
	h->argv = argv;
	h->argc = 2;
	h->start_realtime_ns = 1700000000000000000ull + pid;
	h->start_mono_ns = 1000000000ull;
	h->policy_name = (struct mt_shard_str){ policy, (uint32_t)strlen(policy) };
	h->mean = 4096;
	h->shard_seq = tid;
	h->addr_base = 0x10000000000ull;
	rec(x, r);
	memset(&r, 0, sizeof(r));
	r.kind = MT_REC_MODULE;
	r.u.module = (struct mt_shard_module){ 0, STR("/usr/bin/prog"), BID, 4,
					       0x400000, 0x10000 };
	rec(x, r);
	r.kind = MT_REC_STACK;
	r.u.stack = (struct mt_shard_stack){ 1, pc1, 2 };
	rec(x, r);
	r.u.stack = (struct mt_shard_stack){ 2, pc2, 1 };
	rec(x, r);
}

static void sh_alloc(struct sh *x, uint64_t seq, uint64_t size, uint64_t stack)
{
	struct mt_shard_record r;

	memset(&r, 0, sizeof(r));
	r.kind = MT_REC_ALLOC;
	x->t += 1000;
	r.u.alloc = (struct mt_shard_alloc){ seq, x->t, 0x10000000000ull + seq * 64,
					     size, 0, stack, 0, false };
	rec(x, r);
}

static void sh_free(struct sh *x, uint64_t seq, uint64_t alloc_seq)
{
	struct mt_shard_record r;

	memset(&r, 0, sizeof(r));
	r.kind = MT_REC_FREE;
	x->t += 1000;
	r.u.free = (struct mt_shard_free){ seq, x->t, 0x10000000000ull + alloc_seq * 64,
					   alloc_seq };
	rec(x, r);
}

static void sh_save(struct sh *x, const char *name)
{
	struct mt_shard_record r;

	memset(&r, 0, sizeof(r));
	r.kind = MT_REC_TOTALS;
	r.u.totals = (struct mt_shard_totals){ x->t, 100, 50, 10000, 5000, false };
	rec(x, r);
	r.kind = MT_REC_END;
	r.u.end = (struct mt_shard_timed_str){ x->t, STR("exit") };
	rec(x, r);
	synth_end_chunk(&x->s);
	cr_assert_eq(synth_save(&x->s, tpath(name)), 0);
	synth_destroy(&x->s);
}

/* ---- running the report in process ---------------------------------------------------- */

static struct mt_options opts(void)
{
	struct mt_options o;
	memset(&o, 0, sizeof(o));
	o.top = 10;
	o.format = MT_FMT_JSON;
	o.jobs = 2;
	return o;
}

/* Reads paths into a; the number of problems. */
static uint64_t ingest(struct mt_agg *a, const char *const *paths, int n, unsigned jobs)
{
	struct mt_options o = opts();
	struct mt_ingest_ctx ctx;
	struct mt_inputs in;

	memset(&ctx, 0, sizeof(ctx));
	ctx.agg = a;
	ctx.opt = &o;
	pthread_mutex_init(&ctx.lock, NULL);
	mt_inputs_collect(&in, (char *const *)paths, n, &ctx);
	mt_ingest(&ctx, &in, jobs);
	mt_inputs_free(&in);
	pthread_mutex_destroy(&ctx.lock);
	return ctx.skipped;
}

/* The JSON report of an aggregate (caller frees). */
static char *json_of(const struct mt_agg *a)
{
	struct mt_options o = opts();
	struct mt_view v;
	struct mt_view *vp = &v;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	mt_view_build(&v, a, &o, NULL);
	mt_emit_json(f, &vp, 1);
	mt_view_free(&v);
	fclose(f);
	return buf;
}

static char *report(const char *const *paths, int n, unsigned jobs)
{
	struct mt_agg a;
	mt_agg_init(&a);
	ingest(&a, paths, n, jobs);
	char *j = json_of(&a);
	mt_agg_destroy(&a);
	return j;
}

/* Two processes; process 10 has threads 11 (allocates at stack 1, frees
 * half), 12 (frees a quarter of 11's objects: cross-thread) and 13
 * (allocates at stack 2, frees nothing); process 20 has one thread. */
static void write_world(void)
{
	struct sh a, b, c, d;

	sh_begin(&a, 10, 11, "main", "all", 0);
	for (uint64_t i = 1; i <= 40; i++)
		sh_alloc(&a, i, 100 + i, 1);
	for (uint64_t i = 1; i <= 20; i++)
		sh_free(&a, 100 + i, i);
	sh_save(&a, "p10-t11.mts");

	sh_begin(&b, 10, 12, "worker", "all", 0);
	for (uint64_t i = 21; i <= 30; i++)
		sh_free(&b, 200 + i, i);
	sh_save(&b, "p10-t12.mts");

	sh_begin(&c, 10, 13, "leaker", "all", 0);
	for (uint64_t i = 300; i < 312; i++)
		sh_alloc(&c, i, 5000, 2);
	sh_save(&c, "p10-t13.mts");

	sh_begin(&d, 20, 21, "other", "poisson", 0);
	for (uint64_t i = 1; i <= 10; i++)
		sh_alloc(&d, i, 256, 1);
	for (uint64_t i = 1; i <= 10; i++)
		sh_free(&d, 10 + i, i);
	sh_save(&d, "p20-t21.mts");
}

static const char *world[] = { "p10-t11.mts", "p10-t12.mts", "p10-t13.mts",
				"p20-t21.mts" };

/* The site (in JSON) whose frames start at offset off. */
static const struct json *site_at(const struct json *j, unsigned off)
{
	const struct json *s = json_get(j, "sites");
	for (size_t i = 0; s && i < s->n; i++)
		if (json_num(s->v[i], "frames.0.offset") == off)
			return s->v[i];
	return NULL;
}

Test(agg, cross_thread_frees_match_their_allocations_across_shards)
{
	write_world();
	const char *p[] = { tpath(world[0]), tpath(world[1]), tpath(world[2]) };
	char *text = report(p, 3, 2);
	struct json *j = json_parse(text);
	cr_assert_not_null(j, "bad JSON: %s", text);

	const struct json *s = site_at(j, 0x1100);
	cr_assert_not_null(s);
	cr_assert_eq(json_num(s, "allocs.value"), 40);
	cr_assert_eq(json_num(s, "frees.value"), 30);
	cr_assert_eq(json_num(s, "cross_thread_frees.value"), 10);
	cr_assert_eq(json_num(s, "live_objects.value"), 10);
	cr_assert_str_eq(json_str(s, "frames.0.module"), "prog");
	cr_assert_str_eq(json_str(s, "frames.0.build_id"), "deadbeef");
	cr_assert_eq(json_num(j, "cross_thread.matrix.0.from_tid"), 11);
	cr_assert_eq(json_num(j, "cross_thread.matrix.0.to_tid"), 12);
	cr_assert_eq(json_num(j, "cross_thread.matrix.0.objects.value"), 10);
	const struct json *lk = site_at(j, 0x1300);
	cr_assert_eq(json_num(lk, "live_bytes.value"), 12 * 5000);
	cr_assert_str_eq(json_str(j, "leaks.0.label"), "prog+0x1300");
	cr_assert_eq(json_num(j, "input.unmatched_frees"), 0);
	cr_assert_eq(json_num(j, "totals.exact.allocs"), 300);
	json_free(j);
	free(text);
}

Test(agg, a_free_without_its_allocation_stays_unmatched)
{
	write_world();
	const char *p[] = { tpath(world[1]) }; /* the freeing thread alone */
	char *text = report(p, 1, 1);
	struct json *j = json_parse(text);
	cr_assert_eq(json_num(j, "input.unmatched_frees"), 10);
	cr_assert_eq(json_num(j, "totals.sampled.frees.value"), 0);
	json_free(j);
	free(text);
}

Test(agg, poisson_weights_come_from_the_header_mean)
{
	write_world();
	const char *p[] = { tpath(world[3]) };
	char *text = report(p, 1, 1);
	struct json *j = json_parse(text);
	double w = -1.0 / expm1(-256.0 / 4096.0);
	double n = json_num(j, "totals.sampled.allocs.value");
	cr_assert(fabs(n - 10 * w) < 0.01, "%f vs %f", n, 10 * w);
	cr_assert(json_num(j, "totals.sampled.allocs.ci95.1") > n);
	json_free(j);
	free(text);
}

Test(agg, the_same_shard_twice_is_read_once)
{
	write_world();
	FILE *f = fopen(tpath(world[0]), "rb");
	char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	cr_assert_eq(synth_write_file(tpath("copy.mts"), buf, n), 0);
	const char *p[] = { tpath(world[0]), tpath("copy.mts"), tpath(world[0]) };
	struct mt_agg a;
	mt_agg_init(&a);
	cr_assert_eq(ingest(&a, p, 3, 2), 1);  /* the copy; the path twice is silent */
	cr_assert_eq(a.nproblems, 1);
	cr_assert(strstr(a.problems[0].text, "the same shard"));
	mt_agg_destroy(&a);
}

Test(agg, an_allocation_whose_stack_record_is_lost_goes_to_an_unknown_site)
{
	struct sh x;
	sh_begin(&x, 30, 31, "t", "all", 0);
	sh_alloc(&x, 1, 64, 99); /* stack 99 was never recorded */
	sh_save(&x, "lost.mts");
	const char *p[] = { tpath("lost.mts") };
	char *text = report(p, 1, 1);
	struct json *j = json_parse(text);
	cr_assert_str_eq(json_str(j, "sites.0.label"), "[unknown stack]");
	cr_assert_eq(json_num(j, "sites.0.allocs.value"), 1);
	json_free(j);
	free(text);
}

/* Writes the aggregate of the inputs whose bit is set in mask. */
static void write_part(unsigned mask, const char *out, const char *const *names, int n)
{
	const char *p[8];
	int k = 0;
	struct mt_agg a;
	const char *err = NULL;

	for (int i = 0; i < n; i++)
		if (mask & (1u << i))
			p[k++] = tpath(names[i]);
	mt_agg_init(&a);
	ingest(&a, p, k, 2);
	cr_assert_eq(mt_aggfile_write(&a, tpath(out), &err), 0, "%s", err ? err : "");
	mt_agg_destroy(&a);
}

Test(agg, merging_any_split_gives_the_report_of_one_pass)
{
	write_world();
	const char *all[4];
	for (int i = 0; i < 4; i++)
		all[i] = tpath(world[i]);
	char *one = report(all, 4, 2);

	/* every split in two, then a three-way one, merged in both orders */
	for (unsigned mask = 1; mask < 15; mask++) {
		write_part(mask, "x.mta", world, 4);
		write_part(15 & ~mask, "y.mta", world, 4);
		const char *xy[] = { tpath("x.mta"), tpath("y.mta") };
		const char *yx[] = { tpath("y.mta"), tpath("x.mta") };
		char *m1 = report(xy, 2, 1);
		char *m2 = report(yx, 2, 2);
		cr_assert_str_eq(m1, one, "split %#x differs", mask);
		cr_assert_str_eq(m2, one, "split %#x (reversed) differs", mask);
		free(m1);
		free(m2);
	}
	write_part(1 | 8, "a.mta", world, 4);
	write_part(2, "b.mta", world, 4);
	const char *ab[] = { tpath("a.mta"), tpath("b.mta") };
	struct mt_agg m;
	const char *err;
	mt_agg_init(&m);
	ingest(&m, ab, 2, 1);
	cr_assert_eq(mt_aggfile_write(&m, tpath("ab.mta"), &err), 0);
	mt_agg_destroy(&m);
	const char *mix[] = { tpath("ab.mta"), tpath(world[2]) }; /* aggregate + shard */
	char *m3 = report(mix, 2, 2);
	cr_assert_str_eq(m3, one);
	free(m3);
	free(one);
}

Test(agg, an_aggregate_holding_a_shard_already_read_is_skipped)
{
	write_world();
	write_part(1 | 2, "x.mta", world, 4);
	const char *p[] = { tpath(world[0]), tpath("x.mta") };
	struct mt_agg a;
	mt_agg_init(&a);
	cr_assert_eq(ingest(&a, p, 2, 1), 1);
	cr_assert(strstr(a.problems[0].text, "already counted"));
	mt_agg_destroy(&a);
}

Test(agg, a_damaged_aggregate_is_rejected_whole)
{
	write_world();
	write_part(15, "w.mta", world, 4);
	FILE *f = fopen(tpath("w.mta"), "rb");
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	char err[512];

	/* every cut, and a flipped bit at many places */
	for (size_t cut = 0; cut < n; cut += 1 + cut / 64) {
		struct mt_agg a;
		cr_assert_eq(synth_write_file(tpath("cut.mta"), buf, cut), 0);
		mt_agg_init(&a);
		cr_assert_lt(mt_aggfile_read(&a, tpath("cut.mta"), err, sizeof(err)), 0,
			     "cut at %zu accepted", cut);
		cr_assert_neq(err[0], '\0');
		mt_agg_destroy(&a);
	}
	for (size_t pos = 0; pos < n; pos += 1 + pos / 32) {
		struct mt_agg a;
		if (pos == 10 || pos == 11)
			continue; /* the minor version: any is readable */
		buf[pos] ^= 0x10;
		cr_assert_eq(synth_write_file(tpath("flip.mta"), buf, n), 0);
		buf[pos] ^= 0x10;
		mt_agg_init(&a);
		cr_assert_lt(mt_aggfile_read(&a, tpath("flip.mta"), err, sizeof(err)), 0,
			     "flip at %zu accepted", pos);
		mt_agg_destroy(&a);
	}
	struct mt_agg a;
	mt_agg_init(&a);
	cr_assert_eq(mt_aggfile_read(&a, tpath("w.mta"), err, sizeof(err)), 0, "%s", err);
	mt_agg_destroy(&a);
}
