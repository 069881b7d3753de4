/* The shard reader (src/shard/reader.c): round trips of synthetic shards
 * (tests/reader/synth.c) with every record kind, truncation at every byte,
 * bit flips, garbage, version rules, and malformed records.  Files are
 * written to a fresh directory under $TMPDIR (or /tmp). */
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

#include "shard/reader.h"
#include "synth.h"
#include "testutil.h"

/* ---- a temporary directory per test ------------------------------------- */

TestSuite(reader, .init = tu_dir_make, .fini = tu_dir_remove, .timeout = 120);

static const char *tpath(const char *name)
{
	static char p[PATH_MAX + 64];

	snprintf(p, sizeof(p), "%s/%s", tu_dir, name);
	return p;
}

/* ---- a model: the records written, for comparison with those read ------ */

#define STR(lit) ((struct mt_shard_str){ lit, sizeof(lit) - 1 })
#define MAXREC 256

struct model {
	struct synth s;
	struct mt_shard_record rec[MAXREC];
	size_t n;
};

static void m_init(struct model *m, unsigned major, unsigned minor)
{
	memset(m, 0, sizeof(*m));
	synth_init(&m->s, major, minor, 0);
}

static void m_add(struct model *m, struct mt_shard_record r)
{
	cr_assert_lt(m->n, MAXREC);
	r.chunk = m->s.seq;
	r.chunk_offset = m->s.file.size;
	m->rec[m->n] = r;
	synth_record(&m->s, &m->rec[m->n]);
	m->n++;
}

static struct mt_shard_record rec_of(enum mt_rec_kind kind)
{
	struct mt_shard_record r;

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	return r;
}

#define ADDR_BASE 0x7f3a00000000ull

static const struct mt_shard_str argv_full[] = {
	STR("/usr/bin/prog"), STR("--threads=4"), STR(""), STR("h\xc3\xa9llo"),
};

static struct mt_shard_record header_full(void)
{
	struct mt_shard_record r = rec_of(MT_REC_HEADER);
	struct mt_shard_header *h = &r.u.header;

	h->present = (1u << 26) - 1; /* every key, tiers included */
	h->version = STR("0.1.0");
	h->host = STR("build-7");
	h->pid = 4242;
	h->ppid = 1;
	h->tid = 4243;
	h->thread = STR("worker-1");
	h->exe = STR("/usr/bin/prog");
	h->argv = argv_full;
	h->argc = 4;
	h->start_realtime_ns = 1700000000123456789ull;
	h->start_mono_ns = 5000000000ull;
	h->clock = STR("monotonic");
	h->policy_name = STR("poisson");
	h->policy = MT_SHARD_POLICY_POISSON;
	h->mean = 512 << 10;
	h->large = 1 << 20;
	h->medium = 4096;
	h->medium_rate = 0.1;
	h->small_rate = 0.01;
	h->boost_threshold = 1000;
	h->boost_max = 10;
	h->seed = 0xdeadbeefcafeull;
	h->stack_depth = 32;
	h->unwind = STR("libunwind");
	h->shard_seq = 3;
	h->addr_base = ADDR_BASE;
	h->buffer = 65536;
	return r;
}

static struct mt_shard_record r_alloc(uint64_t seq, uint64_t t, uint64_t addr,
				      uint64_t size, uint64_t slack,
				      uint64_t stack, double weight)
{
	struct mt_shard_record r = rec_of(MT_REC_ALLOC);

	r.u.alloc = (struct mt_shard_alloc){ seq, t, addr, size, slack, stack,
					     weight > 0 ? weight : 0, weight > 0 };
	return r;
}

static struct mt_shard_record r_free(uint64_t seq, uint64_t t, uint64_t addr,
				     uint64_t alloc_seq)
{
	struct mt_shard_record r = rec_of(MT_REC_FREE);

	r.u.free = (struct mt_shard_free){ seq, t, addr, alloc_seq };
	return r;
}

static struct mt_shard_record r_timed(enum mt_rec_kind kind, uint64_t t,
				      struct mt_shard_str s)
{
	struct mt_shard_record r = rec_of(kind);

	r.u.mark = (struct mt_shard_timed_str){ t, s };
	return r;
}

static struct mt_shard_record r_stack(uint64_t id, const uint64_t *pcs,
				      uint32_t depth)
{
	struct mt_shard_record r = rec_of(MT_REC_STACK);

	r.u.stack = (struct mt_shard_stack){ id, pcs, depth };
	return r;
}

static const uint64_t pcs_a[] = { 0x55550000103aull, 0x555500002000ull,
				  0x7f3b12345678ull };
static uint64_t pcs_max[MT_SHARD_MAX_FRAMES];
static const uint8_t build_id[] = { 0x8f, 0x00, 0x4d, 0x54, 0x43, 0x4b,
				    0xff, 0x10, 0x20, 0x30 };
static const struct mt_shard_class classes[] = {
	{ 8, 100 }, { 16, 2000 }, { 4096, 3 }, { 1ull << 40, 1 },
};

/* Every record kind over three chunks, with deltas that grow, stay and
 * shrink. */
static void build_full(struct model *m)
{
	struct mt_shard_record r;
	uint64_t t = 5000000000ull;

	for (unsigned i = 0; i < MT_SHARD_MAX_FRAMES; i++)
		pcs_max[i] = 0x400000ull + 16 * i;
	m_init(m, MT_SHARD_MAJOR, MT_SHARD_MINOR);

	synth_begin_chunk(&m->s, 1000, t);
	m_add(m, header_full());
	r = rec_of(MT_REC_MODULE);
	r.u.module = (struct mt_shard_module){ 0, STR("/usr/bin/prog"), build_id,
					       sizeof(build_id), 0x555500000000ull,
					       0x5000 };
	m_add(m, r);
	r.u.module = (struct mt_shard_module){ 1, STR("/lib/x86_64-linux-gnu/libc.so.6"),
					       NULL, 0, 0x7f3b00000000ull, 0x1d0000 };
	m_add(m, r);
	m_add(m, r_stack(1, pcs_a, 3));
	m_add(m, r_stack(2, NULL, 0));
	m_add(m, r_alloc(1003, t + 10, ADDR_BASE + 0x40, 24, 8, 1, 0));
	m_add(m, r_alloc(1010, t + 10, ADDR_BASE + 0x12345670, 1 << 20, 0, 2, 12.5));
	m_add(m, r_free(1011, t + 2000, ADDR_BASE + 0x40, 1003));
	r = rec_of(MT_REC_TOTALS);
	r.u.totals = (struct mt_shard_totals){ t + 3000, 500, 400, 64000, 51200, false };
	m_add(m, r);
	r = rec_of(MT_REC_CLASSES);
	r.u.classes = (struct mt_shard_classes){ t + 3000, classes, 4 };
	m_add(m, r);
	r = rec_of(MT_REC_TIMELINE);
	r.u.timeline = (struct mt_shard_timeline){ t + 3001, 1 << 20, 2 << 20,
						   3 << 20, 64 << 20, 123456 };
	m_add(m, r);
	m_add(m, r_timed(MT_REC_MARK, t + 4000, STR("phase 1")));
	m_add(m, r_timed(MT_REC_THREAD_NAME, t + 4001, STR("renamed")));
	synth_end_chunk(&m->s);

	t += 1000000;
	synth_begin_chunk(&m->s, 1011, t);
	m_add(m, r_stack(3, pcs_max, MT_SHARD_MAX_FRAMES));
	m_add(m, r_alloc(5000000000ull, t + 1, ADDR_BASE + 0x10, 1, 15, 3, 1.0));
	m_add(m, r_alloc(5000000001ull, t + 1, ADDR_BASE + 0xfffffff0ull, 0, 16, 3, 0));
	m_add(m, r_free(5000000002ull, t + 5, ADDR_BASE + 0x12345670, 1010));
	r = rec_of(MT_REC_DROPPED);
	r.u.dropped = (struct mt_shard_dropped){ 7, 1234 };
	m_add(m, r);
	r = rec_of(MT_REC_THREAD_EXIT);
	r.u.thread_exit = (struct mt_shard_thread_exit){ 4250, STR("short-lived"),
							 10, 9, 1000, 900 };
	m_add(m, r);
	m_add(m, r_timed(MT_REC_MARK, t + 6, (struct mt_shard_str){ "a\0b", 3 }));
	synth_end_chunk(&m->s);

	t += 7;
	synth_begin_chunk(&m->s, 5000000002ull, t);
	/* below addr_base: the scaled field wraps, the address comes back */
	m_add(m, r_alloc(5000000003ull, t + 100, ADDR_BASE - 0x100, 100, 12, 1, 3.0));
	r = rec_of(MT_REC_TOTALS);
	r.u.totals = (struct mt_shard_totals){ t + 200, 510, 410, 65000, 52000, true };
	m_add(m, r);
	m_add(m, r_timed(MT_REC_END, t + 300, STR("exit")));
	synth_end_chunk(&m->s);
}

/* Four chunks of a few records each: small enough to cut at every byte and
 * flip every bit. */
static void build_small(struct model *m)
{
	uint64_t t = 1000;

	m_init(m, MT_SHARD_MAJOR, MT_SHARD_MINOR);
	synth_begin_chunk(&m->s, 0, t);
	m_add(m, header_full());
	m_add(m, r_stack(1, pcs_a, 3));
	m_add(m, r_alloc(1, t + 1, ADDR_BASE + 0x100, 32, 0, 1, 0));
	synth_end_chunk(&m->s);
	for (unsigned c = 1; c < 4; c++) {
		synth_begin_chunk(&m->s, 10 * c, t + 100 * c);
		m_add(m, r_alloc(10 * c + 1, t + 100 * c + 1, ADDR_BASE + 0x200 * c, 64 * c, 0, 1, 0));
		m_add(m, r_free(10 * c + 2, t + 100 * c + 9, ADDR_BASE + 0x200 * c, 10 * c + 1));
		m_add(m, r_timed(MT_REC_MARK, t + 100 * c + 10, STR("m")));
		synth_end_chunk(&m->s);
	}
}

/* ---- comparison ---------------------------------------------------------- */

static void expect_str(struct mt_shard_str got, struct mt_shard_str want,
		       const char *what)
{
	if (!want.ptr) {
		cr_expect_null(got.ptr, "%s: expected absent", what);
		return;
	}
	cr_assert_not_null(got.ptr, "%s: missing", what);
	cr_expect_eq(got.len, want.len, "%s: length %u, want %u", what, got.len, want.len);
	cr_expect(memcmp(got.ptr, want.ptr, want.len) == 0, "%s differs", what);
	cr_expect_eq(got.ptr[got.len], '\0', "%s: not NUL-terminated", what);
}

