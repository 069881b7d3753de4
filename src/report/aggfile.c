/* aggfile: the aggregate file that `mtreport merge -o` writes and mtreport
 * reads like shards.  Specified in doc/report-schema.md ("Aggregate
 * files").  The framing is the shard format's: a 16-byte file header with
 * its own magic (MT_AGG_MAGIC), then chunks with the 24-byte chunk header
 * and CRC-32C of format.h.  Records are msgpack arrays [kind, ...] with no
 * delta coding; ids refer to records earlier in the file.
 *
 * An aggregate is all or nothing: a file that fails any check is rejected
 * whole (a partial aggregate would miscount), never partly merged. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/report.h"

enum {
	A_META = 1,
	A_MODULE = 2,
	A_SITE = 3,
	A_PROC = 4,
	A_MARK = 5,
	A_THREAD = 6,
	A_ST = 7,
	A_STC = 8,
	A_XM = 9,
	A_LIVE = 10,
	A_PEND = 11,
	A_PROBLEM = 12,
	A_END = 13,
};

#define CHUNK_TARGET (1u << 20) /* bytes of payload per chunk */

/* ---- writing --------------------------------------------------------------- */

struct wr {
	int fd;
	int err;
	uint32_t seq;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint64_t records;
};

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void write_all(struct wr *w, const void *p, size_t n)
{
	const char *s = p;
	while (n && !w->err) {
		ssize_t k = write(w->fd, s, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			w->err = -errno;
			return;
		}
		s += k;
		n -= (size_t)k;
	}
}

static void flush_chunk(struct wr *w)
{
	uint8_t h[MT_CHUNK_HEADER];

	if (!w->sb.size)
		return;
	put_le32(h, MT_CHUNK_MAGIC);
	put_le32(h + 4, (uint32_t)w->sb.size);
	put_le32(h + 8, w->seq++);
	put_le32(h + 12, mt_crc32c(0, w->sb.data, w->sb.size));
	put_le32(h + 16, 0);
	put_le32(h + 20, mt_crc32c(0, h, 20));
	write_all(w, h, sizeof(h));
	write_all(w, w->sb.data, w->sb.size);
	msgpack_sbuffer_clear(&w->sb);
}

static void end_rec(struct wr *w)
{
	w->records++;
	if (w->sb.size >= CHUNK_TARGET)
		flush_chunk(w);
}

static void p_u(struct wr *w, uint64_t v) { msgpack_pack_uint64(&w->pk, v); }

static void p_str(struct wr *w, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(&w->pk, n);
	msgpack_pack_str_body(&w->pk, s, n);
}

static void p_u128(struct wr *w, mt_u128 v)
{
	if (v >> 64) {
		uint8_t b[16];
		for (int i = 0; i < 16; i++)
			b[i] = (uint8_t)(v >> (8 * i));
		msgpack_pack_bin(&w->pk, 16);
		msgpack_pack_bin_body(&w->pk, b, 16);
	} else {
		p_u(w, (uint64_t)v);
	}
}

static void p_i128(struct wr *w, mt_i128 v)
{
	if (v >= INT64_MIN && v <= INT64_MAX) {
		msgpack_pack_int64(&w->pk, (int64_t)v);
	} else {
		uint8_t b[16];
		mt_u128 u = (mt_u128)v;
		for (int i = 0; i < 16; i++)
			b[i] = (uint8_t)(u >> (8 * i));
		msgpack_pack_bin(&w->pk, 16);
		msgpack_pack_bin_body(&w->pk, b, 16);
	}
}

static void p_est(struct wr *w, const struct mt_est *e)
{
	msgpack_pack_array(&w->pk, 5);
	p_u(w, e->n);
	p_u(w, e->b);
	p_u128(w, e->vn);
	p_u128(w, e->vb);
	p_u(w, e->samples);
}

static void p_totals(struct wr *w, const struct mt_totals *t)
{
	msgpack_pack_array(&w->pk, 8);
	msgpack_pack_uint8(&w->pk, t->have);
	msgpack_pack_uint8(&w->pk, t->from_exit);
	msgpack_pack_uint8(&w->pk, t->shared);
	p_u(w, t->time_ns);
	p_u(w, t->allocs);
	p_u(w, t->frees);
	p_u(w, t->bytes_allocated);
	p_u(w, t->bytes_freed);
}

static void p_tpoint(struct wr *w, const struct mt_tpoint *p)
{
	msgpack_pack_array(&w->pk, 6);
	p_u(w, p->time_ns);
	p_u(w, p->allocated);
	p_u(w, p->active);
	p_u(w, p->resident);
	p_u(w, p->mapped);
	msgpack_pack_double(&w->pk, p->live_estimate);
}

