/* emit_pprof: the report as a gzipped profile.proto, the format that
 * `go tool pprof` and other pprof readers take.  The protobuf encoding is
 * written here by hand from the documented schema (github.com/google/pprof,
 * proto/profile.proto); zlib compresses it (gzip framing).
 *
 *   sample types  alloc_objects/count, alloc_space/bytes,
 *                 inuse_objects/count, inuse_space/bytes (live at the end)
 *   samples       one per (site, allocating thread) cell, frames innermost
 *                 first without the allocator wrapper frames inside libc,
 *                 labels "pid" and "tid" (numbers) and "thread" (its name)
 *   locations     one per distinct frame; inlined functions as extra lines,
 *                 the caller last (as the schema asks)
 *   mappings      one per recorded module, at a made-up base (module i at
 *                 i << 40) so that mappings of different modules never
 *                 overlap; address - memory_start is the frame's offset from
 *                 the module's load bias
 *   period        the sampling interval: bytes for poisson, 1 for "all"
 *
 * Values are the estimates, rounded to integers once per sample. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "report/report.h"

/* ---- protobuf encoding ------------------------------------------------------ */

struct pb {
	uint8_t *p;
	size_t n, cap;
};

static void pb_bytes(struct pb *b, const void *d, size_t n)
{
	mt_grow(&b->p, &b->cap, b->n + n, 1);
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void pb_varint(struct pb *b, uint64_t v)
{
	uint8_t t[10];
	size_t n = 0;
	do {
		t[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	pb_bytes(b, t, n);
}

/* field with wire type 0 (varint); zero values are left out (proto3). */
static void pb_u(struct pb *b, unsigned field, uint64_t v)
{
	if (!v)
		return;
	pb_varint(b, (uint64_t)field << 3);
	pb_varint(b, v);
}

static void pb_i(struct pb *b, unsigned field, int64_t v)
{
	pb_u(b, field, (uint64_t)v);
}

/* wire type 2: length-delimited bytes (strings, messages, packed). */
static void pb_len(struct pb *b, unsigned field, const void *d, size_t n)
{
	pb_varint(b, (uint64_t)field << 3 | 2);
	pb_varint(b, n);
	pb_bytes(b, d, n);
}

static void pb_msg(struct pb *b, unsigned field, struct pb *m)
{
	pb_len(b, field, m->p ? m->p : (uint8_t *)"", m->n);
	m->n = 0;
}

/* ---- the string table ------------------------------------------------------------ */

struct strtab {
	char **s;
	size_t n, cap;
	struct mt_map idx;  /* hash (probed on collision) -> s */
};

static int64_t str_id(struct strtab *t, const char *s)
{
	size_t len = strlen(s);
	uint64_t h = mt_hash_bytes(s, len, 0x70726f66);

	for (;; h++) {
		uint32_t i = mt_map_get(&t->idx, h);
		if (i == UINT32_MAX)
			break;
		if (!strcmp(t->s[i], s))
			return i;
	}
	mt_grow(&t->s, &t->cap, t->n + 1, sizeof(*t->s));
	t->s[t->n] = mt_xstrndup(s, len);
	mt_map_put(&t->idx, h, (uint32_t)t->n);
	return (int64_t)t->n++;
}

/* ---- the profile ------------------------------------------------------------------- */

struct prof {
	const struct mt_view *v;
	struct strtab st;
	struct pb out;            /* the Profile message */
	struct pb m, m2;          /* scratch for submessages */
	struct mt_map loc_idx;    /* frame key -> location id */
	struct mt_map fn_idx;     /* (name, file) hash -> function id */
	uint64_t nloc, nfn;
	bool *module_used;
};

static uint64_t fn_id(struct prof *pr, const char *name, const char *file,
		      uint64_t line)
{
	int64_t n = str_id(&pr->st, name), f = file ? str_id(&pr->st, file) : 0;
	uint64_t key = mt_mix64((uint64_t)n << 32 ^ (uint64_t)f);
	uint32_t id = mt_map_get(&pr->fn_idx, key);

	if (id != UINT32_MAX)
		return id;
	id = (uint32_t)++pr->nfn;
	mt_map_put(&pr->fn_idx, key, id);
	struct pb fn = { 0 };
	pb_u(&fn, 1, id);
	pb_i(&fn, 2, n);
	pb_i(&fn, 3, n);
	pb_i(&fn, 4, f);
	(void)line;
	pb_msg(&pr->out, 5, &fn);
	free(fn.p);
	return id;
}

static uint64_t mapping_base(uint32_t module)
{
	return (uint64_t)(module + 1) << 40;
}

static uint64_t loc_id(struct prof *pr, const struct mt_frame *f)
{
	const struct mt_view *v = pr->v;
	uint64_t key = mt_mix64(f->offset ^ mt_mix64((uint64_t)f->module + 1));
	uint32_t id = mt_map_get(&pr->loc_idx, key);

	if (id != UINT32_MAX)
		return id;
	id = (uint32_t)++pr->nloc;
	mt_map_put(&pr->loc_idx, key, id);

	struct pb loc = { 0 }, line = { 0 };
	pb_u(&loc, 1, id);
	if (f->module != MT_NO_MODULE) {
		pb_u(&loc, 2, f->module + 1);
		pb_u(&loc, 3, mapping_base(f->module) + f->offset);
		pr->module_used[f->module] = true;
	} else {
		pb_u(&loc, 3, f->offset);
	}
	struct mt_symframe sf[16];
	int n = mt_symbols_lookup(v->sym, f, sf, 16);
	bool named = false;
	for (int q = 0; q < n; q++) {
		if (!sf[q].function)
			continue;
		pb_u(&line, 1, fn_id(pr, sf[q].function, sf[q].file, sf[q].line));
		pb_i(&line, 2, sf[q].line);
		pb_msg(&loc, 4, &line);
		named = true;
	}
	if (!named) {
		char buf[1024];
		mt_view_frame(v, f, buf, sizeof(buf));
		pb_u(&line, 1, fn_id(pr, buf, NULL, 0));
		pb_msg(&loc, 4, &line);
	}
	pb_msg(&pr->out, 4, &loc);
	free(loc.p);
	free(line.p);
	return id;
}

static void value_type(struct prof *pr, unsigned field, const char *type,
		       const char *unit)
{
	struct pb vt = { 0 };
	pb_i(&vt, 1, str_id(&pr->st, type));
	pb_i(&vt, 2, str_id(&pr->st, unit));
	pb_msg(&pr->out, field, &vt);
	free(vt.p);
}

static int64_t rnd(double x)
{
	return x > 0 && x < 9.2e18 ? (int64_t)llround(x) : 0;
}

static void label(struct prof *pr, struct pb *sample, const char *k,
		  const char *s, int64_t num)
{
	struct pb l = { 0 };
	pb_i(&l, 1, str_id(&pr->st, k));
	if (s)
		pb_i(&l, 2, str_id(&pr->st, s));
	else
		pb_i(&l, 3, num);
	pb_msg(sample, 3, &l);
	free(l.p);
}

static void sample(struct prof *pr, const struct mt_site *s, const struct mt_st *c)
{
	const struct mt_agg *a = pr->v->agg;
	struct mt_est live;
	struct pb smp = { 0 }, packed = { 0 };

	mt_est_diff(&live, &c->alloc, &c->freed);
	int64_t val[4] = {
		rnd(mt_est_count(&c->alloc)), rnd(mt_est_bytes(&c->alloc)),
		rnd(mt_est_count(&live)), rnd(mt_est_bytes(&live)),
	};
	if (!(val[0] | val[1] | val[2] | val[3]))
		return;
	uint32_t trim = mt_site_trim(a, s);
	for (uint32_t i = trim; i < s->depth; i++)
		pb_varint(&packed, loc_id(pr, &s->frames[i]));
	if (!s->depth) {
		struct mt_frame unknown = { 0, MT_NO_MODULE, 0 };
		pb_varint(&packed, loc_id(pr, &unknown));
	}
	pb_len(&smp, 1, packed.p, packed.n);
	packed.n = 0;
	for (int k = 0; k < 4; k++)
		pb_varint(&packed, (uint64_t)val[k]);
	pb_len(&smp, 2, packed.p, packed.n);
	const struct mt_thread *th = &a->threads[c->thread];
	label(pr, &smp, "pid", NULL, (int64_t)a->procs[th->proc].pid);
	label(pr, &smp, "tid", NULL, (int64_t)th->tid);
	char name[300];
	snprintf(name, sizeof(name), "%s", th->name && *th->name ? th->name : "?");
	label(pr, &smp, "thread", name, 0);
	pb_msg(&pr->out, 2, &smp);
	free(smp.p);
	free(packed.p);
}

static void mappings(struct prof *pr)
{
	const struct mt_agg *a = pr->v->agg;
	static const char hx[] = "0123456789abcdef";

	for (uint32_t i = 0; i < a->nmodules; i++) {
		const struct mt_module *m = &a->modules[i];
		struct pb mp = { 0 };
		if (!pr->module_used[i])
			continue;
		bool found = pr->v->sym && mt_symbols_module_found(pr->v->sym, i);
		pb_u(&mp, 1, i + 1);
		pb_u(&mp, 2, mapping_base(i));
		pb_u(&mp, 3, mapping_base(i) + ((uint64_t)1 << 40));
		pb_i(&mp, 5, str_id(&pr->st, m->path ? m->path : ""));
		if (m->build_id_len) {
			char *h = mt_xmalloc(2 * (size_t)m->build_id_len + 1);
			for (uint32_t k = 0; k < m->build_id_len; k++) {
				h[2 * k] = hx[m->build_id[k] >> 4];
				h[2 * k + 1] = hx[m->build_id[k] & 15];
			}
			h[2 * m->build_id_len] = '\0';
			pb_i(&mp, 6, str_id(&pr->st, h));
			free(h);
		}
		pb_u(&mp, 7, found);
		pb_u(&mp, 8, found);
		pb_u(&mp, 9, found);
		pb_u(&mp, 10, found);
		pb_msg(&pr->out, 3, &mp);
		free(mp.p);
	}
}

/* Deflates buf into out with gzip framing.  0 or -EIO. */
static int gzip_to(FILE *out, const uint8_t *buf, size_t n)
{
	z_stream z;
	uint8_t chunk[65536];
	int rc;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -EIO;
	z.next_in = (Bytef *)buf;
	z.avail_in = (uInt)n; /* profiles stay far below 4 GiB */
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		rc = deflate(&z, Z_FINISH);
		if (rc == Z_STREAM_ERROR)
			break;
		fwrite(chunk, 1, sizeof(chunk) - z.avail_out, out);
	} while (rc != Z_STREAM_END);
	deflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -EIO;
}

void mt_emit_pprof(FILE *out, struct mt_view *const *views, size_t nv)
{
	struct prof pr;
	uint64_t period = 1, t0 = UINT64_MAX, dur = 0;

	memset(&pr, 0, sizeof(pr));
	str_id(&pr.st, "");  /* string_table[0] */
	pr.v = views[0];
	pr.module_used = mt_xcalloc(views[0]->agg->nmodules + 1, sizeof(bool));
	value_type(&pr, 1, "alloc_objects", "count");
	value_type(&pr, 1, "alloc_space", "bytes");
	value_type(&pr, 1, "inuse_objects", "count");
	value_type(&pr, 1, "inuse_space", "bytes");
	for (size_t k = 0; k < nv; k++) {
		const struct mt_view *v = views[k];
		const struct mt_agg *a = v->agg;
		pr.v = v;
		for (size_t i = 0; i < v->nsites; i++) {
			const struct mt_vsite *s = &v->sites[i];
			for (uint32_t c = 0; c < s->nst; c++)
				sample(&pr, &a->sites[s->site], &a->st[v->st[s->first_st + c]]);
		}
		for (size_t i = 0; i < v->nprocs; i++) {
			const struct mt_proc *p = &a->procs[v->procs[i].proc];
			if (p->start_real_ns && p->start_real_ns < t0)
				t0 = p->start_real_ns;
			if (v->procs[i].duration_ns > dur)
				dur = v->procs[i].duration_ns;
			if (p->policy.policy == MT_SHARD_POLICY_POISSON && p->policy.mean)
				period = p->policy.mean;
		}
	}
	mappings(&pr);
	pb_i(&pr.out, 9, t0 == UINT64_MAX ? 0 : (int64_t)t0);
	pb_i(&pr.out, 10, (int64_t)dur);
	value_type(&pr, 11, "space", "bytes");
	pb_i(&pr.out, 12, (int64_t)period);
	char comment[512];
	snprintf(comment, sizeof(comment), "mtreport %s; sampling %s", PACKAGE_VERSION,
		 views[0]->policy ? views[0]->policy : "?");
	pb_i(&pr.out, 13, str_id(&pr.st, comment));
	pb_i(&pr.out, 14, str_id(&pr.st, "alloc_space"));
	/* the string table last: every index above is known by now */
	for (size_t i = 0; i < pr.st.n; i++) {
		pb_len(&pr.out, 6, pr.st.s[i], strlen(pr.st.s[i]));
		free(pr.st.s[i]);
	}
	if (gzip_to(out, pr.out.p, pr.out.n) < 0)
		fprintf(stderr, "mtreport: gzip failed\n");
	free(pr.st.s);
	mt_map_free(&pr.st.idx);
	mt_map_free(&pr.loc_idx);
	mt_map_free(&pr.fn_idx);
	free(pr.out.p);
	free(pr.module_used);
}