static void expect_header(const struct mt_shard_header *g,
			  const struct mt_shard_header *w)
{
	cr_expect_eq(g->present, w->present, "present %#x, want %#x", g->present, w->present);
	expect_str(g->version, w->version, "version");
	expect_str(g->host, w->host, "host");
	cr_expect_eq(g->pid, w->pid);
	cr_expect_eq(g->ppid, w->ppid);
	cr_expect_eq(g->tid, w->tid);
	expect_str(g->thread, w->thread, "thread");
	expect_str(g->exe, w->exe, "exe");
	cr_assert_eq(g->argc, w->argc);
	for (uint32_t i = 0; i < w->argc; i++)
		expect_str(g->argv[i], w->argv[i], "argv");
	cr_expect_eq(g->start_realtime_ns, w->start_realtime_ns);
	cr_expect_eq(g->start_mono_ns, w->start_mono_ns);
	expect_str(g->clock, w->clock, "clock");
	expect_str(g->policy_name, w->policy_name, "policy");
	cr_expect_eq(g->policy, w->policy);
	cr_expect_eq(g->mean, w->mean);
	cr_expect_eq(g->large, w->large);
	cr_expect_eq(g->medium, w->medium);
	cr_expect_eq(g->medium_rate, w->medium_rate);
	cr_expect_eq(g->small_rate, w->small_rate);
	cr_expect_eq(g->boost_threshold, w->boost_threshold);
	cr_expect_eq(g->boost_max, w->boost_max);
	cr_expect_eq(g->seed, w->seed);
	cr_expect_eq(g->stack_depth, w->stack_depth);
	expect_str(g->unwind, w->unwind, "unwind");
	cr_expect_eq(g->shard_seq, w->shard_seq);
	cr_expect_eq(g->addr_base, w->addr_base);
	cr_expect_eq(g->buffer, w->buffer);
}

/* Compares a record read with the one written; addr_off is subtracted from
 * the written addresses (addr_base when the header was lost). */
static void expect_record(const struct mt_shard_record *g,
			  const struct mt_shard_record *w, uint64_t addr_off)
{
	const typeof(g->u) *a = &g->u, *b = &w->u;

	cr_assert_eq(g->kind, w->kind, "kind %d, want %d", g->kind, w->kind);
	cr_expect_eq(g->chunk, w->chunk);
	cr_expect_eq(g->chunk_offset, w->chunk_offset);
	switch (w->kind) {
	case MT_REC_HEADER:
		expect_header(&a->header, &b->header);
		break;
	case MT_REC_MODULE:
		cr_expect_eq(a->module.id, b->module.id);
		expect_str(a->module.path, b->module.path, "module path");
		cr_assert_eq(a->module.build_id_len, b->module.build_id_len);
		if (b->module.build_id_len)
			cr_expect(memcmp(a->module.build_id, b->module.build_id,
					 b->module.build_id_len) == 0);
		else
			cr_expect_null(a->module.build_id);
		cr_expect_eq(a->module.base, b->module.base);
		cr_expect_eq(a->module.size, b->module.size);
		break;
	case MT_REC_STACK:
		cr_expect_eq(a->stack.id, b->stack.id);
		cr_assert_eq(a->stack.depth, b->stack.depth);
		for (uint32_t i = 0; i < b->stack.depth; i++)
			cr_expect_eq(a->stack.pcs[i], b->stack.pcs[i]);
		break;
	case MT_REC_ALLOC:
		cr_expect_eq(a->alloc.seq, b->alloc.seq, "seq %lu, want %lu",
			     a->alloc.seq, b->alloc.seq);
		cr_expect_eq(a->alloc.time_ns, b->alloc.time_ns);
		cr_expect_eq(a->alloc.addr, b->alloc.addr - addr_off, "addr %#lx, want %#lx",
			     a->alloc.addr, b->alloc.addr - addr_off);
		cr_expect_eq(a->alloc.size, b->alloc.size);
		cr_expect_eq(a->alloc.slack, b->alloc.slack);
		cr_expect_eq(a->alloc.stack_id, b->alloc.stack_id);
		cr_expect_eq(a->alloc.has_weight, b->alloc.has_weight);
		cr_expect_eq(a->alloc.weight, b->alloc.weight);
		break;
	case MT_REC_FREE:
		cr_expect_eq(a->free.seq, b->free.seq);
		cr_expect_eq(a->free.time_ns, b->free.time_ns);
		cr_expect_eq(a->free.addr, b->free.addr - addr_off);
		cr_expect_eq(a->free.alloc_seq, b->free.alloc_seq);
		break;
	case MT_REC_TOTALS:
		cr_expect(memcmp(&a->totals, &b->totals, sizeof(a->totals)) == 0 ||
			  (a->totals.time_ns == b->totals.time_ns &&
			   a->totals.allocs == b->totals.allocs &&
			   a->totals.frees == b->totals.frees &&
			   a->totals.bytes_allocated == b->totals.bytes_allocated &&
			   a->totals.bytes_freed == b->totals.bytes_freed &&
			   a->totals.shared == b->totals.shared), "totals differ");
		break;
	case MT_REC_CLASSES:
		cr_expect_eq(a->classes.time_ns, b->classes.time_ns);
		cr_assert_eq(a->classes.n, b->classes.n);
		for (uint32_t i = 0; i < b->classes.n; i++) {
			cr_expect_eq(a->classes.v[i].size, b->classes.v[i].size);
			cr_expect_eq(a->classes.v[i].requests, b->classes.v[i].requests);
		}
		break;
	case MT_REC_TIMELINE:
		cr_expect_eq(a->timeline.time_ns, b->timeline.time_ns);
		cr_expect_eq(a->timeline.allocated, b->timeline.allocated);
		cr_expect_eq(a->timeline.active, b->timeline.active);
		cr_expect_eq(a->timeline.resident, b->timeline.resident);
		cr_expect_eq(a->timeline.mapped, b->timeline.mapped);
		cr_expect_eq(a->timeline.live_estimate, b->timeline.live_estimate);
		break;
	case MT_REC_MARK:
	case MT_REC_THREAD_NAME:
	case MT_REC_END:
		cr_expect_eq(a->mark.time_ns, b->mark.time_ns);
		expect_str(a->mark.str, b->mark.str, "string");
		break;
	case MT_REC_DROPPED:
		cr_expect_eq(a->dropped.records, b->dropped.records);
		cr_expect_eq(a->dropped.bytes, b->dropped.bytes);
		break;
	case MT_REC_THREAD_EXIT:
		cr_expect_eq(a->thread_exit.tid, b->thread_exit.tid);
		expect_str(a->thread_exit.name, b->thread_exit.name, "name");
		cr_expect_eq(a->thread_exit.allocs, b->thread_exit.allocs);
		cr_expect_eq(a->thread_exit.frees, b->thread_exit.frees);
		cr_expect_eq(a->thread_exit.bytes_allocated, b->thread_exit.bytes_allocated);
		cr_expect_eq(a->thread_exit.bytes_freed, b->thread_exit.bytes_freed);
		break;
	case MT_REC_CHUNK:
		cr_assert_fail("MT_REC_CHUNK returned");
	}
}

/* Reads path and checks that its records are m's, less those of the chunks
 * whose bit is set in `lost`.  Leaves the stats in *st. */
static void read_expect(const char *path, const struct model *m, uint64_t lost,
			struct mt_shard_stats *st)
{
	struct mt_shard_reader *r;
	const struct mt_shard_record *g;
	size_t i = 0;
	int rc;

	cr_assert_eq(mt_shard_reader_new(&r), 0);
	rc = mt_shard_open(r, path);
	cr_assert_eq(rc, 0, "open: %d %s", rc, mt_shard_error(r));
	while ((rc = mt_shard_next(r, &g)) == 0 && g) {
		while (i < m->n && (lost >> m->rec[i].chunk & 1))
			i++;
		cr_assert_lt(i, m->n, "more records than written");
		expect_record(g, &m->rec[i], mt_shard_header(r) ? 0 : ADDR_BASE);
		i++;
	}
	cr_assert_eq(rc, 0, "next: %d %s", rc, mt_shard_error(r));
	while (i < m->n && (lost >> m->rec[i].chunk & 1))
		i++;
	cr_assert_eq(i, m->n, "records missing: read up to %zu of %zu", i, m->n);
	*st = *mt_shard_stats(r);
	mt_shard_reader_free(r);
}

/* Opens path and reads it to the end without checking the records.  The
 * open's return value; the stats in *st. */
static int read_all(const char *path, struct mt_shard_stats *st, char *err,
		    size_t errlen)
{
	struct mt_shard_reader *r;
	const struct mt_shard_record *g;
	int rc;

	cr_assert_eq(mt_shard_reader_new(&r), 0);
	rc = mt_shard_open(r, path);
	if (rc == 0) {
		while ((rc = mt_shard_next(r, &g)) == 0 && g)
			;
		cr_assert_eq(rc, 0, "next: %d %s", rc, mt_shard_error(r));
	}
	if (err)
		snprintf(err, errlen, "%s", mt_shard_error(r));
	*st = *mt_shard_stats(r);
	mt_shard_reader_free(r);
	return rc;
}

static size_t count_records(const struct model *m, uint64_t lost)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n; i++)
		n += !(lost >> m->rec[i].chunk & 1);
	return n;
}

/* ---- round trips ------------------------------------------------------------ */