static void p_proc(struct wr *w, uint32_t id, const struct mt_proc *p)
{
	const struct mt_shard_header *h = &p->policy;
	unsigned nslots = 0;

	msgpack_pack_array(&w->pk, 21);
	p_u(w, A_PROC);
	p_u(w, id);
	p_str(w, p->host);
	p_u(w, p->pid);
	p_u(w, p->ppid);
	p_u(w, p->start_real_ns);
	p_u(w, p->start_mono_ns);
	p_u(w, p->rank);
	p_str(w, p->exe);
	p_str(w, p->version);
	msgpack_pack_array(&w->pk, p->argc);
	for (uint32_t i = 0; i < p->argc; i++)
		p_str(w, p->argv[i]);
	p_str(w, p->policy_name);
	p_str(w, p->unwind);
	/* policy: fixed positions */
	msgpack_pack_array(&w->pk, 13);
	p_u(w, h->present);
	p_u(w, (uint64_t)h->policy);
	p_u(w, h->mean);
	p_u(w, h->large);
	p_u(w, h->medium);
	msgpack_pack_double(&w->pk, h->medium_rate);
	msgpack_pack_double(&w->pk, h->small_rate);
	p_u(w, h->boost_threshold);
	msgpack_pack_double(&w->pk, h->boost_max);
	p_u(w, h->seed);
	p_u(w, h->stack_depth);
	p_u(w, h->addr_base);
	p_u(w, h->buffer);
	p_u(w, p->tmin);
	p_u(w, p->tmax);
	msgpack_pack_array(&w->pk, (uint32_t)p->nshard_ids);
	for (size_t i = 0; i < p->nshard_ids; i++)
		p_u(w, p->shard_ids[i]);
	const uint64_t *in = (const uint64_t *)&p->in;
	size_t nin = sizeof(p->in) / sizeof(uint64_t);
	msgpack_pack_array(&w->pk, (uint32_t)nin);
	for (size_t i = 0; i < nin; i++)
		p_u(w, in[i]);
	if (p->end_reason) {
		msgpack_pack_array(&w->pk, 2);
		p_u(w, p->end_time);
		p_str(w, p->end_reason);
	} else {
		msgpack_pack_nil(&w->pk);
	}
	if (p->classes) {
		msgpack_pack_array(&w->pk, 2);
		p_u(w, p->classes_time);
		msgpack_pack_array(&w->pk, p->nclasses * 2);
		for (uint32_t i = 0; i < p->nclasses; i++) {
			p_u(w, p->classes[i].size);
			p_u(w, p->classes[i].requests);
		}
	} else {
		msgpack_pack_nil(&w->pk);
	}
	/* timeline */
	for (unsigned i = 0; i < MT_TL_N; i++)
		nslots += p->tl.s[i].used;
	msgpack_pack_array(&w->pk, 6);
	p_u(w, p->tl.k);
	p_u(w, p->tl.lo);
	p_u(w, p->tl.tmin);
	p_u(w, p->tl.tmax);
	p_u(w, p->tl.npoints);
	msgpack_pack_array(&w->pk, nslots);
	for (unsigned i = 0; i < MT_TL_N; i++) {
		if (!p->tl.s[i].used)
			continue;
		msgpack_pack_array(&w->pk, 3);
		p_u(w, i);
		p_tpoint(w, &p->tl.s[i].max);
		p_tpoint(w, &p->tl.s[i].last);
	}
	end_rec(w);
}

static void p_series(struct wr *w, const struct mt_series *s)
{
	unsigned n = 0;

	if (!s || s->tmin > s->tmax) {
		msgpack_pack_nil(&w->pk);
		return;
	}
	for (unsigned i = 0; i < MT_SERIES_N; i++)
		n += s->d[i] != 0;
	msgpack_pack_array(&w->pk, 5);
	p_u(w, s->k);
	p_u(w, s->lo);
	p_u(w, s->tmin);
	p_u(w, s->tmax);
	msgpack_pack_array(&w->pk, n * 2);
	for (unsigned i = 0; i < MT_SERIES_N; i++)
		if (s->d[i]) {
			p_u(w, i);
			p_i128(w, s->d[i]);
		}
}

int mt_aggfile_write(const struct mt_agg *a, const char *path, const char **err)
{
	struct wr w = { 0 };
	uint8_t fh[MT_SHARD_FILE_HEADER];
	size_t len = strlen(path) + 16;
	char *tmp = mt_xmalloc(len);

	snprintf(tmp, len, "%s.tmpXXXXXX", path);
	w.fd = mkstemp(tmp);
	if (w.fd < 0) {
		int e = -errno;
		*err = strerror(errno);
		free(tmp);
		return e;
	}
	msgpack_sbuffer_init(&w.sb);
	msgpack_packer_init(&w.pk, &w.sb, msgpack_sbuffer_write);
	memcpy(fh, MT_AGG_MAGIC, 8);
	fh[8] = MT_AGG_MAJOR;
	fh[9] = 0;
	fh[10] = MT_AGG_MINOR;
	fh[11] = 0;
	put_le32(fh + 12, 0);
	write_all(&w, fh, sizeof(fh));

	msgpack_pack_array(&w.pk, 2);
	p_u(&w, A_META);
	msgpack_pack_map(&w.pk, 3);
	p_str(&w, "mtreport");
	p_str(&w, PACKAGE_VERSION);
	p_str(&w, "aggregates");
	p_u(&w, a->aggregates + 1);
	p_str(&w, "problems_dropped");
	p_u(&w, a->problems_dropped);
	end_rec(&w);
	for (size_t i = 0; i < a->nmodules; i++) {
		const struct mt_module *m = &a->modules[i];
		msgpack_pack_array(&w.pk, 4);
		p_u(&w, A_MODULE);
		p_u(&w, i);
		p_str(&w, m->path);
		msgpack_pack_bin(&w.pk, m->build_id_len);
		msgpack_pack_bin_body(&w.pk, m->build_id, m->build_id_len);
		end_rec(&w);
	}
	for (size_t i = 0; i < a->nsites; i++) {
		const struct mt_site *s = &a->sites[i];
		msgpack_pack_array(&w.pk, 3);
		p_u(&w, A_SITE);
		p_u(&w, i);
		msgpack_pack_array(&w.pk, s->depth * 2);
		for (uint32_t j = 0; j < s->depth; j++) {
			p_u(&w, s->frames[j].module);
			p_u(&w, s->frames[j].offset);
		}
		end_rec(&w);
	}
	for (size_t i = 0; i < a->nprocs; i++)
		p_proc(&w, (uint32_t)i, &a->procs[i]);
	for (size_t i = 0; i < a->nprocs; i++) {
		const struct mt_proc *p = &a->procs[i];
		for (size_t k = 0; k < p->nmarks; k++) {
			msgpack_pack_array(&w.pk, 4);
			p_u(&w, A_MARK);
			p_u(&w, i);
			p_u(&w, p->marks[k].time_ns);
			p_str(&w, p->marks[k].label);
			end_rec(&w);
		}
	}
	for (size_t i = 0; i < a->nthreads; i++) {
		const struct mt_thread *t = &a->threads[i];
		msgpack_pack_array(&w.pk, 12);
		p_u(&w, A_THREAD);
		p_u(&w, i);
		p_u(&w, t->proc);
		p_u(&w, t->tid);
		p_str(&w, t->name);
		p_u(&w, t->name_time);
		p_totals(&w, &t->totals);
		p_totals(&w, &t->exit_totals);
		p_u(&w, t->shards);
		p_est(&w, &t->freed_by);
		p_series(&w, t->live);
		msgpack_pack_array(&w.pk, 2);
		p_u(&w, t->tmin);
		p_u(&w, t->tmax);
		end_rec(&w);
	}
	for (size_t i = 0; i < a->nst; i++) {
		const struct mt_st *c = &a->st[i];
		msgpack_pack_array(&w.pk, 11);
		p_u(&w, A_ST);
		p_u(&w, i);
		p_u(&w, c->site);
		p_u(&w, c->thread);
		p_est(&w, &c->alloc);
		p_est(&w, &c->freed);
		p_est(&w, &c->xfreed);
		p_u128(&w, c->life_w);
		msgpack_pack_array(&w.pk, MT_LIFE_BUCKETS);
		for (unsigned k = 0; k < MT_LIFE_BUCKETS; k++)
			p_u(&w, c->life[k]);
		p_u(&w, c->size_min);
		p_u(&w, c->size_max);
		end_rec(&w);
	}
	for (size_t i = 0; i < a->nstc; i++) {
		msgpack_pack_array(&w.pk, 5);
		p_u(&w, A_STC);
		p_u(&w, i);
		p_u(&w, a->stc[i].st);
		p_u(&w, a->stc[i].cls);
		p_est(&w, &a->stc[i].est);
		end_rec(&w);
	}
	for (size_t i = 0; i < a->nxm; i++) {
		msgpack_pack_array(&w.pk, 4);
		p_u(&w, A_XM);
		p_u(&w, a->xm[i].from);
		p_u(&w, a->xm[i].to);
		p_est(&w, &a->xm[i].est);
		end_rec(&w);
	}
	uint64_t nlive = 0, npend = 0;
	for (size_t i = 0; i < a->nprocs; i++) {
		const struct mt_proc *p = &a->procs[i];
		for (size_t k = 0; k < p->live.cap; k++) {
			const struct mt_live *l = mt_otab_at(&p->live, k);
			if (!l)
				continue;
			msgpack_pack_array(&w.pk, 8);
			p_u(&w, A_LIVE);
			p_u(&w, i);
			p_u(&w, l->seq);
			p_u(&w, l->time_ns);
			p_u(&w, l->size);
			msgpack_pack_double(&w.pk, l->w);
			p_u(&w, l->st);
			p_u(&w, l->stc);
			end_rec(&w);
			nlive++;
		}
		for (size_t k = 0; k < p->pend.cap; k++) {
			const struct mt_pend *f = mt_otab_at(&p->pend, k);
			if (!f)
				continue;
			msgpack_pack_array(&w.pk, 6);
			p_u(&w, A_PEND);
			p_u(&w, i);
			p_u(&w, f->alloc_seq);
			p_u(&w, f->seq);
			p_u(&w, f->time_ns);
			p_u(&w, f->thread);
			end_rec(&w);
			npend++;
		}
	}
	for (size_t i = 0; i < a->nproblems; i++) {
		msgpack_pack_array(&w.pk, 3);
		p_u(&w, A_PROBLEM);
		p_str(&w, a->problems[i].file);
		p_str(&w, a->problems[i].text);
		end_rec(&w);
	}
	/* The end record counts everything: a reader rejects a file whose
	 * counts differ (a lost tail). */
	msgpack_pack_array(&w.pk, 2);
	p_u(&w, A_END);
	msgpack_pack_array(&w.pk, 11);
	p_u(&w, a->nmodules);
	p_u(&w, a->nsites);
	p_u(&w, a->nprocs);
	p_u(&w, a->nthreads);
	p_u(&w, a->nst);
	p_u(&w, a->nstc);
	p_u(&w, a->nxm);
	p_u(&w, nlive);
	p_u(&w, npend);
	p_u(&w, a->nproblems);
	p_u(&w, w.records);
	w.records++;
	flush_chunk(&w);
	msgpack_sbuffer_destroy(&w.sb);
	if (!w.err && fsync(w.fd) < 0)
		w.err = -errno;
	if (close(w.fd) < 0 && !w.err)
		w.err = -errno;
	if (!w.err && rename(tmp, path) < 0)
		w.err = -errno;
	if (w.err) {
		*err = strerror(-w.err);
		unlink(tmp);
	}
	free(tmp);
	return w.err;
}

/* ---- reading ------------------------------------------------------------------- */