Test(reader, crc32c_matches_the_check_value)
{
	cr_assert_eq(mt_crc32c(0, "123456789", 9), 0xe3069283u);
	/* incremental use gives the same value */
	cr_assert_eq(mt_crc32c(mt_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
}

Test(reader, round_trip_gives_every_kind_with_absolute_seq_time_and_addr)
{
	struct model m;
	struct mt_shard_stats st;
	bool seen[MT_REC_CLASSES + 1] = { 0 };

	build_full(&m);
	cr_assert_eq(synth_save(&m.s, tpath("full.mts")), 0);
	read_expect(tpath("full.mts"), &m, 0, &st);
	for (size_t i = 0; i < m.n; i++)
		seen[m.rec[i].kind] = true;
	for (int k = MT_REC_HEADER; k <= MT_REC_CLASSES; k++)
		cr_expect(seen[k] || k == MT_REC_CHUNK, "kind %d not covered", k);
	cr_expect_eq(st.chunks_read, 3);
	cr_expect_eq(st.records, m.n);
	cr_expect_eq(st.chunks_corrupt + st.chunks_missing + st.records_malformed +
		     st.records_unknown + st.seq_backwards, 0);
	cr_expect_not(st.torn_tail);
	cr_expect(st.header_seen);
	cr_expect_eq(st.major, MT_SHARD_MAJOR);
	cr_expect_eq(st.file_bytes, m.s.file.size);
	synth_destroy(&m.s);
}

Test(reader, header_copy_outlives_the_records)
{
	struct model m;
	struct mt_shard_reader *r;
	const struct mt_shard_record *g;
	const struct mt_shard_header *h;
	char buf[8];

	build_full(&m);
	cr_assert_eq(synth_save(&m.s, tpath("full.mts")), 0);
	cr_assert_eq(mt_shard_reader_new(&r), 0);
	cr_assert_eq(mt_shard_open(r, tpath("full.mts")), 0);
	cr_expect_null(mt_shard_header(r), "header before it was read");
	while (mt_shard_next(r, &g) == 0 && g)
		;
	mt_shard_close(r);
	h = mt_shard_header(r);
	cr_assert_not_null(h);
	expect_header(h, &m.rec[0].u.header);
	cr_expect_eq(mt_shard_describe(r, buf, sizeof(buf)), 0);
	cr_expect_str_eq(buf, "");
	cr_expect_eq(mt_shard_next(r, &g), -EBADF);
	mt_shard_reader_free(r);
	synth_destroy(&m.s);
}

Test(reader, one_reader_reads_several_files_in_turn)
{
	struct model a, b;
	struct mt_shard_reader *r;
	const struct mt_shard_record *g;
	size_t n;

	build_full(&a);
	build_small(&b);
	cr_assert_eq(synth_save(&a.s, tpath("a.mts")), 0);
	cr_assert_eq(synth_save(&b.s, tpath("b.mts")), 0);
	cr_assert_eq(mt_shard_reader_new(&r), 0);
	for (int round = 0; round < 2; round++) {
		const struct model *m = round ? &b : &a;
		cr_assert_eq(mt_shard_open(r, tpath(round ? "b.mts" : "a.mts")), 0);
		for (n = 0; mt_shard_next(r, &g) == 0 && g; n++)
			expect_record(g, &m->rec[n], 0);
		cr_expect_eq(n, m->n);
		cr_expect_eq(mt_shard_stats(r)->records, m->n);
	}
	mt_shard_reader_free(r);
	synth_destroy(&a.s);
	synth_destroy(&b.s);
}

Test(reader, deltas_may_be_negative_or_wrap)
{
	struct model m;
	struct mt_shard_stats st;

	m_init(&m, 1, 0);
	synth_begin_chunk(&m.s, 100, 1000000);
	m_add(&m, header_full());
	m_add(&m, r_alloc(90, 999000, ADDR_BASE, 1, 0, 0, 0));   /* backwards */
	m_add(&m, r_alloc(UINT64_MAX, 5, ADDR_BASE, 1, 0, 0, 0)); /* far off */
	m_add(&m, r_free(0, 0, ADDR_BASE, UINT64_MAX));           /* wraps */
	synth_end_chunk(&m.s);
	cr_assert_eq(synth_save(&m.s, tpath("d.mts")), 0);
	read_expect(tpath("d.mts"), &m, 0, &st);
	cr_expect_eq(st.records_malformed, 0);
	synth_destroy(&m.s);
}

Test(reader, alloc_weight_comes_from_the_record_or_the_policy)
{
	struct mt_shard_header h = { 0 };
	struct mt_shard_alloc a = { .size = 512 << 10 };
	double w = 0;

	cr_expect_eq(mt_shard_alloc_weight(NULL, &a, &w), -ENODATA);
	h.policy = MT_SHARD_POLICY_POISSON;
	cr_expect_eq(mt_shard_alloc_weight(&h, &a, &w), -ENODATA, "no mean");
	h.present = MT_SHARD_H_MEAN | MT_SHARD_H_POLICY;
	h.mean = 512 << 10;
	cr_assert_eq(mt_shard_alloc_weight(&h, &a, &w), 0);
	cr_expect_float_eq(w, 1 / (1 - exp(-1.0)), 1e-12);
	a.size = 1;
	cr_assert_eq(mt_shard_alloc_weight(&h, &a, &w), 0);
	cr_expect_float_eq(w, 1 / (1 - exp(-1.0 / (512 << 10))), 1e-6);
	a.size = 0;
	cr_expect_eq(mt_shard_alloc_weight(&h, &a, &w), -EDOM);
	h.policy = MT_SHARD_POLICY_ALL;
	cr_assert_eq(mt_shard_alloc_weight(&h, &a, &w), 0);
	cr_expect_eq(w, 1.0);
	h.policy = MT_SHARD_POLICY_TIERED;
	cr_expect_eq(mt_shard_alloc_weight(&h, &a, &w), -ENODATA);
	a.has_weight = true;
	a.weight = 100;
	cr_assert_eq(mt_shard_alloc_weight(&h, &a, &w), 0);
	cr_expect_eq(w, 100.0);
}

Test(reader, kind_names)
{
	cr_expect_str_eq(mt_shard_kind_name(MT_REC_THREAD_EXIT), "thread-exit");
	cr_expect_str_eq(mt_shard_kind_name(MT_REC_CLASSES), "classes");
	cr_expect_null(mt_shard_kind_name(0));
	cr_expect_null(mt_shard_kind_name(15));
	cr_expect_null(mt_shard_kind_name(-1));
}

/* ---- truncation, bit flips, garbage -------------------------------------- */

/* The index of the chunk holding byte `off` of m's file, or -1. */
static int chunk_at(const struct model *m, size_t off)
{
	for (size_t c = 0; c < m->s.nchunks; c++)
		if (off >= m->s.chunk_start[c] && off < m->s.chunk_end[c])
			return (int)c;
	return -1;
}

Test(reader, truncation_at_every_offset_keeps_complete_chunks_and_reports_torn_tail)
{
	struct model m;
	const char *p = tpath("cut.mts");

	build_small(&m);
	for (size_t cut = 0; cut <= m.s.file.size; cut++) {
		struct mt_shard_stats st;
		uint64_t lost = 0;
		int torn = -1, rc;
		char err[256];

		cr_assert_eq(synth_write_file(p, m.s.file.data, cut), 0);
		if (cut < MT_SHARD_FILE_HEADER) {
			rc = read_all(p, &st, err, sizeof(err));
			cr_assert_eq(rc, -ENODATA, "cut %zu: %d", cut, rc);
			cr_expect(strstr(err, cut ? "inside the shard header" : "empty"),
				  "cut %zu: %s", cut, err);
			continue;
		}
		for (size_t c = 0; c < m.s.nchunks; c++) {
			if (m.s.chunk_end[c] > cut)
				lost |= 1ull << c;
			if (m.s.chunk_start[c] < cut && cut < m.s.chunk_end[c])
				torn = (int)c;
		}
		read_expect(p, &m, lost, &st);
		cr_expect_eq(st.chunks_corrupt, 0, "cut %zu", cut);
		cr_expect_eq(st.bytes_skipped, 0, "cut %zu", cut);
		cr_expect_eq(st.records, count_records(&m, lost));
		cr_assert_eq(st.torn_tail, torn >= 0, "cut %zu: torn %d", cut, st.torn_tail);
		if (torn >= 0) {
			cr_expect_eq(st.torn_offset, m.s.chunk_start[torn], "cut %zu", cut);
			cr_expect_eq(st.torn_bytes, cut - m.s.chunk_start[torn]);
		}
	}
	synth_destroy(&m.s);
}

static void flip_every_bit(struct model *m, const char *name)
{
	const char *p = tpath(name);
	unsigned char *buf = malloc(m->s.file.size);

	cr_assert_not_null(buf);
	for (size_t off = 0; off < m->s.file.size; off++) {
		for (int bit = 0; bit < 8; bit++) {
			struct mt_shard_stats st;
			int c = chunk_at(m, off), rc;
			char err[256];

			memcpy(buf, m->s.file.data, m->s.file.size);
			buf[off] ^= (unsigned char)(1u << bit);
			cr_assert_eq(synth_write_file(p, buf, m->s.file.size), 0);
			if (off < MT_SHARD_FILE_HEADER) {
				/* magic: rejected; major: rejected if newer;
				 * minor and flags: read as usual */
				rc = read_all(p, &st, err, sizeof(err));
				if (off < 8)
					cr_expect_eq(rc, -EINVAL, "off %zu: %s", off, err);
				else if (off < 10 && (buf[8] | buf[9] << 8) > MT_SHARD_MAJOR)
					cr_expect_eq(rc, -EPROTONOSUPPORT, "off %zu", off);
				else
					read_expect(p, m, 0, &st);
				continue;
			}
			cr_assert_geq(c, 0);
			read_expect(p, m, 1ull << c, &st);
			cr_expect_eq(st.chunks_read, m->s.nchunks - 1, "off %zu bit %d", off, bit);
			cr_expect_eq(st.chunks_corrupt, 1, "off %zu bit %d", off, bit);
			cr_expect_eq(st.first_corrupt, m->s.chunk_start[c]);
			cr_expect_eq(st.bytes_skipped,
				     m->s.chunk_end[c] - m->s.chunk_start[c],
				     "off %zu bit %d", off, bit);
			cr_expect_eq(st.chunks_missing, (size_t)c + 1 < m->s.nchunks,
				     "off %zu bit %d", off, bit);
			cr_expect_not(st.torn_tail, "off %zu bit %d", off, bit);
		}
	}
	free(buf);
}

Test(reader, every_single_bit_flip_skips_only_its_chunk)
{
	struct model m;

	build_small(&m);
	flip_every_bit(&m, "flip.mts");
	synth_destroy(&m.s);
}

Test(reader, seeded_random_flips_lose_only_the_chunks_they_hit)
{
	struct model m;
	const char *p = tpath("rflip.mts");
	unsigned short seed[3] = { 0x1234, 0x5678, 0x9abc };
	unsigned char *buf;

	build_full(&m);
	buf = malloc(m.s.file.size);
	cr_assert_not_null(buf);
	for (int round = 0; round < 400; round++) {
		struct mt_shard_stats st;
		uint64_t lost = 0;
		int flips = 1 + (int)(nrand48(seed) % 3); /* CRC-32C catches <= 3 */

		memcpy(buf, m.s.file.data, m.s.file.size);
		for (int f = 0; f < flips; f++) {
			size_t off = MT_SHARD_FILE_HEADER +
				     nrand48(seed) % (m.s.file.size - MT_SHARD_FILE_HEADER);
			buf[off] ^= (unsigned char)(1u << (nrand48(seed) % 8));
			lost |= 1ull << chunk_at(&m, off);
		}
		/* two flips of one bit cancel out */
		for (size_t c = 0; c < m.s.nchunks; c++)
			if (!memcmp(buf + m.s.chunk_start[c], m.s.file.data + m.s.chunk_start[c],
				    m.s.chunk_end[c] - m.s.chunk_start[c]))
				lost &= ~(1ull << c);
		cr_assert_eq(synth_write_file(p, buf, m.s.file.size), 0);
		read_expect(p, &m, lost, &st);
		cr_expect_eq(st.chunks_read + (uint64_t)__builtin_popcountll(lost), m.s.nchunks,
			     "round %d", round);
		cr_expect_not(st.torn_tail);
	}
	free(buf);
	synth_destroy(&m.s);
}

Test(reader, random_garbage_gives_diagnostics_not_crashes)
{
	const char *p = tpath("garbage.mts");
	unsigned short seed[3] = { 7, 8, 9 };
	struct model m;
	unsigned char *buf = malloc(1 << 16);

	cr_assert_not_null(buf);
	build_small(&m);
	for (int round = 0; round < 300; round++) {
		size_t len = nrand48(seed) % (1 << 13), have = 0;
		struct mt_shard_stats st;
		char err[256];
		int rc;

		if (round % 3 >= 1 && len >= MT_SHARD_FILE_HEADER) {
			memcpy(buf, m.s.file.data, MT_SHARD_FILE_HEADER);
			have = MT_SHARD_FILE_HEADER;
		}
		for (size_t i = have; i < len; i++)
			buf[i] = (unsigned char)nrand48(seed);
		if (round % 3 == 2 && len > 2000) {
			/* real chunks among the garbage */
			size_t c1 = m.s.chunk_end[1] - m.s.chunk_start[1];
			memcpy(buf + 300, m.s.file.data + m.s.chunk_start[1], c1);
			memcpy(buf + 1500, m.s.file.data + m.s.chunk_start[2],
			       m.s.chunk_end[2] - m.s.chunk_start[2]);
		}
		cr_assert_eq(synth_write_file(p, buf, len), 0);
		rc = read_all(p, &st, err, sizeof(err));
		if (rc < 0) {
			cr_expect(rc == -ENODATA || rc == -EINVAL || rc == -EPROTONOSUPPORT,
				  "round %d: %d", round, rc);
			cr_expect_neq(err[0], '\0', "round %d: no message", round);
			continue;
		}
		cr_expect_leq(st.bytes_skipped + st.torn_bytes, len, "round %d", round);
		if (round % 3 == 2 && len > 2000)
			cr_expect_geq(st.chunks_read, 2, "round %d", round);
	}
	free(buf);
	synth_destroy(&m.s);
}

Test(reader, empty_short_and_header_only_files_are_diagnosed)
{
	struct mt_shard_stats st;
	struct model m;
	char err[256], desc[256];
	struct mt_shard_reader *r;
	const struct mt_shard_record *g;

	cr_assert_eq(synth_write_file(tpath("empty.mts"), "", 0), 0);
	cr_expect_eq(read_all(tpath("empty.mts"), &st, err, sizeof(err)), -ENODATA);
	cr_expect_str_eq(err, "empty file (no shard header)");

	cr_assert_eq(synth_write_file(tpath("short.mts"), "MTSHARD\0\1", 9), 0);
	cr_expect_eq(read_all(tpath("short.mts"), &st, err, sizeof(err)), -ENODATA);
	cr_expect_str_eq(err, "file ends inside the shard header (9 of 16 bytes)");

	cr_assert_eq(synth_write_file(tpath("text.mts"), "hello, world\n", 13), 0);
	cr_expect_eq(read_all(tpath("text.mts"), &st, err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "not a shard file (bad magic)");

	cr_expect_eq(read_all(tpath("absent.mts"), &st, err, sizeof(err)), -ENOENT);
	cr_expect_str_eq(err, strerror(ENOENT));
	cr_expect_eq(read_all(tu_dir, &st, err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "not a regular file");

	m_init(&m, 1, 0);
	cr_assert_eq(synth_save(&m.s, tpath("hdr.mts")), 0);
	cr_assert_eq(mt_shard_reader_new(&r), 0);
	cr_assert_eq(mt_shard_open(r, tpath("hdr.mts")), 0);
	cr_expect_eq(mt_shard_next(r, &g), 0);
	cr_expect_null(g);
	cr_expect_eq(mt_shard_next(r, &g), 0, "the end repeats");
	cr_expect_null(g);
	st = *mt_shard_stats(r);
	cr_expect_eq(st.chunks_read + st.chunks_corrupt + st.records, 0);
	cr_expect_not(st.torn_tail);
	cr_expect_eq(mt_shard_describe(r, desc, sizeof(desc)), 0);
	mt_shard_reader_free(r);
	synth_destroy(&m.s);
}

Test(reader, garbage_after_the_file_header_is_one_corrupt_region)
{
	struct model m;
	struct mt_shard_stats st;
	struct mt_shard_reader *r;
	const struct mt_shard_record *g;
	char desc[256];

	m_init(&m, 1, 0);
	for (int i = 0; i < 1000; i++)
		msgpack_sbuffer_write(&m.s.file, "\x00\xffMTC", 5);
	cr_assert_eq(synth_save(&m.s, tpath("g.mts")), 0);
	cr_assert_eq(mt_shard_reader_new(&r), 0);
	cr_assert_eq(mt_shard_open(r, tpath("g.mts")), 0);
	cr_assert_eq(mt_shard_next(r, &g), 0);
	cr_expect_null(g);
	st = *mt_shard_stats(r);
	cr_expect_eq(st.chunks_corrupt, 1);
	cr_expect_eq(st.bytes_skipped, 5000);
	cr_expect_eq(st.first_corrupt, 16);
	mt_shard_describe(r, desc, sizeof(desc));
	cr_expect_str_eq(desc, "1 corrupt region skipped (5000 bytes, the first at offset 16)");
	mt_shard_reader_free(r);
	synth_destroy(&m.s);
}

/* A corrupt chunk of every size around the resynchronisation block (64 KiB)
 * is skipped and the chunk after it read, wherever its header falls. */
Test(reader, resync_finds_a_header_across_read_blocks)
{
	for (size_t len = (64u << 10) - 40; len < (64u << 10) + 8; len++) {
		struct model m;
		struct mt_shard_stats st;
		unsigned char *big = calloc(1, len);

		cr_assert_not_null(big);
		memset(big, 'M', len); /* many false starts */
		m_init(&m, 1, 0);
		synth_frame(&m.s, m.s.seq++, big, len);
		synth_begin_chunk(&m.s, 0, 0);
		m_add(&m, r_timed(MT_REC_MARK, 5, STR("after")));
		synth_end_chunk(&m.s);
		/* break the first chunk's payload */
		((char *)m.s.file.data)[m.s.chunk_start[0] + MT_CHUNK_HEADER + 1] ^= 1;
		cr_assert_eq(synth_save(&m.s, tpath("big.mts")), 0);
		read_expect(tpath("big.mts"), &m, 1, &st);
		cr_expect_eq(st.chunks_read, 1, "len %zu", len);
		cr_expect_eq(st.bytes_skipped, MT_CHUNK_HEADER + len, "len %zu", len);
		free(big);
		synth_destroy(&m.s);
	}
}

Test(reader, corrupt_chunk_then_torn_tail_are_told_apart)
{
	struct model m;
	struct mt_shard_stats st;
	const char *p = tpath("ct.mts");
	char desc[512];
	struct mt_shard_reader *r;
	const struct mt_shard_record *g;

	build_small(&m);
	/* break chunk 1, cut chunk 3 short */
	((char *)m.s.file.data)[m.s.chunk_start[1] + 30] ^= 0x40;
	cr_assert_eq(synth_write_file(p, m.s.file.data, m.s.chunk_end[3] - 5), 0);
	read_expect(p, &m, 2 | 8, &st);
	cr_expect_eq(st.chunks_read, 2);
	cr_expect_eq(st.chunks_corrupt, 1);
	cr_expect_eq(st.chunks_missing, 1);
	cr_expect(st.torn_tail);
	cr_expect_eq(st.torn_offset, m.s.chunk_start[3]);

	cr_assert_eq(mt_shard_reader_new(&r), 0);
	cr_assert_eq(mt_shard_open(r, p), 0);
	while (mt_shard_next(r, &g) == 0 && g)
		;
	mt_shard_describe(r, desc, sizeof(desc));
	cr_expect(strstr(desc, "1 corrupt region skipped"), "%s", desc);
	cr_expect(strstr(desc, "1 chunk missing"), "%s", desc);
	cr_expect(strstr(desc, "torn tail: the file ends inside the chunk at offset"), "%s", desc);
	/* truncation of the message */
	cr_expect_gt(mt_shard_describe(r, desc, 10), 9);
	cr_expect_eq(strlen(desc), 9);
	mt_shard_reader_free(r);
	synth_destroy(&m.s);
}

Test(reader, chunk_numbers_out_of_sequence_are_counted)
{
	struct model m;
	struct mt_shard_stats st;

	m_init(&m, 1, 0);
	for (uint32_t seq = 0; seq < 4; seq++) {
		m.s.seq = seq == 1 ? 5 : seq == 2 ? 3 : seq; /* 0, 5, 3, 3 */
		synth_begin_chunk(&m.s, 0, 0);
		m_add(&m, r_timed(MT_REC_MARK, seq, STR("x")));
		synth_end_chunk(&m.s);
	}
	cr_assert_eq(synth_save(&m.s, tpath("seq.mts")), 0);
	read_expect(tpath("seq.mts"), &m, 0, &st);
	cr_expect_eq(st.chunks_read, 4);
	cr_expect_eq(st.chunks_missing, 4);  /* 1..4 */
	cr_expect_eq(st.seq_backwards, 2);   /* 3 after 5, 3 after 3 */
	synth_destroy(&m.s);
}

Test(reader, bad_chunk_headers_are_corrupt_not_torn)
{
	struct model m;
	struct mt_shard_stats st;
	unsigned char *b;

	build_small(&m);
	b = (unsigned char *)m.s.file.data;
	/* chunk 1: a length over MT_CHUNK_MAX with its header CRC made valid */
	{
		unsigned char *h = b + m.s.chunk_start[1];
		uint32_t len = MT_CHUNK_MAX + 1, crc;
		memcpy(h + 4, &len, 4);
		crc = mt_crc32c(0, h, 20);
		memcpy(h + 20, &crc, 4);
	}
	/* chunk 2: a valid header whose length runs past the end of file, with
	 * good chunks after it: a lie, not a torn tail */
	{
		unsigned char *h = b + m.s.chunk_start[2];
		uint32_t len = 1u << 20, crc;
		memcpy(h + 4, &len, 4);
		crc = mt_crc32c(0, h, 20);
		memcpy(h + 20, &crc, 4);
	}
	cr_assert_eq(synth_save(&m.s, tpath("bh.mts")), 0);
	read_expect(tpath("bh.mts"), &m, 2 | 4, &st);
	cr_expect_eq(st.chunks_read, 2);
	cr_expect_eq(st.chunks_corrupt, 2);
	cr_expect_not(st.torn_tail);
	synth_destroy(&m.s);
}

/* ---- versions ---------------------------------------------------------------- */

Test(reader, newer_major_is_rejected_with_a_clear_message)
{
	struct model m;
	struct mt_shard_stats st;
	char err[256];

	m_init(&m, MT_SHARD_MAJOR + 1, 3);
	synth_begin_chunk(&m.s, 0, 0);
	m_add(&m, header_full());
	synth_end_chunk(&m.s);
	cr_assert_eq(synth_save(&m.s, tpath("v2.mts")), 0);
	cr_expect_eq(read_all(tpath("v2.mts"), &st, err, sizeof(err)), -EPROTONOSUPPORT);
	cr_expect_str_eq(err, "shard format 2.3 is newer than this reader (max 1.x)");
	synth_destroy(&m.s);
}

Test(reader, older_major_is_read)
{
	struct model m;
	struct mt_shard_stats st;

	m_init(&m, 0, 9);
	synth_begin_chunk(&m.s, 0, 0);
	m_add(&m, header_full());
	synth_end_chunk(&m.s);
	cr_assert_eq(synth_save(&m.s, tpath("v0.mts")), 0);
	read_expect(tpath("v0.mts"), &m, 0, &st);
	cr_expect_eq(st.major, 0);
	cr_expect_eq(st.minor, 9);
	synth_destroy(&m.s);
}

static void pack_key(msgpack_packer *pk, const char *k)
{
	msgpack_pack_str(pk, strlen(k));
	msgpack_pack_str_body(pk, k, strlen(k));
}

Test(reader, newer_minor_with_extra_keys_kinds_and_elements_is_read)
{
	struct model m;
	struct mt_shard_stats st;
	msgpack_packer *pk = &m.s.pk;

	m_init(&m, MT_SHARD_MAJOR, MT_SHARD_MINOR + 7);
	m.s.file.data[12] = 1; /* a flag this reader does not know */
	synth_begin_chunk(&m.s, 10, 100);
	/* a header with unknown keys (of any type) among known ones */
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint8(pk, MT_REC_HEADER);
	msgpack_pack_map(pk, 5);
	pack_key(pk, "future_map");
	msgpack_pack_map(pk, 1);
	pack_key(pk, "x");
	msgpack_pack_array(pk, 2);
	msgpack_pack_nil(pk);
	msgpack_pack_double(pk, 1.5);
	pack_key(pk, MT_KEY_PID);
	msgpack_pack_uint32(pk, 77);
	pack_key(pk, MT_KEY_TIERS);
	msgpack_pack_map(pk, 2);
	pack_key(pk, "tier_future");
	msgpack_pack_true(pk);
	pack_key(pk, MT_KEY_SMALL_RATE);
	msgpack_pack_float(pk, 0.25f);
	pack_key(pk, MT_KEY_POLICY);
	msgpack_pack_str(pk, 6);
	msgpack_pack_str_body(pk, "future", 6);
	pack_key(pk, MT_KEY_ADDR_BASE);
	msgpack_pack_uint64(pk, ADDR_BASE);
	msgpack_pack_str(pk, 1); /* trailing element */
	msgpack_pack_str_body(pk, "z", 1);
	/* unknown kinds, big and small */
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint8(pk, 99);
	msgpack_pack_bin(pk, 3);
	msgpack_pack_bin_body(pk, "abc", 3);
	msgpack_pack_map(pk, 0);
	msgpack_pack_array(pk, 1);
	msgpack_pack_uint64(pk, 1ull << 40);
	msgpack_pack_array(pk, 1);
	msgpack_pack_uint8(pk, 0);
	/* an alloc with a nil weight and two extra elements */
	msgpack_pack_array(pk, 10);
	msgpack_pack_uint8(pk, MT_REC_ALLOC);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_uint8(pk, 2);
	msgpack_pack_uint8(pk, 3);
	msgpack_pack_uint16(pk, 300);
	msgpack_pack_uint8(pk, 4);
	msgpack_pack_uint8(pk, 5);
	msgpack_pack_nil(pk);
	msgpack_pack_str(pk, 3);
	msgpack_pack_str_body(pk, "new", 3);
	msgpack_pack_array(pk, 0);
	/* a stack whose trailing element is a map */
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, MT_REC_STACK);
	msgpack_pack_uint8(pk, 9);
	msgpack_pack_array(pk, 1);
	msgpack_pack_uint8(pk, 42);
	msgpack_pack_map(pk, 0);
	synth_end_chunk(&m.s);
	cr_assert_eq(synth_save(&m.s, tpath("minor.mts")), 0);

	{
		struct mt_shard_reader *r;
		const struct mt_shard_record *g;
		cr_assert_eq(mt_shard_reader_new(&r), 0);
		cr_assert_eq(mt_shard_open(r, tpath("minor.mts")), 0);
		cr_assert_eq(mt_shard_next(r, &g), 0);
		cr_assert_not_null(g);
		cr_assert_eq(g->kind, MT_REC_HEADER);
		cr_expect_eq(g->u.header.pid, 77);
		cr_expect_eq(g->u.header.present,
			     MT_SHARD_H_PID | MT_SHARD_H_TIERS | MT_SHARD_H_SMALL_RATE |
			     MT_SHARD_H_POLICY | MT_SHARD_H_ADDR_BASE);
		cr_expect_eq(g->u.header.small_rate, 0.25);
		cr_expect_eq(g->u.header.policy, MT_SHARD_POLICY_UNKNOWN);
		expect_str(g->u.header.policy_name, STR("future"), "policy");
		cr_assert_eq(mt_shard_next(r, &g), 0);
		cr_assert_not_null(g);
		cr_assert_eq(g->kind, MT_REC_ALLOC);
		cr_expect_eq(g->u.alloc.seq, 11);
		cr_expect_eq(g->u.alloc.time_ns, 102);
		cr_expect_eq(g->u.alloc.addr, ADDR_BASE + (3 << MT_ADDR_SHIFT));
		cr_expect_eq(g->u.alloc.size, 300);
		cr_expect_not(g->u.alloc.has_weight);
		cr_assert_eq(mt_shard_next(r, &g), 0);
		cr_assert_not_null(g);
		cr_assert_eq(g->kind, MT_REC_STACK);
		cr_expect_eq(g->u.stack.depth, 1);
		cr_expect_eq(g->u.stack.pcs[0], 42);
		cr_assert_eq(mt_shard_next(r, &g), 0);
		cr_expect_null(g);
		st = *mt_shard_stats(r);
		cr_expect_eq(st.records_unknown, 3);
		cr_expect_eq(st.records_malformed, 0);
		cr_expect_eq(st.minor, MT_SHARD_MINOR + 7);
		cr_expect_eq(st.flags, 1);
		mt_shard_reader_free(r);
	}
	synth_destroy(&m.s);
}

/* ---- malformed records ------------------------------------------------------ */

/* Packs `bad` (a function writing one bad record) between two good marks in
 * one chunk, reads it back, and checks that only the bad one was lost. */
static void expect_malformed(void (*bad)(msgpack_packer *), const char *what,
			     uint64_t malformed, uint64_t unknown)
{
	struct model m;
	struct mt_shard_stats st;

	m_init(&m, 1, 0);
	synth_begin_chunk(&m.s, 0, 1000);
	m_add(&m, r_timed(MT_REC_MARK, 1001, STR("before")));
	bad(&m.s.pk);
	/* a record with absolute time after the bad one, which must not
	 * have moved the time chain */
	m_add(&m, r_timed(MT_REC_MARK, 1002, STR("after")));
	synth_end_chunk(&m.s);
	cr_assert_eq(synth_save(&m.s, tpath("bad.mts")), 0);
	read_expect(tpath("bad.mts"), &m, 0, &st);
	cr_expect_eq(st.records_malformed, malformed, "%s: malformed %lu", what,
		     st.records_malformed);
	cr_expect_eq(st.records_unknown, unknown, "%s: unknown %lu", what,
		     st.records_unknown);
	synth_destroy(&m.s);
}

static void head(msgpack_packer *pk, int kind, size_t n)
{
	msgpack_pack_array(pk, n);
	msgpack_pack_uint8(pk, (uint8_t)kind);
}

static void bad_alloc_str_size(msgpack_packer *pk)
{
	head(pk, MT_REC_ALLOC, 7);
	for (int i = 0; i < 3; i++)
		msgpack_pack_uint8(pk, 0); /* d seq, d time 0: chain unchanged */
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "x", 1);
	msgpack_pack_uint8(pk, 0);
	msgpack_pack_uint8(pk, 0);
}

static void bad_alloc_short(msgpack_packer *pk)
{
	head(pk, MT_REC_ALLOC, 6);
	for (int i = 0; i < 5; i++)
		msgpack_pack_uint8(pk, 0);
}

static void bad_alloc_weight(msgpack_packer *pk)
{
	head(pk, MT_REC_ALLOC, 8);
	for (int i = 0; i < 6; i++)
		msgpack_pack_uint8(pk, 0);
	msgpack_pack_double(pk, -1.0);
}

static void bad_alloc_nan_weight(msgpack_packer *pk)
{
	head(pk, MT_REC_ALLOC, 8);
	for (int i = 0; i < 6; i++)
		msgpack_pack_uint8(pk, 0);
	msgpack_pack_double(pk, NAN);
}

static void bad_negative_uint(msgpack_packer *pk)
{
	head(pk, MT_REC_DROPPED, 3);
	msgpack_pack_int8(pk, -1);
	msgpack_pack_uint8(pk, 0);
}

static void bad_totals_bool(msgpack_packer *pk)
{
	head(pk, MT_REC_TOTALS, 7);
	for (int i = 0; i < 6; i++)
		msgpack_pack_uint8(pk, 0);
}

static void bad_mark_bin(msgpack_packer *pk)
{
	head(pk, MT_REC_MARK, 3);
	msgpack_pack_uint8(pk, 0);
	msgpack_pack_bin(pk, 1);
	msgpack_pack_bin_body(pk, "x", 1);
}

static void bad_module_str_build_id(msgpack_packer *pk)
{
	head(pk, MT_REC_MODULE, 6);
	msgpack_pack_uint8(pk, 0);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "p", 1);
	msgpack_pack_str(pk, 1);
	msgpack_pack_str_body(pk, "b", 1);
	msgpack_pack_uint8(pk, 0);
	msgpack_pack_uint8(pk, 0);
}

static void bad_header_not_map(msgpack_packer *pk)
{
	head(pk, MT_REC_HEADER, 2);
	msgpack_pack_array(pk, 0);
}

static void bad_header_int_key(msgpack_packer *pk)
{
	head(pk, MT_REC_HEADER, 2);
	msgpack_pack_map(pk, 1);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_uint8(pk, 1);
}

static void bad_header_pid_str(msgpack_packer *pk)
{
	head(pk, MT_REC_HEADER, 2);
	msgpack_pack_map(pk, 1);
	pack_key(pk, MT_KEY_PID);
	pack_key(pk, "42");
}

static void bad_header_argv_int(msgpack_packer *pk)
{
	head(pk, MT_REC_HEADER, 2);
	msgpack_pack_map(pk, 1);
	pack_key(pk, MT_KEY_ARGV);
	msgpack_pack_array(pk, 2);
	pack_key(pk, "a");
	msgpack_pack_uint8(pk, 1);
}

static void bad_argv_too_many(msgpack_packer *pk)
{
	head(pk, MT_REC_HEADER, 2);
	msgpack_pack_map(pk, 1);
	pack_key(pk, MT_KEY_ARGV);
	msgpack_pack_array(pk, MT_SHARD_MAX_ARGV + 1);
	for (int i = 0; i <= MT_SHARD_MAX_ARGV; i++)
		pack_key(pk, "");
}

static void bad_stack_too_deep(msgpack_packer *pk)
{
	head(pk, MT_REC_STACK, 3);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_array(pk, MT_SHARD_MAX_FRAMES + 1);
	for (int i = 0; i <= MT_SHARD_MAX_FRAMES; i++)
		msgpack_pack_uint8(pk, 1);
}

static void bad_stack_pc_float(msgpack_packer *pk)
{
	head(pk, MT_REC_STACK, 3);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_array(pk, 2);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_double(pk, 1);
}

static void bad_classes_pair(msgpack_packer *pk)
{
	head(pk, MT_REC_CLASSES, 3);
	msgpack_pack_uint8(pk, 0);
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 1);
	msgpack_pack_uint8(pk, 8);
}