struct rd {
	const uint8_t *p;    /* payload */
	size_t len, pos;
	msgpack_zone zone;
	char *err;
	size_t errlen;
	int bad;
	struct mt_agg *a;
	/* id -> index */
	uint32_t *mod, *site, *proc, *thr, *st, *stc;
	size_t nmod, nsite, nproc, nthr, nst, nstc;
	size_t cmod, csite, cproc, cthr, cst, cstc;
	uint64_t records, nlive, npend, nxm, nproblems, nmarks;
	bool meta, end;
};

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Checks that the msgpack object at p is complete within n bytes and
 * that every count it holds is backed by bytes (so msgpack-c cannot be
 * made to allocate more than the payload's size).  Its size, or 0. */
static size_t mp_check(const uint8_t *p, size_t n, int depth)
{
	size_t i = 1, count = 0, len = 0;
	uint8_t c;

	if (!n || depth > 16)
		return 0;
	c = p[0];
	if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
		return 1;
	if ((c & 0xe0) == 0xa0) {
		len = c & 31;
		goto body;
	}
	if ((c & 0xf0) == 0x90) {
		count = c & 15;
		goto items;
	}
	if ((c & 0xf0) == 0x80) {
		count = (size_t)(c & 15) * 2;
		goto items;
	}
	switch (c) {
	case 0xcc: case 0xd0: return n >= 2 ? 2 : 0;
	case 0xcd: case 0xd1: return n >= 3 ? 3 : 0;
	case 0xce: case 0xd2: case 0xca: return n >= 5 ? 5 : 0;
	case 0xcf: case 0xd3: case 0xcb: return n >= 9 ? 9 : 0;
	case 0xc4: case 0xd9:
		if (n < 2) return 0;
		len = p[1]; i = 2; goto body;
	case 0xc5: case 0xda:
		if (n < 3) return 0;
		len = (size_t)p[1] << 8 | p[2]; i = 3; goto body;
	case 0xc6: case 0xdb:
		if (n < 5) return 0;
		len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
		i = 5; goto body;
	case 0xdc:
		if (n < 3) return 0;
		count = (size_t)p[1] << 8 | p[2]; i = 3; goto items;
	case 0xdd:
		if (n < 5) return 0;
		count = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
		i = 5; goto items;
	case 0xde:
		if (n < 3) return 0;
		count = ((size_t)p[1] << 8 | p[2]) * 2; i = 3; goto items;
	case 0xdf:
		if (n < 5) return 0;
		count = ((size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4]) * 2;
		i = 5; goto items;
	default:
		return 0; /* ext types: not used */
	}
body:
	return len <= n - i ? i + len : 0;
items:
	if (count > n - i)
		return 0;
	for (size_t k = 0; k < count; k++) {
		size_t s = mp_check(p + i, n - i, depth + 1);
		if (!s)
			return 0;
		i += s;
	}
	return i;
}

#define FAIL(r, ...)                                              \
	do {                                                      \
		if ((r)->bad != 1)                                \
			snprintf((r)->err, (r)->errlen, __VA_ARGS__); \
		(r)->bad = 1;                                     \
		return;                                           \
	} while (0)

/* Typed element access; a wrong type marks the file bad and yields 0. */
static uint64_t g_u(struct rd *r, const msgpack_object *o)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		r->bad = r->bad ? r->bad : 2;
		return 0;
	}
	return o->via.u64;
}

static double g_f(struct rd *r, const msgpack_object *o)
{
	if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
		return o->via.f64;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return (double)o->via.u64;
	r->bad = r->bad ? r->bad : 2;
	return 0;
}

static mt_u128 g_u128(struct rd *r, const msgpack_object *o)
{
	if (o->type == MSGPACK_OBJECT_BIN && o->via.bin.size == 16) {
		mt_u128 v = 0;
		for (int i = 15; i >= 0; i--)
			v = v << 8 | (uint8_t)o->via.bin.ptr[i];
		return v;
	}
	return g_u(r, o);
}

static mt_i128 g_i128(struct rd *r, const msgpack_object *o)
{
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return o->via.i64;
	return (mt_i128)g_u128(r, o);
}

/* A string copy, or NULL (bad) when o is not a string. */
static char *g_s(struct rd *r, const msgpack_object *o)
{
	if (o->type != MSGPACK_OBJECT_STR) {
		r->bad = r->bad ? r->bad : 2;
		return mt_xstrndup("", 0);
	}
	return mt_xstrndup(o->via.str.ptr, o->via.str.size);
}

static const msgpack_object *g_a(struct rd *r, const msgpack_object *o, uint32_t n)
{
	static const msgpack_object none[32];
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < n) {
		r->bad = r->bad ? r->bad : 2;
		return none;
	}
	return o->via.array.ptr;
}

static void g_est(struct rd *r, const msgpack_object *o, struct mt_est *e)
{
	const msgpack_object *v = g_a(r, o, 5);
	e->n = g_u(r, &v[0]);
	e->b = g_u(r, &v[1]);
	e->vn = g_u128(r, &v[2]);
	e->vb = g_u128(r, &v[3]);
	e->samples = g_u(r, &v[4]);
}

static void g_totals(struct rd *r, const msgpack_object *o, struct mt_totals *t)
{
	const msgpack_object *v = g_a(r, o, 8);
	t->have = g_u(r, &v[0]) != 0;
	t->from_exit = g_u(r, &v[1]) != 0;
	t->shared = g_u(r, &v[2]) != 0;
	t->time_ns = g_u(r, &v[3]);
	t->allocs = g_u(r, &v[4]);
	t->frees = g_u(r, &v[5]);
	t->bytes_allocated = g_u(r, &v[6]);
	t->bytes_freed = g_u(r, &v[7]);
}

static void g_tpoint(struct rd *r, const msgpack_object *o, struct mt_tpoint *p)
{
	const msgpack_object *v = g_a(r, o, 6);
	p->time_ns = g_u(r, &v[0]);
	p->allocated = g_u(r, &v[1]);
	p->active = g_u(r, &v[2]);
	p->resident = g_u(r, &v[3]);
	p->mapped = g_u(r, &v[4]);
	p->live_estimate = g_f(r, &v[5]);
}

/* id must be the next one (ids are dense and in order). */
static bool next_id(struct rd *r, uint64_t id, size_t n)
{
	if (id != n) {
		r->bad = r->bad ? r->bad : 3;
		return false;
	}
	return true;
}

static uint32_t ref(struct rd *r, uint64_t id, const uint32_t *map, size_t n)
{
	if (id >= n) {
		r->bad = r->bad ? r->bad : 3;
		return 0;
	}
	return map[id];
}

static void rd_proc(struct rd *r, const msgpack_object *v, uint32_t n)
{
	struct mt_agg *a = r->a;
	struct mt_shard_header h;

	if (n < 21)
		FAIL(r, "a process record is short");
	if (!next_id(r, g_u(r, &v[1]), r->nproc))
		FAIL(r, "process ids out of order");
	char *host = g_s(r, &v[2]);
	uint64_t pid = g_u(r, &v[3]);
	uint64_t start = g_u(r, &v[5]);
	size_t before = a->nprocs;
	uint32_t pi = mt_agg_proc(a, host, pid, start);
	free(host);
	if (a->nprocs == before)
		FAIL(r, "a process appears twice");
	mt_grow(&r->proc, &r->cproc, r->nproc + 1, sizeof(uint32_t));
	r->proc[r->nproc++] = pi;

	memset(&h, 0, sizeof(h));
	h.ppid = g_u(r, &v[4]);
	h.start_mono_ns = g_u(r, &v[6]);
	uint64_t rank = g_u(r, &v[7]);
	char *exe = g_s(r, &v[8]), *ver = g_s(r, &v[9]);
	h.exe = (struct mt_shard_str){ exe, (uint32_t)strlen(exe) };
	h.version = (struct mt_shard_str){ ver, (uint32_t)strlen(ver) };
	if (v[10].type != MSGPACK_OBJECT_ARRAY)
		r->bad = 2;
	uint32_t argc = v[10].type == MSGPACK_OBJECT_ARRAY ? v[10].via.array.size : 0;
	struct mt_shard_str *argv = mt_xcalloc(argc + 1, sizeof(*argv));
	for (uint32_t i = 0; i < argc; i++) {
		char *s = g_s(r, &v[10].via.array.ptr[i]);
		argv[i] = (struct mt_shard_str){ s, (uint32_t)strlen(s) };
	}
	h.argv = argv;
	h.argc = argc;
	char *pol = g_s(r, &v[11]), *unw = g_s(r, &v[12]);
	h.policy_name = (struct mt_shard_str){ pol, (uint32_t)strlen(pol) };
	h.unwind = (struct mt_shard_str){ unw, (uint32_t)strlen(unw) };
	const msgpack_object *q = g_a(r, &v[13], 13);
	h.present = (uint32_t)g_u(r, &q[0]);
	uint64_t pe = g_u(r, &q[1]);
	h.policy = pe <= MT_SHARD_POLICY_OFF ? (enum mt_shard_policy)pe
					      : MT_SHARD_POLICY_UNKNOWN;
	h.mean = g_u(r, &q[2]);
	h.large = g_u(r, &q[3]);
	h.medium = g_u(r, &q[4]);
	h.medium_rate = g_f(r, &q[5]);
	h.small_rate = g_f(r, &q[6]);
	h.boost_threshold = g_u(r, &q[7]);
	h.boost_max = g_f(r, &q[8]);
	h.seed = g_u(r, &q[9]);
	h.stack_depth = g_u(r, &q[10]);
	h.addr_base = g_u(r, &q[11]);
	h.buffer = g_u(r, &q[12]);
	h.pid = pid;
	h.start_realtime_ns = start;
	mt_agg_proc_header(a, pi, &h, rank);
	free(exe);
	free(ver);
	free(pol);
	free(unw);
	for (uint32_t i = 0; i < argc; i++)
		free((char *)argv[i].ptr);
	free(argv);

	struct mt_proc *p = &a->procs[pi];
	p->rank = rank;
	p->tmin = g_u(r, &v[14]);
	p->tmax = g_u(r, &v[15]);
	if (v[16].type != MSGPACK_OBJECT_ARRAY)
		FAIL(r, "bad shard list");
	for (uint32_t i = 0; i < v[16].via.array.size; i++)
		if (!mt_agg_proc_shard(a, pi, g_u(r, &v[16].via.array.ptr[i])))
			FAIL(r, "a shard is listed twice");
	size_t nin = sizeof(p->in) / sizeof(uint64_t);
	if (v[17].type != MSGPACK_OBJECT_ARRAY)
		FAIL(r, "bad input statistics");
	uint64_t *in = (uint64_t *)&p->in;
	for (size_t i = 0; i < nin && i < v[17].via.array.size; i++)
		in[i] = g_u(r, &v[17].via.array.ptr[i]);
	if (v[18].type != MSGPACK_OBJECT_NIL) {
		const msgpack_object *e = g_a(r, &v[18], 2);
		char *s = g_s(r, &e[1]);
		mt_agg_end(a, pi, g_u(r, &e[0]), s, strlen(s));
		free(s);
	}
	if (v[19].type != MSGPACK_OBJECT_NIL) {
		const msgpack_object *c = g_a(r, &v[19], 2);
		if (c[1].type != MSGPACK_OBJECT_ARRAY || c[1].via.array.size % 2)
			FAIL(r, "bad size classes");
		uint32_t nc = c[1].via.array.size / 2;
		struct mt_shard_class *cv = mt_xcalloc(nc + 1, sizeof(*cv));
		for (uint32_t i = 0; i < nc; i++) {
			cv[i].size = g_u(r, &c[1].via.array.ptr[2 * i]);
			cv[i].requests = g_u(r, &c[1].via.array.ptr[2 * i + 1]);
		}
		mt_agg_classes(a, pi, g_u(r, &c[0]), cv, nc);
		free(cv);
	}
	const msgpack_object *t = g_a(r, &v[20], 6);
	struct mt_timeline *tl = &p->tl;
	tl->k = (unsigned)g_u(r, &t[0]);
	tl->lo = g_u(r, &t[1]);
	tl->tmin = g_u(r, &t[2]);
	tl->tmax = g_u(r, &t[3]);
	tl->npoints = g_u(r, &t[4]);
	if (tl->k > 63 || (tl->tmin <= tl->tmax &&
			   (tl->lo != tl->tmin >> tl->k ||
			    (tl->tmax >> tl->k) - tl->lo >= MT_TL_N)))
		FAIL(r, "bad timeline");
	if (t[5].type != MSGPACK_OBJECT_ARRAY)
		FAIL(r, "bad timeline");
	for (uint32_t i = 0; i < t[5].via.array.size; i++) {
		const msgpack_object *s = g_a(r, &t[5].via.array.ptr[i], 3);
		uint64_t k = g_u(r, &s[0]);
		if (k >= MT_TL_N)
			FAIL(r, "bad timeline");
		tl->s[k].used = true;
		g_tpoint(r, &s[1], &tl->s[k].max);
		g_tpoint(r, &s[2], &tl->s[k].last);
	}
}