static void bad_classes_too_many(msgpack_packer *pk)
{
	head(pk, MT_REC_CLASSES, 3);
	msgpack_pack_uint8(pk, 0);
	msgpack_pack_array(pk, MT_SHARD_MAX_CLASSES + 1);
	for (int i = 0; i <= MT_SHARD_MAX_CLASSES; i++) {
		msgpack_pack_array(pk, 2);
		msgpack_pack_uint8(pk, 8);
		msgpack_pack_uint8(pk, 1);
	}
}

static void bad_string_too_long(msgpack_packer *pk)
{
	static char s[MT_SHARD_MAX_STR + 1];

	head(pk, MT_REC_THREAD_EXIT, 7);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_str(pk, sizeof(s));
	msgpack_pack_str_body(pk, s, sizeof(s));
	for (int i = 0; i < 4; i++)
		msgpack_pack_uint8(pk, 0);
}

static void bad_not_array(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 0);
}

static void bad_empty_array(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 0);
}

static void bad_kind_str(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	pack_key(pk, "alloc");
}

static void bad_kind_negative(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_int8(pk, -4);
}

static void deep_nesting(msgpack_packer *pk, int kind, int depth)
{
	head(pk, kind, 3);
	msgpack_pack_uint8(pk, 0);
	for (int i = 0; i < depth; i++)
		msgpack_pack_array(pk, 1);
	msgpack_pack_nil(pk);
}