static void rd_series(struct rd *r, const msgpack_object *o, struct mt_thread *t)
{
	if (o->type == MSGPACK_OBJECT_NIL)
		return;
	const msgpack_object *v = g_a(r, o, 5);
	struct mt_series *s = mt_xcalloc(1, sizeof(*s));
	s->k = (unsigned)g_u(r, &v[0]);
	s->lo = g_u(r, &v[1]);
	s->tmin = g_u(r, &v[2]);
	s->tmax = g_u(r, &v[3]);
	t->live = s;
	if (s->k > 63 || s->tmin > s->tmax || s->lo != s->tmin >> s->k ||
	    (s->tmax >> s->k) - s->lo >= MT_SERIES_N ||
	    v[4].type != MSGPACK_OBJECT_ARRAY || v[4].via.array.size % 2) {
		r->bad = r->bad ? r->bad : 2;
		return;
	}
	for (uint32_t i = 0; i + 1 < v[4].via.array.size; i += 2) {
		uint64_t k = g_u(r, &v[4].via.array.ptr[i]);
		if (k >= MT_SERIES_N) {
			r->bad = r->bad ? r->bad : 2;
			return;
		}
		s->d[k] = g_i128(r, &v[4].via.array.ptr[i + 1]);
	}
}

static void rd_record(struct rd *r, const msgpack_object *o)
{
	struct mt_agg *a = r->a;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1)
		FAIL(r, "a record is not an array");
	const msgpack_object *v = o->via.array.ptr;
	uint32_t n = o->via.array.size;
	uint64_t kind = g_u(r, &v[0]);

	if (r->end)
		FAIL(r, "records after the end record");
	if (!r->meta && kind != A_META)
		FAIL(r, "the first record is not the meta record");
	r->records++;
	switch (kind) {
	case A_META: {
		if (r->meta || n < 2 || v[1].type != MSGPACK_OBJECT_MAP)
			FAIL(r, "bad meta record");
		r->meta = true;
		for (uint32_t i = 0; i < v[1].via.map.size; i++) {
			const msgpack_object *k = &v[1].via.map.ptr[i].key;
			const msgpack_object *x = &v[1].via.map.ptr[i].val;
			if (k->type != MSGPACK_OBJECT_STR)
				continue;
			if (k->via.str.size == 10 && !memcmp(k->via.str.ptr, "aggregates", 10))
				a->aggregates = g_u(r, x);
			if (k->via.str.size == 16 &&
			    !memcmp(k->via.str.ptr, "problems_dropped", 16))
				a->problems_dropped = g_u(r, x);
		}
		break;
	}
	case A_MODULE: {
		if (n < 4 || !next_id(r, g_u(r, &v[1]), r->nmod) ||
		    v[2].type != MSGPACK_OBJECT_STR || v[3].type != MSGPACK_OBJECT_BIN)
			FAIL(r, "bad module record");
		mt_grow(&r->mod, &r->cmod, r->nmod + 1, sizeof(uint32_t));
		r->mod[r->nmod++] = mt_agg_module(
			a, v[2].via.str.ptr, v[2].via.str.size,
			(const uint8_t *)v[3].via.bin.ptr, v[3].via.bin.size);
		break;
	}
	case A_SITE: {
		if (n < 3 || !next_id(r, g_u(r, &v[1]), r->nsite) ||
		    v[2].type != MSGPACK_OBJECT_ARRAY || v[2].via.array.size % 2 ||
		    v[2].via.array.size / 2 > MT_SHARD_MAX_FRAMES)
			FAIL(r, "bad site record");
		uint32_t d = v[2].via.array.size / 2;
		struct mt_frame f[MT_SHARD_MAX_FRAMES];
		for (uint32_t i = 0; i < d; i++) {
			uint64_t m = g_u(r, &v[2].via.array.ptr[2 * i]);
			f[i].module = m == MT_NO_MODULE ? MT_NO_MODULE
							: ref(r, m, r->mod, r->nmod);
			f[i].offset = g_u(r, &v[2].via.array.ptr[2 * i + 1]);
			f[i].pad_ = 0;
		}
		/* A bad module reference yields index 0, which need not exist:
		 * never hand such frames to the aggregate. */
		if (r->bad)
			FAIL(r, "bad site record");
		mt_grow(&r->site, &r->csite, r->nsite + 1, sizeof(uint32_t));
		r->site[r->nsite++] = mt_agg_site(a, f, d);
		break;
	}
	case A_PROC:
		rd_proc(r, v, n);
		break;
	case A_MARK: {
		if (n < 4)
			FAIL(r, "bad mark record");
		uint32_t p = ref(r, g_u(r, &v[1]), r->proc, r->nproc);
		char *s = g_s(r, &v[3]);
		if (!r->bad)
			mt_agg_mark(a, p, g_u(r, &v[2]), s, strlen(s));
		free(s);
		r->nmarks++;
		break;
	}
	case A_THREAD: {
		if (n < 12 || !next_id(r, g_u(r, &v[1]), r->nthr))
			FAIL(r, "bad thread record");
		uint32_t p = ref(r, g_u(r, &v[2]), r->proc, r->nproc);
		if (r->bad)
			FAIL(r, "bad thread record");
		size_t before = a->nthreads;
		uint32_t ti = mt_agg_thread(a, p, g_u(r, &v[3]));
		if (a->nthreads == before)
			FAIL(r, "a thread appears twice");
		mt_grow(&r->thr, &r->cthr, r->nthr + 1, sizeof(uint32_t));
		r->thr[r->nthr++] = ti;
		struct mt_thread *t = &a->threads[ti];
		free(t->name);
		t->name = g_s(r, &v[4]);
		t->name_time = g_u(r, &v[5]);
		g_totals(r, &v[6], &t->totals);
		g_totals(r, &v[7], &t->exit_totals);
		t->shards = g_u(r, &v[8]);
		g_est(r, &v[9], &t->freed_by);
		rd_series(r, &v[10], t);
		const msgpack_object *tt = g_a(r, &v[11], 2);
		t->tmin = g_u(r, &tt[0]);
		t->tmax = g_u(r, &tt[1]);
		break;
	}
	case A_ST: {
		if (n < 11 || !next_id(r, g_u(r, &v[1]), r->nst))
			FAIL(r, "bad cell record");
		uint32_t site = ref(r, g_u(r, &v[2]), r->site, r->nsite);
		uint32_t thr = ref(r, g_u(r, &v[3]), r->thr, r->nthr);
		if (r->bad)
			FAIL(r, "bad cell record");
		size_t before = a->nst;
		uint32_t si = mt_agg_st(a, site, thr);
		if (a->nst == before)
			FAIL(r, "a cell appears twice");
		mt_grow(&r->st, &r->cst, r->nst + 1, sizeof(uint32_t));
		r->st[r->nst++] = si;
		struct mt_st *c = &a->st[si];
		g_est(r, &v[4], &c->alloc);
		g_est(r, &v[5], &c->freed);
		g_est(r, &v[6], &c->xfreed);
		c->life_w = g_u128(r, &v[7]);
		const msgpack_object *l = g_a(r, &v[8], MT_LIFE_BUCKETS);
		for (unsigned k = 0; k < MT_LIFE_BUCKETS; k++)
			c->life[k] = g_u(r, &l[k]);
		c->size_min = g_u(r, &v[9]);
		c->size_max = g_u(r, &v[10]);
		break;
	}
	case A_STC: {
		if (n < 5 || !next_id(r, g_u(r, &v[1]), r->nstc))
			FAIL(r, "bad size-class record");
		uint32_t st = ref(r, g_u(r, &v[2]), r->st, r->nst);
		uint64_t cls = g_u(r, &v[3]);
		if (r->bad || cls != mt_size_class(cls))
			FAIL(r, "bad size-class record");
		size_t before = a->nstc;
		uint32_t ci = mt_agg_stc(a, st, cls);
		if (a->nstc == before)
			FAIL(r, "a size-class cell appears twice");
		mt_grow(&r->stc, &r->cstc, r->nstc + 1, sizeof(uint32_t));
		r->stc[r->nstc++] = ci;
		g_est(r, &v[4], &a->stc[ci].est);
		break;
	}
	case A_XM: {
		if (n < 4)
			FAIL(r, "bad matrix record");
		uint32_t f = ref(r, g_u(r, &v[1]), r->thr, r->nthr);
		uint32_t t = ref(r, g_u(r, &v[2]), r->thr, r->nthr);
		if (r->bad)
			FAIL(r, "bad matrix record");
		size_t before = a->nxm;
		uint32_t k = mt_agg_xm(a, f, t);
		if (a->nxm == before)
			FAIL(r, "a matrix cell appears twice");
		g_est(r, &v[3], &a->xm[k].est);
		r->nxm++;
		break;
	}
	case A_LIVE: {
		if (n < 8)
			FAIL(r, "bad live-object record");
		uint32_t p = ref(r, g_u(r, &v[1]), r->proc, r->nproc);
		struct mt_live l;
		l.seq = g_u(r, &v[2]);
		l.time_ns = g_u(r, &v[3]);
		l.size = g_u(r, &v[4]);
		l.w = g_f(r, &v[5]);
		l.st = ref(r, g_u(r, &v[6]), r->st, r->nst);
		l.stc = ref(r, g_u(r, &v[7]), r->stc, r->nstc);
		if (r->bad || !(l.w > 0) || l.w > 1e300)
			FAIL(r, "bad live-object record");
		if (mt_otab_get(&a->procs[p].pend, l.seq))
			FAIL(r, "a live object matches a pending free");
		struct mt_live *e = mt_otab_add(&a->procs[p].live, l.seq);
		if (!e)
			FAIL(r, "a live object appears twice");
		*e = l;
		r->nlive++;
		break;
	}
	case A_PEND: {
		if (n < 6)
			FAIL(r, "bad pending-free record");
		uint32_t p = ref(r, g_u(r, &v[1]), r->proc, r->nproc);
		struct mt_pend f = { 0 };
		f.alloc_seq = g_u(r, &v[2]);
		f.seq = g_u(r, &v[3]);
		f.time_ns = g_u(r, &v[4]);
		f.thread = ref(r, g_u(r, &v[5]), r->thr, r->nthr);
		if (r->bad)
			FAIL(r, "bad pending-free record");
		if (mt_otab_get(&a->procs[p].live, f.alloc_seq))
			FAIL(r, "a pending free matches a live object");
		struct mt_pend *e = mt_otab_add(&a->procs[p].pend, f.alloc_seq);
		if (!e)
			FAIL(r, "a pending free appears twice");
		*e = f;
		r->npend++;
		break;
	}
	case A_PROBLEM: {
		if (n < 3)
			FAIL(r, "bad problem record");
		char *f = g_s(r, &v[1]), *t = g_s(r, &v[2]);
		mt_agg_problem(a, f, t);
		free(f);
		free(t);
		r->nproblems++;
		break;
	}
	case A_END: {
		const msgpack_object *c = n >= 2 ? g_a(r, &v[1], 11) : NULL;
		if (!c)
			FAIL(r, "bad end record");
		uint64_t want[11] = { r->nmod, r->nsite, r->nproc, r->nthr, r->nst,
				      r->nstc, r->nxm, r->nlive, r->npend,
				      r->nproblems, r->records - 1 };
		for (int i = 0; i < 11; i++)
			if (g_u(r, &c[i]) != want[i])
				FAIL(r, "the end record's counts differ from the file's (records lost)");
		r->end = true;
		break;
	}
	default:
		break; /* a later minor's kind: ignored */
	}
	if (r->bad == 2)
		FAIL(r, "a record has a field of the wrong type");
	if (r->bad == 3)
		FAIL(r, "a record refers to something not in the file");
}

static int read_full(int fd, void *buf, size_t n)
{
	char *p = buf;
	while (n) {
		ssize_t k = read(fd, p, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -ENODATA;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int mt_aggfile_read(struct mt_agg *out, const char *path, char *errbuf,
		    size_t errlen)
{
	struct rd r;
	uint8_t fh[MT_SHARD_FILE_HEADER], ch[MT_CHUNK_HEADER];
	uint8_t *buf = NULL;
	uint32_t seq = 0;
	int fd, rc = 0;

	memset(&r, 0, sizeof(r));
	r.err = errbuf;
	r.errlen = errlen;
	r.a = out;
	errbuf[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(errbuf, errlen, "%s", strerror(errno));
		return rc;
	}
	if ((rc = read_full(fd, fh, sizeof(fh))) < 0 || memcmp(fh, MT_AGG_MAGIC, 8)) {
		snprintf(errbuf, errlen, "not an aggregate file");
		rc = -EINVAL;
		goto out_close;
	}
	if (le32(fh + 12) != 0) {
		snprintf(errbuf, errlen, "unknown flags %#x in the file header", le32(fh + 12));
		rc = -EINVAL;
		goto out_close;
	}
	if ((fh[8] | fh[9] << 8) > MT_AGG_MAJOR) {
		snprintf(errbuf, errlen,
			 "aggregate format %u.%u is newer than this reader (max %u.x)",
			 fh[8] | fh[9] << 8, fh[10] | fh[11] << 8, MT_AGG_MAJOR);
		rc = -EPROTONOSUPPORT;
		goto out_close;
	}
	msgpack_zone_init(&r.zone, 8192);
	for (;;) {
		rc = read_full(fd, ch, sizeof(ch));
		if (rc == -ENODATA) {
			rc = 0;
			break;
		}
		if (rc < 0) {
			snprintf(errbuf, errlen, "%s", strerror(-rc));
			break;
		}
		uint32_t len = le32(ch + 4);
		if (le32(ch) != MT_CHUNK_MAGIC || mt_crc32c(0, ch, 20) != le32(ch + 20) ||
		    len > MT_CHUNK_MAX || le32(ch + 8) != seq) {
			snprintf(errbuf, errlen, "corrupt chunk header (chunk %u)", seq);
			rc = -EINVAL;
			break;
		}
		free(buf);
		buf = mt_xmalloc(len ? len : 1);
		if ((rc = read_full(fd, buf, len)) < 0) {
			snprintf(errbuf, errlen, "truncated in chunk %u", seq);
			rc = -EINVAL;
			break;
		}
		if (mt_crc32c(0, buf, len) != le32(ch + 12)) {
			snprintf(errbuf, errlen, "chunk %u fails its checksum", seq);
			rc = -EINVAL;
			break;
		}
		seq++;
		for (size_t pos = 0; pos < len && !r.bad;) {
			size_t sz = mp_check(buf + pos, len - pos, 0);
			msgpack_object o;
			size_t off = 0;
			if (!sz) {
				snprintf(errbuf, errlen, "undecodable record in chunk %u", seq - 1);
				r.bad = 1;
				break;
			}
			msgpack_zone_clear(&r.zone);
			if (msgpack_unpack((const char *)buf + pos, sz, &off, &r.zone, &o) !=
			    MSGPACK_UNPACK_SUCCESS) {
				snprintf(errbuf, errlen, "undecodable record in chunk %u", seq - 1);
				r.bad = 1;
				break;
			}
			rd_record(&r, &o);
			pos += sz;
		}
		if (r.bad) {
			rc = -EINVAL;
			break;
		}
	}
	if (rc == 0 && !r.end) {
		snprintf(errbuf, errlen, "truncated: no end record");
		rc = -EINVAL;
	}
	msgpack_zone_destroy(&r.zone);
out_close:
	close(fd);
	free(buf);
	free(r.mod);
	free(r.site);
	free(r.proc);
	free(r.thr);
	free(r.st);
	free(r.stc);
	return rc;
}