static void bad_dropped_deep(msgpack_packer *pk)
{
	deep_nesting(pk, MT_REC_DROPPED, 200);
}

static void unknown_deep(msgpack_packer *pk)
{
	deep_nesting(pk, 77, 5000);
}

static void unknown_wide(msgpack_packer *pk)
{
	head(pk, 50, 2);
	msgpack_pack_array(pk, MT_SHARD_MAX_OBJECTS + 10);
	for (unsigned i = 0; i < MT_SHARD_MAX_OBJECTS + 10; i++)
		msgpack_pack_nil(pk);
}

static void bad_too_many_objects(msgpack_packer *pk)
{
	head(pk, MT_REC_DROPPED, 4);
	msgpack_pack_uint8(pk, 0);
	msgpack_pack_uint8(pk, 0);
	msgpack_pack_array(pk, MT_SHARD_MAX_OBJECTS + 10);
	for (unsigned i = 0; i < MT_SHARD_MAX_OBJECTS + 10; i++)
		msgpack_pack_nil(pk);
}

Test(reader, records_of_wrong_types_are_counted_malformed_and_skipped)
{
	static const struct {
		void (*fn)(msgpack_packer *);
		const char *what;
	} cases[] = {
		{ bad_alloc_str_size, "alloc size str" },
		{ bad_alloc_short, "alloc of 6 elements" },
		{ bad_alloc_weight, "negative weight" },
		{ bad_alloc_nan_weight, "NaN weight" },
		{ bad_negative_uint, "negative count" },
		{ bad_totals_bool, "totals shared int" },
		{ bad_mark_bin, "mark label bin" },
		{ bad_module_str_build_id, "build id str" },
		{ bad_header_not_map, "header array" },
		{ bad_header_int_key, "header int key" },
		{ bad_header_pid_str, "header pid str" },
		{ bad_header_argv_int, "argv int" },
		{ bad_stack_pc_float, "pc float" },
		{ bad_classes_pair, "class pair short" },
		{ bad_not_array, "record map" },
		{ bad_empty_array, "record []" },
		{ bad_kind_str, "kind str" },
		{ bad_kind_negative, "kind negative" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_malformed(cases[i].fn, cases[i].what, 1, 0);
}

Test(reader, bounds_on_counts_lengths_and_nesting_hold)
{
	expect_malformed(bad_argv_too_many, "argv 4097", 1, 0);
	expect_malformed(bad_stack_too_deep, "stack 1025", 1, 0);
	expect_malformed(bad_classes_too_many, "classes 4097", 1, 0);
	expect_malformed(bad_string_too_long, "string 64 KiB + 1", 1, 0);
	expect_malformed(bad_dropped_deep, "nesting 200", 1, 0);
	expect_malformed(bad_too_many_objects, "objects", 1, 0);
	/* unknown kinds are skipped however deep or wide */
	expect_malformed(unknown_deep, "unknown, nesting 5000", 0, 1);
	expect_malformed(unknown_wide, "unknown, wide", 0, 1);
}

/* The counts of a record claim more than the chunk holds: msgpack-c must
 * never see it (it would allocate slots for the claimed count first). */
Test(reader, claimed_counts_beyond_the_chunk_drop_the_rest_of_it)
{
	static const unsigned char claims[][8] = {
		{ 0x93, 0x04, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x00 }, /* array32 */
		{ 0x93, 0x04, 0xdf, 0xff, 0xff, 0xff, 0xff, 0x00 }, /* map32 */
		{ 0x93, 0x04, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x00 }, /* str32 */
		{ 0x93, 0x04, 0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00 }, /* bin32 */
		{ 0x93, 0x04, 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01 }, /* ext32 */
		{ 0x93, 0x04, 0xc1, 0x00, 0x00, 0x00, 0x00, 0x00 }, /* never used */
	};

	for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
		struct model m;
		struct mt_shard_stats st;

		m_init(&m, 1, 0);
		synth_begin_chunk(&m.s, 0, 0);
		m_add(&m, r_timed(MT_REC_MARK, 1, STR("kept")));
		msgpack_sbuffer_write(&m.s.chunk, (const char *)claims[i], 8);
		msgpack_pack_array(&m.s.pk, 3); /* lost with the rest */
		msgpack_pack_uint8(&m.s.pk, MT_REC_MARK);
		msgpack_pack_uint8(&m.s.pk, 1);
		pack_key(&m.s.pk, "lost");
		synth_end_chunk(&m.s);
		synth_begin_chunk(&m.s, 0, 0);
		m_add(&m, r_timed(MT_REC_MARK, 2, STR("next chunk")));
		synth_end_chunk(&m.s);
		cr_assert_eq(synth_save(&m.s, tpath("claim.mts")), 0);
		read_expect(tpath("claim.mts"), &m, 0, &st);
		cr_expect_eq(st.records_malformed, 1, "case %zu", i);
		cr_expect_eq(st.chunks_read, 2);
		synth_destroy(&m.s);
	}
}

Test(reader, delta_records_need_a_chunk_base)
{
	struct model m;
	struct mt_shard_stats st;
	msgpack_packer *pk = &m.s.pk;

	m_init(&m, 1, 0);
	synth_begin_bare_chunk(&m.s);
	/* no MT_REC_CHUNK yet: records without d fields are fine ... */
	{
		struct mt_shard_record r = rec_of(MT_REC_DROPPED);
		r.u.dropped = (struct mt_shard_dropped){ 1, 2 };
		m_add(&m, r);
	}
	/* ... those with d fields are malformed */
	head(pk, MT_REC_MARK, 3);
	msgpack_pack_uint8(pk, 5);
	pack_key(pk, "unbased");
	/* a bad MT_REC_CHUNK leaves the chains unbased */
	head(pk, MT_REC_CHUNK, 3);
	pack_key(pk, "x");
	msgpack_pack_uint8(pk, 0);
	head(pk, MT_REC_FREE, 5);
	for (int i = 0; i < 4; i++)
		msgpack_pack_uint8(pk, 0);
	/* a good one bases them */
	head(pk, MT_REC_CHUNK, 3);
	msgpack_pack_uint16(pk, 500);
	msgpack_pack_uint16(pk, 700);
	m.s.seq_acc = 500;
	m.s.time_acc = 700;
	m_add(&m, r_free(501, 710, ADDR_BASE, 3));
	/* a bad d seq breaks the seq chain but not the time chain */
	head(pk, MT_REC_ALLOC, 7);
	pack_key(pk, "bad");
	for (int i = 0; i < 5; i++)
		msgpack_pack_uint8(pk, 0);
	m_add(&m, r_timed(MT_REC_MARK, 720, STR("time still based")));
	head(pk, MT_REC_FREE, 5); /* seq unbased: malformed */
	for (int i = 0; i < 4; i++)
		msgpack_pack_uint8(pk, 0);
	/* an unreadable timed record (too deep) breaks the time chain */
	head(pk, MT_REC_MARK, 3);
	msgpack_pack_uint8(pk, 1);
	for (int i = 0; i < 40; i++)
		msgpack_pack_array(pk, 1);
	msgpack_pack_nil(pk);
	head(pk, MT_REC_MARK, 3);
	msgpack_pack_uint8(pk, 1);
	pack_key(pk, "unbased again");
	synth_end_chunk(&m.s);
	cr_assert_eq(synth_save(&m.s, tpath("base.mts")), 0);
	/* the first header-less chunk: addresses relative to 0 */
	m.rec[1].u.free.addr += ADDR_BASE;
	read_expect(tpath("base.mts"), &m, 0, &st);
	cr_expect_eq(st.records_malformed, 7);
	synth_destroy(&m.s);
}

/* ---- the ALLOC/FREE fast path and its fallbacks ------------------------------ */

/* The reader decodes ALLOC and FREE records of the usual shape straight from
 * the bytes and hands anything unusual to the general msgpack-c path.  Each
 * case below re-encodes one element (or changes the element count) and
 * checks that the result is the one the general path gives: the same
 * record, or the same malformed count with the same effect on the chains. */

enum enc {
	E_CANON, /* smallest encoding (fixint) */
	E_U8, E_U16, E_U32, E_U64, E_I8, E_I16, E_I32, E_I64,
	E_NIL, E_STR, E_F64, E_F32, E_TRUE, E_BIN, E_ARRAY,
};

static void pack_as(msgpack_packer *pk, enum enc e, double v)
{
	switch (e) {
	case E_CANON:
		if (v < 0)
			msgpack_pack_int64(pk, (int64_t)v);
		else
			msgpack_pack_uint64(pk, (uint64_t)v);
		break;
	case E_U8: msgpack_pack_fix_uint8(pk, (uint8_t)v); break;
	case E_U16: msgpack_pack_fix_uint16(pk, (uint16_t)v); break;
	case E_U32: msgpack_pack_fix_uint32(pk, (uint32_t)v); break;
	case E_U64: msgpack_pack_fix_uint64(pk, (uint64_t)v); break;
	case E_I8: msgpack_pack_fix_int8(pk, (int8_t)v); break;
	case E_I16: msgpack_pack_fix_int16(pk, (int16_t)v); break;
	case E_I32: msgpack_pack_fix_int32(pk, (int32_t)v); break;
	case E_I64: msgpack_pack_fix_int64(pk, (int64_t)v); break;
	case E_NIL: msgpack_pack_nil(pk); break;
	case E_STR:
		msgpack_pack_str(pk, 1);
		msgpack_pack_str_body(pk, "7", 1);
		break;
	case E_F64: msgpack_pack_double(pk, v); break;
	case E_F32: msgpack_pack_float(pk, (float)v); break;
	case E_TRUE: msgpack_pack_true(pk); break;
	case E_BIN:
		msgpack_pack_bin(pk, 1);
		msgpack_pack_bin_body(pk, "7", 1);
		break;
	case E_ARRAY:
		msgpack_pack_array(pk, 1);
		msgpack_pack_uint8(pk, 7);
		break;
	}
}

enum outcome { OK, BAD_SEQ, BAD_TIME, BAD_LATE };

struct fast_case {
	int kind;           /* MT_REC_ALLOC or MT_REC_FREE */
	int field;          /* element re-encoded (1 = d seq ...), 0: none */
	enum enc e;
	double v;           /* its value */
	int n;              /* elements written (0: the usual count) */
	enum enc extra;     /* encoding of elements beyond the usual count */
	enum outcome out;   /* OK, or malformed and which chains it broke */
	const char *what;
};

/* Element values of the usual records (all fixints). */
static const double alloc_vals[8] = { MT_REC_ALLOC, 3, 7, 0x20, 100, 12, 5, 2.5 };
static const double free_vals[5] = { MT_REC_FREE, 3, 7, 0x20, 9 };

/* Adds r to m's expected records without writing it. */
static void m_expect(struct model *m, struct mt_shard_record r)
{
	cr_assert_lt(m->n, MAXREC);
	r.chunk = m->s.seq;
	r.chunk_offset = m->s.file.size;
	m->rec[m->n++] = r;
}

static void run_fast_case(const struct fast_case *c)
{
	const uint64_t S = 1000, T = 5000;
	bool alloc = c->kind == MT_REC_ALLOC;
	double v[9];
	int usual = alloc ? (c->field == 7 ? 8 : 7) : 5;
	int n = c->n ? c->n : usual;
	uint64_t seq = S, t = T;
	bool seq_ok = true, time_ok = true;
	uint64_t want_malformed = 0;
	struct model m;
	struct mt_shard_stats st;
	msgpack_packer *pk = &m.s.pk;

	memcpy(v, alloc ? alloc_vals : free_vals,
	       (alloc ? 8 : 5) * sizeof(double));
	if (c->field)
		v[c->field] = c->v;
	m_init(&m, 1, 0);
	synth_begin_chunk(&m.s, S, T);
	/* the record under test */
	msgpack_pack_array(pk, (size_t)n);
	for (int i = 0; i < n; i++) {
		if (i >= usual)
			pack_as(pk, c->extra, 1);
		else
			pack_as(pk, i == c->field ? c->e : E_CANON, v[i]);
	}
	switch (c->out) {
	case OK: {
		struct mt_shard_record r;
		seq += (uint64_t)(int64_t)v[1];
		t += (uint64_t)(int64_t)v[2];
		if (alloc) {
			bool w = n > 7 && !(c->field == 7 && c->e == E_NIL) &&
				 !(c->field != 7 && c->extra == E_NIL);
			r = r_alloc(seq, t, ADDR_BASE + ((uint64_t)v[3] << MT_ADDR_SHIFT),
				    (uint64_t)v[4], (uint64_t)v[5], (uint64_t)v[6],
				    w ? (c->field == 7 ? v[7] : 1) : 0);
		} else {
			r = r_free(seq, t, ADDR_BASE + ((uint64_t)v[3] << MT_ADDR_SHIFT),
				   (uint64_t)v[4]);
		}
		m_expect(&m, r);
		break;
	}
	case BAD_SEQ:
		seq_ok = false;
		want_malformed++;
		break;
	case BAD_TIME:
		seq += (uint64_t)(int64_t)v[1];
		time_ok = false;
		want_malformed++;
		break;
	case BAD_LATE:
		seq += (uint64_t)(int64_t)v[1];
		t += (uint64_t)(int64_t)v[2];
		want_malformed++;
		break;
	}
	/* a usual FREE and a MARK after it show where the chains stand */
	head(pk, MT_REC_FREE, 5);
	for (int i = 0; i < 4; i++)
		msgpack_pack_uint8(pk, 1);
	if (seq_ok && time_ok) {
		seq++;
		t++;
		m_expect(&m, r_free(seq, t, ADDR_BASE + (1 << MT_ADDR_SHIFT), 1));
	} else {
		want_malformed++;
	}
	head(pk, MT_REC_MARK, 3);
	msgpack_pack_uint8(pk, 1);
	pack_key(pk, "m");
	if (time_ok)
		m_expect(&m, r_timed(MT_REC_MARK, t + 1, STR("m")));
	else
		want_malformed++;
	synth_end_chunk(&m.s);
	cr_assert_eq(synth_save(&m.s, tpath("fast.mts")), 0);
	read_expect(tpath("fast.mts"), &m, 0, &st);
	cr_expect_eq(st.records_malformed, want_malformed, "%s %s: malformed %lu, want %lu",
		     alloc ? "alloc" : "free", c->what, st.records_malformed,
		     want_malformed);
	cr_expect_eq(st.records_unknown, 0, "%s", c->what);
	synth_destroy(&m.s);
}

/* Each integer element in every integer encoding (signed ones included:
 * msgpack-c reads a non-negative int as a uint), and each in the types
 * the general path rejects. */
static void run_field_cases(int kind, int nfields)
{
	static const struct {
		enum enc e;
		const char *what;
		bool ok;
	} encs[] = {
		{ E_CANON, "fixint", true }, { E_U8, "uint8", true },
		{ E_U16, "uint16", true }, { E_U32, "uint32", true },
		{ E_U64, "uint64", true }, { E_I8, "int8", true },
		{ E_I16, "int16", true }, { E_I32, "int32", true },
		{ E_I64, "int64", true }, { E_NIL, "nil", false },
		{ E_STR, "str", false }, { E_F64, "float64", false },
		{ E_F32, "float32", false }, { E_TRUE, "bool", false },
		{ E_BIN, "bin", false }, { E_ARRAY, "array", false },
	};
	const double *vals = kind == MT_REC_ALLOC ? alloc_vals : free_vals;

	for (int f = 1; f < nfields; f++) {
		for (size_t i = 0; i < sizeof(encs) / sizeof(encs[0]); i++) {
			char what[64];
			struct fast_case c = { kind, f, encs[i].e, vals[f], 0, E_NIL,
					       OK, what };
			snprintf(what, sizeof(what), "element %d as %s", f,
				 encs[i].what);
			if (!encs[i].ok)
				c.out = f == 1 ? BAD_SEQ : f == 2 ? BAD_TIME : BAD_LATE;
			run_fast_case(&c);
		}
		/* a wider value than a fixint, in each width that holds it */
		{
			struct fast_case c = { kind, f, E_U16, 40000, 0, E_NIL, OK,
					       "element as uint16 40000" };
			run_fast_case(&c);
			c.e = E_U32;
			c.v = 3e9;
			c.what = "element as uint32 3e9";
			run_fast_case(&c);
			c.e = E_U64;
			c.v = 1e15;
			c.what = "element as uint64 1e15";
			run_fast_case(&c);
			c.e = E_I32;
			c.v = 2e9;
			c.what = "element as int32 2e9";
			run_fast_case(&c);
		}
		/* negative: a d field goes backwards, any other is malformed */
		for (int e = E_CANON; e <= E_I64; e++) {
			struct fast_case c = { kind, f, (enum enc)e, -5, 0, E_NIL,
					       f <= 2 ? OK : BAD_LATE,
					       "element negative" };
			if (e >= E_U8 && e <= E_U64)
				continue;
			if (e == E_CANON || e == E_I8) {
				run_fast_case(&c);
				c.v = -100; /* int8, not a negative fixint */
			}
			c.what = "element very negative";
			if (e == E_I16 || e == E_I32 || e == E_I64)
				c.v = e == E_I16 ? -30000 : e == E_I32 ? -2e9 : -1e15;
			run_fast_case(&c);
		}
	}
}

Test(reader, fast_path_alloc_elements_in_unusual_encodings_match_the_general_path)
{
	run_field_cases(MT_REC_ALLOC, 7);
}

Test(reader, fast_path_free_elements_in_unusual_encodings_match_the_general_path)
{
	run_field_cases(MT_REC_FREE, 5);
}

Test(reader, fast_path_alloc_weight_and_shapes_match_the_general_path)
{
	static const struct fast_case cases[] = {
		{ MT_REC_ALLOC, 7, E_F64, 2.5, 0, E_NIL, OK, "weight float64" },
		{ MT_REC_ALLOC, 7, E_F32, 2.5, 0, E_NIL, OK, "weight float32" },
		{ MT_REC_ALLOC, 7, E_F64, 1e-300, 0, E_NIL, OK, "weight tiny" },
		{ MT_REC_ALLOC, 7, E_CANON, 3, 0, E_NIL, OK, "weight fixint" },
		{ MT_REC_ALLOC, 7, E_U16, 3, 0, E_NIL, OK, "weight uint16" },
		{ MT_REC_ALLOC, 7, E_I8, 3, 0, E_NIL, OK, "weight int8" },
		{ MT_REC_ALLOC, 7, E_NIL, 0, 0, E_NIL, OK, "weight nil" },
		{ MT_REC_ALLOC, 7, E_F64, -2.5, 0, E_NIL, BAD_LATE, "weight negative" },
		{ MT_REC_ALLOC, 7, E_F64, 0, 0, E_NIL, BAD_LATE, "weight 0.0" },
		{ MT_REC_ALLOC, 7, E_F64, -0.0, 0, E_NIL, BAD_LATE, "weight -0.0" },
		{ MT_REC_ALLOC, 7, E_CANON, 0, 0, E_NIL, BAD_LATE, "weight int 0" },
		{ MT_REC_ALLOC, 7, E_CANON, -3, 0, E_NIL, BAD_LATE, "weight int -3" },
		{ MT_REC_ALLOC, 7, E_F64, NAN, 0, E_NIL, BAD_LATE, "weight NaN" },
		{ MT_REC_ALLOC, 7, E_F64, INFINITY, 0, E_NIL, BAD_LATE, "weight inf" },
		{ MT_REC_ALLOC, 7, E_F32, NAN, 0, E_NIL, BAD_LATE, "weight float32 NaN" },
		{ MT_REC_ALLOC, 7, E_F32, 1e39, 0, E_NIL, BAD_LATE, "weight float32 inf" },
		{ MT_REC_ALLOC, 7, E_STR, 0, 0, E_NIL, BAD_LATE, "weight str" },
		{ MT_REC_ALLOC, 7, E_TRUE, 0, 0, E_NIL, BAD_LATE, "weight bool" },
		{ MT_REC_ALLOC, 7, E_ARRAY, 0, 0, E_NIL, BAD_LATE, "weight array" },
		/* trailing elements of a newer minor are ignored */
		{ MT_REC_ALLOC, 7, E_F64, 2.5, 9, E_CANON, OK, "weight + extra int" },
		{ MT_REC_ALLOC, 7, E_F64, 2.5, 10, E_STR, OK, "weight + 2 extra str" },
		{ MT_REC_ALLOC, 7, E_NIL, 0, 9, E_ARRAY, OK, "nil weight + extra" },
		{ MT_REC_ALLOC, 0, E_CANON, 0, 8, E_NIL, OK, "7 + nil" },
		{ MT_REC_ALLOC, 0, E_CANON, 0, 8, E_CANON, OK, "7 + int weight 1" },
		{ MT_REC_FREE, 0, E_CANON, 0, 6, E_CANON, OK, "5 + extra int" },
		{ MT_REC_FREE, 0, E_CANON, 0, 7, E_STR, OK, "5 + 2 extra str" },
		{ MT_REC_FREE, 0, E_CANON, 0, 6, E_NIL, OK, "5 + extra nil" },
		/* too few elements */
		{ MT_REC_ALLOC, 0, E_CANON, 0, 6, E_NIL, BAD_LATE, "alloc of 6" },
		{ MT_REC_ALLOC, 0, E_CANON, 0, 4, E_NIL, BAD_LATE, "alloc of 4" },
		{ MT_REC_ALLOC, 0, E_CANON, 0, 3, E_NIL, BAD_LATE, "alloc of 3" },
		{ MT_REC_ALLOC, 0, E_CANON, 0, 2, E_NIL, BAD_TIME, "alloc of 2" },
		{ MT_REC_ALLOC, 0, E_CANON, 0, 1, E_NIL, BAD_SEQ, "alloc of 1" },
		{ MT_REC_FREE, 0, E_CANON, 0, 4, E_NIL, BAD_LATE, "free of 4" },
		{ MT_REC_FREE, 0, E_CANON, 0, 3, E_NIL, BAD_LATE, "free of 3" },
		{ MT_REC_FREE, 0, E_CANON, 0, 2, E_NIL, BAD_TIME, "free of 2" },
		{ MT_REC_FREE, 0, E_CANON, 0, 1, E_NIL, BAD_SEQ, "free of 1" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_fast_case(&cases[i]);
}

/* The kind and the array header in other encodings than the writer's. */
Test(reader, fast_path_other_headers_and_kind_encodings_match_the_general_path)
{
	struct model m;
	struct mt_shard_stats st;
	msgpack_packer *pk = &m.s.pk;
	static const unsigned char alloc16[] = { 0xdc, 0x00, 0x07, 0xcc, 0x04, 3, 7,
						 0x20, 100, 12, 5 };
	static const unsigned char free32[] = { 0xdd, 0x00, 0x00, 0x00, 0x05, 0xd0,
						0x05, 1, 1, 0x20, 9 };

	m_init(&m, 1, 0);
	synth_begin_chunk(&m.s, 1000, 5000);
	msgpack_sbuffer_write(&m.s.chunk, (const char *)alloc16, sizeof(alloc16));
	m_expect(&m, r_alloc(1003, 5007, ADDR_BASE + (0x20 << MT_ADDR_SHIFT), 100,
			     12, 5, 0));
	msgpack_sbuffer_write(&m.s.chunk, (const char *)free32, sizeof(free32));
	m_expect(&m, r_free(1004, 5008, ADDR_BASE + (0x20 << MT_ADDR_SHIFT), 9));
	/* a usual one after them still decodes from where they ended */
	head(pk, MT_REC_FREE, 5);
	for (int i = 0; i < 4; i++)
		msgpack_pack_uint8(pk, 1);
	m_expect(&m, r_free(1005, 5009, ADDR_BASE + (1 << MT_ADDR_SHIFT), 1));
	synth_end_chunk(&m.s);
	cr_assert_eq(synth_save(&m.s, tpath("hdr.mts")), 0);
	read_expect(tpath("hdr.mts"), &m, 0, &st);
	cr_expect_eq(st.records_malformed, 0);
	synth_destroy(&m.s);
}

/* A record cut by the end of its chunk, at every byte, is malformed and
 * ends the chunk, whichever path looked at it first. */
Test(reader, fast_path_records_cut_by_the_chunk_end_are_malformed)
{
	static const unsigned char rec[] = { 0x98, 0x04, 0xcd, 0x01, 0x00, 0xd1,
					     0xff, 0x00, 0xce, 0, 1, 0, 0, 0xcf,
					     0, 0, 0, 0, 0, 0, 1, 0, 12, 5, 0xcb,
					     0x40, 0x04, 0, 0, 0, 0, 0, 0 };

	for (size_t cut = 1; cut <= sizeof(rec); cut++) {
		struct model m;
		struct mt_shard_stats st;

		m_init(&m, 1, 0);
		synth_begin_chunk(&m.s, 1000, 5000);
		msgpack_sbuffer_write(&m.s.chunk, (const char *)rec, cut);
		if (cut == sizeof(rec))
			m_expect(&m, r_alloc(1256, 5000 - 256,
					     ADDR_BASE + (0x10000ull << MT_ADDR_SHIFT),
					     256, 12, 5, 2.5));
		synth_end_chunk(&m.s);
		cr_assert_eq(synth_save(&m.s, tpath("cut.mts")), 0);
		read_expect(tpath("cut.mts"), &m, 0, &st);
		cr_expect_eq(st.records_malformed, cut < sizeof(rec), "cut at %zu", cut);
		synth_destroy(&m.s);
	}
}

/* Reference CRC-32C, one bit at a time. */
static uint32_t crc32c_bitwise(uint32_t crc, const unsigned char *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}

/* Whichever implementation the CPU gets (SSE4.2 or tables), every length
 * and alignment, whole or in two pieces, gives the reference's value. */
Test(reader, crc32c_matches_a_bitwise_reference_at_every_length_and_alignment)
{
	unsigned char buf[600];
	uint32_t x = 12345;

	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (unsigned char)(x >> 16);
	}
	for (size_t a = 0; a < 16; a++) {
		for (size_t n = 0; n + a <= 300; n++) {
			uint32_t want = crc32c_bitwise(0, buf + a, n);
			cr_assert_eq(mt_crc32c(0, buf + a, n), want, "at %zu len %zu", a, n);
			cr_assert_eq(mt_crc32c(mt_crc32c(0, buf + a, n / 3), buf + a + n / 3,
					       n - n / 3), want, "split at %zu len %zu", a, n);
			cr_assert_eq(mt_crc32c(0x12345678u, buf + a, n),
				     crc32c_bitwise(0x12345678u, buf + a, n));
		}
	}
	cr_assert_eq(mt_crc32c(0, buf, sizeof(buf)), crc32c_bitwise(0, buf, sizeof(buf)));
}
