/* agg: the mergeable aggregate.  Interning of modules, sites, processes,
 * threads and cells; the accounting of sampled allocations and frees; and
 * mt_agg_merge, which folds one aggregate into another with the result of
 * reading all their inputs in one pass (README of report.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "report/report.h"

void mt_agg_init(struct mt_agg *a)
{
	memset(a, 0, sizeof(*a));
}

static void proc_destroy(struct mt_proc *p)
{
	free(p->host);
	free(p->exe);
	free(p->version);
	for (uint32_t i = 0; i < p->argc; i++)
		free(p->argv[i]);
	free(p->argv);
	free(p->policy_name);
	free(p->unwind);
	free(p->shard_ids);
	mt_map_free(&p->threads);
	mt_otab_free(&p->live);
	mt_otab_free(&p->pend);
	for (size_t i = 0; i < p->nmarks; i++)
		free(p->marks[i].label);
	free(p->marks);
	free(p->classes);
	free(p->end_reason);
}

void mt_agg_destroy(struct mt_agg *a)
{
	for (size_t i = 0; i < a->nmodules; i++) {
		free(a->modules[i].ident);
		free(a->modules[i].path);
		free(a->modules[i].build_id);
	}
	free(a->modules);
	for (size_t i = 0; i < a->nsites; i++)
		free(a->sites[i].frames);
	free(a->sites);
	free(a->st);
	free(a->stc);
	free(a->xm);
	for (size_t i = 0; i < a->nthreads; i++) {
		free(a->threads[i].name);
		free(a->threads[i].live);
	}
	free(a->threads);
	for (size_t i = 0; i < a->nprocs; i++)
		proc_destroy(&a->procs[i]);
	free(a->procs);
	for (size_t i = 0; i < a->nproblems; i++) {
		free(a->problems[i].file);
		free(a->problems[i].text);
	}
	free(a->problems);
	mt_map_free(&a->module_idx);
	mt_map_free(&a->site_idx);
	mt_map_free(&a->st_idx);
	mt_map_free(&a->stc_idx);
	mt_map_free(&a->xm_idx);
	mt_map_free(&a->proc_idx);
	memset(a, 0, sizeof(*a));
}

/* The next key of a hash chain (for hash collisions between different
 * contents: each is stored under the first free key of its chain). */
static inline uint64_t chain_next(uint64_t k)
{
	return mt_mix64(k + 0x9e3779b97f4a7c15ull);
}

/* ---- modules ------------------------------------------------------------ */

const char *mt_basename(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

bool mt_module_is_wrapper(const char *path)
{
	static const char *const names[] = {
		"libc.so", "libc-", "libstdc++.so", "libc++.so", "libc++abi.so",
	};
	const char *b = mt_basename(path);

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strncmp(b, names[i], strlen(names[i])))
			return true;
	return false;
}

static char *module_ident(const char *path, size_t pathlen,
			  const uint8_t *bid, uint32_t bidlen, size_t *len)
{
	static const char hex[] = "0123456789abcdef";
	char *s;

	if (bidlen) {
		s = mt_xmalloc(2 + 2 * (size_t)bidlen + 1);
		s[0] = 'b';
		s[1] = ':';
		for (uint32_t i = 0; i < bidlen; i++) {
			s[2 + 2 * i] = hex[bid[i] >> 4];
			s[3 + 2 * i] = hex[bid[i] & 15];
		}
		*len = 2 + 2 * (size_t)bidlen;
		s[*len] = '\0';
		return s;
	}
	s = mt_xmalloc(pathlen + 3);
	s[0] = 'p';
	s[1] = ':';
	memcpy(s + 2, path, pathlen);
	s[pathlen + 2] = '\0';
	*len = pathlen + 2;
	return s;
}

uint32_t mt_agg_module(struct mt_agg *a, const char *path, size_t pathlen,
		       const uint8_t *bid, uint32_t bidlen)
{
	size_t len;
	char *ident = module_ident(path ? path : "", path ? pathlen : 0, bid,
				   bidlen, &len);
	uint64_t h = mt_hash_bytes(ident, len, 1), k = h;
	uint32_t i;

	while ((i = mt_map_get(&a->module_idx, k)) != UINT32_MAX) {
		struct mt_module *m = &a->modules[i];
		if (!strcmp(m->ident, ident)) {
			free(ident);
			/* build-id ident: keep the least path, whatever the order */
			if (path && (strlen(m->path) != pathlen ||
				     memcmp(m->path, path, pathlen)) &&
			    strncmp(path, m->path, pathlen + 1) < 0) {
				free(m->path);
				m->path = mt_xstrndup(path, pathlen);
				m->wrapper = mt_module_is_wrapper(m->path);
			}
			return i;
		}
		k = chain_next(k);
	}
	mt_grow(&a->modules, &a->capmodules, a->nmodules + 1, sizeof(*a->modules));
	i = (uint32_t)a->nmodules++;
	struct mt_module *m = &a->modules[i];
	memset(m, 0, sizeof(*m));
	m->ident = ident;
	m->path = mt_xstrndup(path ? path : "", path ? pathlen : 0);
	if (bidlen) {
		m->build_id = mt_xmalloc(bidlen);
		memcpy(m->build_id, bid, bidlen);
		m->build_id_len = bidlen;
	}
	m->wrapper = mt_module_is_wrapper(m->path);
	m->hash = h;
	mt_map_put(&a->module_idx, k, i);
	return i;
}

/* ---- sites ----------------------------------------------------------------- */

static uint64_t frames_hash(const struct mt_agg *a, const struct mt_frame *f,
			    uint32_t depth)
{
	uint64_t h = mt_mix64(depth + 0x51ull);
	for (uint32_t i = 0; i < depth; i++) {
		uint64_t mh = f[i].module == MT_NO_MODULE
				      ? 0x1234567ull
				      : a->modules[f[i].module].hash;
		h = mt_mix64(h ^ mh);
		h = mt_mix64(h ^ f[i].offset);
	}
	return h;
}

static bool frames_eq(const struct mt_site *s, const struct mt_frame *f,
		      uint32_t depth)
{
	if (s->depth != depth)
		return false;
	for (uint32_t i = 0; i < depth; i++)
		if (s->frames[i].offset != f[i].offset ||
		    s->frames[i].module != f[i].module)
			return false;
	return true;
}

uint32_t mt_agg_site(struct mt_agg *a, const struct mt_frame *f, uint32_t depth)
{
	uint64_t h = frames_hash(a, f, depth), k = h;
	uint32_t i;

	while ((i = mt_map_get(&a->site_idx, k)) != UINT32_MAX) {
		if (frames_eq(&a->sites[i], f, depth))
			return i;
		k = chain_next(k);
	}
	mt_grow(&a->sites, &a->capsites, a->nsites + 1, sizeof(*a->sites));
	i = (uint32_t)a->nsites++;
	struct mt_site *s = &a->sites[i];
	memset(s, 0, sizeof(*s));
	s->depth = depth;
	s->frames = mt_xmalloc((depth ? depth : 1) * sizeof(*f));
	for (uint32_t j = 0; j < depth; j++) {
		s->frames[j] = f[j];
		s->frames[j].pad_ = 0;
	}
	s->hash = h;
	mt_map_put(&a->site_idx, k, i);
	return i;
}

/* ---- processes and threads -------------------------------------------------- */

static uint64_t proc_hash(const char *host, uint64_t pid, uint64_t start)
{
	return mt_mix64(mt_hash_bytes(host, strlen(host), pid) ^ mt_mix64(start));
}

uint32_t mt_agg_proc(struct mt_agg *a, const char *host, uint64_t pid,
		     uint64_t start_real_ns)
{
	if (!host)
		host = "";
	uint64_t h = proc_hash(host, pid, start_real_ns), k = h;
	uint32_t i;

	while ((i = mt_map_get(&a->proc_idx, k)) != UINT32_MAX) {
		struct mt_proc *p = &a->procs[i];
		if (p->pid == pid && p->start_real_ns == start_real_ns &&
		    !strcmp(p->host, host))
			return i;
		k = chain_next(k);
	}
	mt_grow(&a->procs, &a->capprocs, a->nprocs + 1, sizeof(*a->procs));
	i = (uint32_t)a->nprocs++;
	struct mt_proc *p = &a->procs[i];
	memset(p, 0, sizeof(*p));
	p->host = mt_xstrndup(host, strlen(host));
	p->pid = pid;
	p->start_real_ns = start_real_ns;
	p->rank = UINT64_MAX;
	p->tmin = UINT64_MAX;
	p->exe = mt_xstrndup("", 0);
	p->version = mt_xstrndup("", 0);
	p->policy_name = mt_xstrndup("", 0);
	p->unwind = mt_xstrndup("", 0);
	mt_otab_init(&p->live, sizeof(struct mt_live));
	mt_otab_init(&p->pend, sizeof(struct mt_pend));
	p->tl.tmin = UINT64_MAX;
	p->hash = h;
	mt_map_put(&a->proc_idx, k, i);
	return i;
}

static char *dup_str(const struct mt_shard_str *s)
{
	return s->ptr ? mt_xstrndup(s->ptr, s->len) : mt_xstrndup("", 0);
}

void mt_agg_proc_header(struct mt_agg *a, uint32_t proc,
			const struct mt_shard_header *h, uint64_t rank)
{
	struct mt_proc *p = &a->procs[proc];

	if (rank >= p->rank && p->rank != UINT64_MAX)
		return;
	p->rank = rank;
	p->ppid = h->ppid;
	p->start_mono_ns = h->start_mono_ns;
	free(p->exe);
	p->exe = dup_str(&h->exe);
	free(p->version);
	p->version = dup_str(&h->version);
	for (uint32_t i = 0; i < p->argc; i++)
		free(p->argv[i]);
	free(p->argv);
	p->argc = h->argc;
	p->argv = mt_xcalloc(h->argc ? h->argc : 1, sizeof(char *));
	for (uint32_t i = 0; i < h->argc; i++)
		p->argv[i] = dup_str(&h->argv[i]);
	free(p->policy_name);
	p->policy_name = dup_str(&h->policy_name);
	free(p->unwind);
	p->unwind = dup_str(&h->unwind);
	memset(&p->policy, 0, sizeof(p->policy));
	p->policy.present = h->present;
	p->policy.policy = h->policy;
	p->policy.mean = h->mean;
	p->policy.large = h->large;
	p->policy.medium = h->medium;
	p->policy.medium_rate = h->medium_rate;
	p->policy.small_rate = h->small_rate;
	p->policy.boost_threshold = h->boost_threshold;
	p->policy.boost_max = h->boost_max;
	p->policy.seed = h->seed;
	p->policy.stack_depth = h->stack_depth;
	p->policy.addr_base = h->addr_base;
	p->policy.buffer = h->buffer;
	p->policy.pid = h->pid;
	p->policy.ppid = h->ppid;
	p->policy.start_realtime_ns = h->start_realtime_ns;
	p->policy.start_mono_ns = h->start_mono_ns;
}

bool mt_agg_proc_shard(struct mt_agg *a, uint32_t proc, uint64_t id)
{
	struct mt_proc *p = &a->procs[proc];
	size_t lo = 0, hi = p->nshard_ids;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p->shard_ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < p->nshard_ids && p->shard_ids[lo] == id)
		return false;
	p->shard_ids = mt_xrealloc(p->shard_ids,
				   (p->nshard_ids + 1) * sizeof(uint64_t));
	memmove(p->shard_ids + lo + 1, p->shard_ids + lo,
		(p->nshard_ids - lo) * sizeof(uint64_t));
	p->shard_ids[lo] = id;
	p->nshard_ids++;
	return true;
}

uint32_t mt_agg_thread(struct mt_agg *a, uint32_t proc, uint64_t tid)
{
	struct mt_proc *p = &a->procs[proc];
	uint32_t i = mt_map_get(&p->threads, tid);

	if (i != UINT32_MAX)
		return i;
	mt_grow(&a->threads, &a->capthreads, a->nthreads + 1, sizeof(*a->threads));
	i = (uint32_t)a->nthreads++;
	struct mt_thread *t = &a->threads[i];
	memset(t, 0, sizeof(*t));
	t->proc = proc;
	t->tid = tid;
	t->name = mt_xstrndup("", 0);
	t->tmin = UINT64_MAX;
	mt_map_put(&p->threads, tid, i);
	return i;
}

uint32_t mt_agg_st(struct mt_agg *a, uint32_t site, uint32_t thread)
{
	uint64_t k = (uint64_t)site << 32 | thread;
	uint32_t i = mt_map_get(&a->st_idx, k);

	if (i != UINT32_MAX)
		return i;
	mt_grow(&a->st, &a->capst, a->nst + 1, sizeof(*a->st));
	i = (uint32_t)a->nst++;
	memset(&a->st[i], 0, sizeof(a->st[i]));
	a->st[i].site = site;
	a->st[i].thread = thread;
	a->st[i].size_min = UINT64_MAX;
	mt_map_put(&a->st_idx, k, i);
	return i;
}

/* A small index of jemalloc's size classes (< 256). */
static unsigned class_index(uint64_t cls)
{
	if (cls <= 8)
		return 0;
	if (cls <= 64)
		return (unsigned)(cls / 16);
	if (cls > ((uint64_t)1 << 62))
		return 255;
	unsigned lg = 63u - (unsigned)__builtin_clzll(cls - 1);
	uint64_t delta = (uint64_t)1 << (lg - 2);
	unsigned m = (unsigned)((cls - ((uint64_t)1 << lg) + delta - 1) / delta);
	unsigned idx = 4 + (lg - 6) * 4 + m;
	return idx > 254 ? 254 : idx;
}

uint32_t mt_agg_stc(struct mt_agg *a, uint32_t st, uint64_t cls)
{
	uint64_t k = (uint64_t)st << 8 | class_index(cls);
	uint32_t i = mt_map_get(&a->stc_idx, k);

	if (i != UINT32_MAX)
		return i;
	mt_grow(&a->stc, &a->capstc, a->nstc + 1, sizeof(*a->stc));
	i = (uint32_t)a->nstc++;
	memset(&a->stc[i], 0, sizeof(a->stc[i]));
	a->stc[i].st = st;
	a->stc[i].cls = cls;
	mt_map_put(&a->stc_idx, k, i);
	return i;
}

uint32_t mt_agg_xm(struct mt_agg *a, uint32_t from, uint32_t to)
{
	uint64_t k = (uint64_t)from << 32 | to;
	uint32_t i;

	if (a->nxm && k == a->xm_key)
		return a->xm_last;
	i = mt_map_get(&a->xm_idx, k);
	if (i != UINT32_MAX) {
		a->xm_key = k;
		a->xm_last = i;
		return i;
	}
	mt_grow(&a->xm, &a->capxm, a->nxm + 1, sizeof(*a->xm));
	i = (uint32_t)a->nxm++;
	memset(&a->xm[i], 0, sizeof(a->xm[i]));
	a->xm[i].from = from;
	a->xm[i].to = to;
	mt_map_put(&a->xm_idx, k, i);
	a->xm_key = k;
	a->xm_last = i;
	return i;
}

/* ---- series and timeline ------------------------------------------------------ */

/* The least k >= k0 with (hi >> k) - (lo >> k) < n. */
static unsigned fit_k(unsigned k0, uint64_t lo, uint64_t hi, uint64_t n)
{
	unsigned k = k0;
	while (k < 63 && (hi >> k) - (lo >> k) >= n)
		k++;
	return k;
}

static bool series_empty(const struct mt_series *s)
{
	return s->tmin > s->tmax;
}

/* Re-buckets s to width 2^k starting at bucket lo (k >= s->k). */
static void series_rebucket(struct mt_series *s, unsigned k, uint64_t lo)
{
	mt_i128 d[MT_SERIES_N];

	memset(d, 0, sizeof(d));
	for (unsigned i = 0; i < MT_SERIES_N; i++) {
		if (!s->d[i])
			continue;
		uint64_t b = ((s->lo + i) >> (k - s->k)) - lo;
		d[b] += s->d[i];
	}
	memcpy(s->d, d, sizeof(d));
	s->k = k;
	s->lo = lo;
}

void mt_series_add(struct mt_series *s, uint64_t t, mt_i128 delta)
{
	/* the common case: a time inside the current buckets */
	if (t >= s->tmin && (t >> s->k) - s->lo < MT_SERIES_N) {
		if (t > s->tmax)
			s->tmax = t; /* k stays the least that fits */
		s->d[(t >> s->k) - s->lo] += delta;
		return;
	}
	if (series_empty(s)) {
		memset(s, 0, sizeof(*s));
		s->tmin = s->tmax = t;
		s->lo = t;
	} else {
		/* k stays the least that fits while the new span fits at k;
		 * the buckets move only when k or the first bucket changes */
		uint64_t lo = t < s->tmin ? t : s->tmin;
		uint64_t hi = t > s->tmax ? t : s->tmax;
		unsigned k = fit_k(s->k, lo, hi, MT_SERIES_N);
		if (k != s->k || (lo >> k) != s->lo)
			series_rebucket(s, k, lo >> k);
		s->tmin = lo;
		s->tmax = hi;
	}
	s->d[(t >> s->k) - s->lo] += delta;
}

void mt_series_merge(struct mt_series *s, const struct mt_series *x)
{
	if (series_empty(x))
		return;
	if (series_empty(s)) {
		*s = *x;
		return;
	}
	uint64_t lo = x->tmin < s->tmin ? x->tmin : s->tmin;
	uint64_t hi = x->tmax > s->tmax ? x->tmax : s->tmax;
	unsigned k0 = s->k > x->k ? s->k : x->k;
	unsigned k = fit_k(k0, lo, hi, MT_SERIES_N);
	struct mt_series y = *x;

	series_rebucket(s, k, lo >> k);
	series_rebucket(&y, k, lo >> k);
	for (unsigned i = 0; i < MT_SERIES_N; i++)
		s->d[i] += y.d[i];
	s->tmin = lo;
	s->tmax = hi;
}

mt_i128 mt_series_peak(const struct mt_series *s)
{
	mt_i128 run = 0, peak = 0;

	if (!s || series_empty(s))
		return 0;
	for (unsigned i = 0; i < MT_SERIES_N; i++) {
		run += s->d[i];
		if (run > peak)
			peak = run;
	}
	return peak;
}

/* A total order on points: -1, 0, 1. */
static int tp_cmp(const struct mt_tpoint *a, const struct mt_tpoint *b,
		  bool by_time)
{
#define C(f)                                 \
	if (a->f != b->f)                    \
		return a->f < b->f ? -1 : 1;
	if (by_time) {
		C(time_ns) C(allocated)
	} else {
		C(allocated)
		if (a->time_ns != b->time_ns)  /* the earlier peak ranks higher */
			return a->time_ns > b->time_ns ? -1 : 1;
	}
	C(active) C(resident) C(mapped) C(live_estimate)
#undef C
	return 0;
}

static void tslot_put(struct mt_tslot *s, const struct mt_tpoint *p)
{
	if (!s->used) {
		s->used = true;
		s->max = s->last = *p;
		return;
	}
	if (tp_cmp(p, &s->max, false) > 0)
		s->max = *p;
	if (tp_cmp(p, &s->last, true) > 0)
		s->last = *p;
}

static void tl_rebucket(struct mt_timeline *tl, unsigned k, uint64_t lo)
{
	struct mt_tslot s[MT_TL_N];

	memset(s, 0, sizeof(s));
	for (unsigned i = 0; i < MT_TL_N; i++) {
		if (!tl->s[i].used)
			continue;
		uint64_t b = ((tl->lo + i) >> (k - tl->k)) - lo;
		tslot_put(&s[b], &tl->s[i].max);
		tslot_put(&s[b], &tl->s[i].last);
	}
	memcpy(tl->s, s, sizeof(s));
	tl->k = k;
	tl->lo = lo;
}

void mt_timeline_add(struct mt_timeline *tl, const struct mt_tpoint *p)
{
	uint64_t t = p->time_ns;

	if (tl->tmin > tl->tmax) {
		memset(tl, 0, sizeof(*tl));
		tl->tmin = tl->tmax = t;
		tl->lo = t;
	} else if (t < tl->tmin || t > tl->tmax) {
		uint64_t lo = t < tl->tmin ? t : tl->tmin;
		uint64_t hi = t > tl->tmax ? t : tl->tmax;
		unsigned k = fit_k(tl->k, lo, hi, MT_TL_N);
		if (k != tl->k || (lo >> k) != tl->lo)
			tl_rebucket(tl, k, lo >> k);
		tl->tmin = lo;
		tl->tmax = hi;
	}
	tslot_put(&tl->s[(t >> tl->k) - tl->lo], p);
	tl->npoints++;
}

void mt_timeline_merge(struct mt_timeline *tl, const struct mt_timeline *x)
{
	if (x->tmin > x->tmax)
		return;
	if (tl->tmin > tl->tmax) {
		*tl = *x;
		return;
	}
	uint64_t lo = x->tmin < tl->tmin ? x->tmin : tl->tmin;
	uint64_t hi = x->tmax > tl->tmax ? x->tmax : tl->tmax;
	unsigned k0 = tl->k > x->k ? tl->k : x->k;
	unsigned k = fit_k(k0, lo, hi, MT_TL_N);
	struct mt_timeline y = *x;

	tl_rebucket(tl, k, lo >> k);
	tl_rebucket(&y, k, lo >> k);
	for (unsigned i = 0; i < MT_TL_N; i++)
		if (y.s[i].used) {
			tslot_put(&tl->s[i], &y.s[i].max);
			tslot_put(&tl->s[i], &y.s[i].last);
		}
	tl->tmin = lo;
	tl->tmax = hi;
	tl->npoints += x->npoints;
}

void mt_instats_add(struct mt_instats *s, const struct mt_instats *x)
{
	uint64_t *d = (uint64_t *)s;
	const uint64_t *e = (const uint64_t *)x;

	for (size_t i = 0; i < sizeof(*s) / sizeof(uint64_t); i++)
		d[i] = mt_add64(d[i], e[i]);
}

/* The two tables with their entry sizes known to the compiler. */
#define LIVE_GET(t, k) ((struct mt_live *)mt_otab_get_k(t, k, sizeof(struct mt_live)))
#define LIVE_ADD(t, k) ((struct mt_live *)mt_otab_add_k(t, k, sizeof(struct mt_live)))
#define LIVE_DEL(t, e) mt_otab_del_k(t, e, sizeof(struct mt_live))
#define PEND_GET(t, k) ((struct mt_pend *)mt_otab_get_k(t, k, sizeof(struct mt_pend)))
#define PEND_ADD(t, k) ((struct mt_pend *)mt_otab_add_k(t, k, sizeof(struct mt_pend)))
#define PEND_DEL(t, e) mt_otab_del_k(t, e, sizeof(struct mt_pend))

/* ---- accounting ------------------------------------------------------------- */

static void series_of(struct mt_thread *t, uint64_t time, mt_i128 d)
{
	if (!t->live) {
		t->live = mt_xcalloc(1, sizeof(*t->live));
		t->live->tmin = UINT64_MAX;
	}
	mt_series_add(t->live, time, d);
}

/* The free (seq, time, by thread) of the live object l. */
static void apply_pair(struct mt_agg *a, const struct mt_live *l,
		       uint64_t time_ns, uint32_t thread)
{
	struct mt_st *st = &a->st[l->st];
	struct mt_terms t;
	uint64_t life = time_ns > l->time_ns ? time_ns - l->time_ns : 0;

	mt_terms_of(l->w, l->size, &t);
	mt_est_add(&st->freed, &t);
	if (st->thread != thread)
		mt_est_add(&st->xfreed, &t);
	if (l->w == 1.0)
		st->life_w = mt_add128(st->life_w, life);
	else
		st->life_w = mt_add128(st->life_w,
				       (mt_u128)((double)life * l->w + 0.5));
	st->life[mt_life_bucket(life)] = mt_add64(st->life[mt_life_bucket(life)], t.n);
	uint32_t x = mt_agg_xm(a, st->thread, thread);
	mt_est_add(&a->xm[x].est, &t);
	mt_est_add(&a->threads[thread].freed_by, &t);
	series_of(&a->threads[st->thread], time_ns, -(mt_i128)t.b);
}

/* Inserts a live object, or pairs it with a pending free. */
static void live_put(struct mt_agg *a, struct mt_proc *p, const struct mt_live *l)
{
	if (p->pend.n) {
		struct mt_pend *f = PEND_GET(&p->pend, l->seq);
		if (f) {
			apply_pair(a, l, f->time_ns, f->thread);
			PEND_DEL(&p->pend, f);
			return;
		}
	}
	struct mt_live *e = LIVE_ADD(&p->live, l->seq);
	if (!e) {
		p->in.dup_seq++;
		return;
	}
	*e = *l;
}

static void pend_put(struct mt_agg *a, struct mt_proc *p, const struct mt_pend *f)
{
	struct mt_live *l = LIVE_GET(&p->live, f->alloc_seq);
	if (l) {
		apply_pair(a, l, f->time_ns, f->thread);
		LIVE_DEL(&p->live, l);
		return;
	}
	struct mt_pend *e = PEND_ADD(&p->pend, f->alloc_seq);
	if (!e) {
		p->in.dup_seq++;
		return;
	}
	*e = *f;
}

void mt_agg_alloc(struct mt_agg *a, uint32_t proc, uint64_t seq,
		  uint64_t time_ns, uint64_t size, double w, uint32_t st,
		  uint32_t stc)
{
	struct mt_proc *p = &a->procs[proc];
	struct mt_st *c = &a->st[st];
	struct mt_live l = { seq, time_ns, size, w, st, stc };
	struct mt_pend *f = p->pend.n ? PEND_GET(&p->pend, seq) : NULL;
	struct mt_live *e = NULL;
	struct mt_terms t;

	if (!f && !(e = LIVE_ADD(&p->live, seq))) {
		p->in.dup_seq++; /* a repeated event number (or UINT64_MAX) */
		return;
	}
	mt_terms_of(w, size, &t);
	mt_est_add(&c->alloc, &t);
	mt_est_add(&a->stc[stc].est, &t);
	if (size < c->size_min)
		c->size_min = size;
	if (size > c->size_max)
		c->size_max = size;
	series_of(&a->threads[c->thread], time_ns, (mt_i128)t.b);
	if (f) {
		apply_pair(a, &l, f->time_ns, f->thread);
		PEND_DEL(&p->pend, f);
	} else {
		*e = l;
	}
}

void mt_agg_free(struct mt_agg *a, uint32_t proc, uint64_t seq,
		 uint64_t time_ns, uint64_t alloc_seq, uint32_t thread)
{
	struct mt_pend f = { alloc_seq, seq, time_ns, thread, 0 };
	pend_put(a, &a->procs[proc], &f);
}

/* -1, 0, 1: a total order on totals, "later" ranking higher. */
static int totals_cmp(const struct mt_totals *a, const struct mt_totals *b)
{
#define C(f)                              \
	if (a->f != b->f)                 \
		return a->f < b->f ? -1 : 1;
	C(have) C(time_ns) C(allocs) C(frees) C(bytes_allocated)
	C(bytes_freed) C(shared)
#undef C
	return 0;
}

void mt_agg_totals(struct mt_agg *a, uint32_t thread, const struct mt_totals *t)
{
	struct mt_thread *th = &a->threads[thread];

	if (t->from_exit) {
		/* each THREAD_EXIT record is a thread of its own: they add */
		struct mt_totals *e = &th->exit_totals;
		e->have = e->from_exit = true;
		e->allocs = mt_add64(e->allocs, t->allocs);
		e->frees = mt_add64(e->frees, t->frees);
		e->bytes_allocated = mt_add64(e->bytes_allocated, t->bytes_allocated);
		e->bytes_freed = mt_add64(e->bytes_freed, t->bytes_freed);
		e->time_ns++;  /* the number of records */
		return;
	}
	if (totals_cmp(t, &th->totals) > 0)
		th->totals = *t;
}

void mt_agg_thread_name(struct mt_agg *a, uint32_t thread, const char *name,
			size_t len, uint64_t time_ns)
{
	struct mt_thread *t = &a->threads[thread];

	if (!name)
		return;
	if (time_ns < t->name_time)
		return;
	if (time_ns == t->name_time) {
		/* the same time: the greater name, so that order never matters */
		size_t tl = strlen(t->name);
		int c = memcmp(name, t->name, len < tl ? len : tl);
		if (c < 0 || (c == 0 && len <= tl))
			return;
	}
	free(t->name);
	t->name = mt_xstrndup(name, len);
	t->name_time = time_ns;
}

void mt_agg_timeline(struct mt_agg *a, uint32_t proc, const struct mt_tpoint *p)
{
	mt_timeline_add(&a->procs[proc].tl, p);
}

void mt_agg_mark(struct mt_agg *a, uint32_t proc, uint64_t time_ns,
		 const char *label, size_t len)
{
	struct mt_proc *p = &a->procs[proc];

	mt_grow(&p->marks, &p->capmarks, p->nmarks + 1, sizeof(*p->marks));
	p->marks[p->nmarks].time_ns = time_ns;
	p->marks[p->nmarks].label = mt_xstrndup(label ? label : "", label ? len : 0);
	p->nmarks++;
}

static int classes_cmp(uint64_t ta, const struct mt_shard_class *a, uint32_t na,
		       uint64_t tb, const struct mt_shard_class *b, uint32_t nb)
{
	uint64_t sa = 0, sb = 0;

	if (ta != tb)
		return ta < tb ? -1 : 1;
	for (uint32_t i = 0; i < na; i++)
		sa = mt_add64(sa, a[i].requests);
	for (uint32_t i = 0; i < nb; i++)
		sb = mt_add64(sb, b[i].requests);
	if (sa != sb)
		return sa < sb ? -1 : 1;
	if (na != nb)
		return na < nb ? -1 : 1;
	for (uint32_t i = 0; i < na; i++) {
		if (a[i].size != b[i].size)
			return a[i].size < b[i].size ? -1 : 1;
		if (a[i].requests != b[i].requests)
			return a[i].requests < b[i].requests ? -1 : 1;
	}
	return 0;
}

void mt_agg_classes(struct mt_agg *a, uint32_t proc, uint64_t time_ns,
		    const struct mt_shard_class *v, uint32_t n)
{
	struct mt_proc *p = &a->procs[proc];

	if (p->classes && classes_cmp(time_ns, v, n, p->classes_time, p->classes,
				      p->nclasses) <= 0)
		return;
	free(p->classes);
	p->classes = mt_xmalloc((n ? n : 1) * sizeof(*v));
	if (n)
		memcpy(p->classes, v, n * sizeof(*v));
	p->nclasses = n;
	p->classes_time = time_ns;
}

void mt_agg_end(struct mt_agg *a, uint32_t proc, uint64_t time_ns,
		const char *reason, size_t len)
{
	struct mt_proc *p = &a->procs[proc];
	char *r = mt_xstrndup(reason ? reason : "", reason ? len : 0);

	if (p->end_reason && (time_ns < p->end_time ||
			      (time_ns == p->end_time && strcmp(r, p->end_reason) <= 0))) {
		free(r);
		return;
	}
	free(p->end_reason);
	p->end_reason = r;
	p->end_time = time_ns;
}

void mt_agg_time(struct mt_agg *a, uint32_t proc, uint32_t thread, uint64_t t)
{
	struct mt_proc *p = &a->procs[proc];

	if (t < p->tmin)
		p->tmin = t;
	if (t > p->tmax)
		p->tmax = t;
	if (thread != UINT32_MAX) {
		struct mt_thread *th = &a->threads[thread];
		if (t < th->tmin)
			th->tmin = t;
		if (t > th->tmax)
			th->tmax = t;
	}
}

void mt_agg_problem(struct mt_agg *a, const char *file, const char *text)
{
	if (a->nproblems >= MT_MAX_PROBLEMS) {
		a->problems_dropped++;
		return;
	}
	mt_grow(&a->problems, &a->capproblems, a->nproblems + 1,
		sizeof(*a->problems));
	a->problems[a->nproblems].file = mt_xstrndup(file, strlen(file));
	a->problems[a->nproblems].text = mt_xstrndup(text, strlen(text));
	a->nproblems++;
}

/* ---- merge ------------------------------------------------------------------- */

static void st_add(struct mt_st *d, const struct mt_st *s)
{
	mt_est_sum(&d->alloc, &s->alloc);
	mt_est_sum(&d->freed, &s->freed);
	mt_est_sum(&d->xfreed, &s->xfreed);
	d->life_w = mt_add128(d->life_w, s->life_w);
	for (unsigned i = 0; i < MT_LIFE_BUCKETS; i++)
		d->life[i] = mt_add64(d->life[i], s->life[i]);
	if (s->size_min < d->size_min)
		d->size_min = s->size_min;
	if (s->size_max > d->size_max)
		d->size_max = s->size_max;
}

static void merge_proc(struct mt_agg *a, uint32_t pi, struct mt_proc *x)
{
	struct mt_proc *p = &a->procs[pi];

	if (x->rank < p->rank) {
		struct mt_shard_header h;
		struct mt_shard_str *argv = mt_xcalloc(x->argc ? x->argc : 1,
						       sizeof(*argv));
		memset(&h, 0, sizeof(h));
		h = x->policy;
		h.ppid = x->ppid;
		h.start_mono_ns = x->start_mono_ns;
		h.exe.ptr = x->exe;
		h.exe.len = (uint32_t)strlen(x->exe);
		h.version.ptr = x->version;
		h.version.len = (uint32_t)strlen(x->version);
		h.policy_name.ptr = x->policy_name;
		h.policy_name.len = (uint32_t)strlen(x->policy_name);
		h.unwind.ptr = x->unwind;
		h.unwind.len = (uint32_t)strlen(x->unwind);
		for (uint32_t i = 0; i < x->argc; i++) {
			argv[i].ptr = x->argv[i];
			argv[i].len = (uint32_t)strlen(x->argv[i]);
		}
		h.argv = argv;
		h.argc = x->argc;
		mt_agg_proc_header(a, pi, &h, x->rank);
		free(argv);
		p = &a->procs[pi];
	}
	for (size_t i = 0; i < x->nshard_ids; i++)
		mt_agg_proc_shard(a, pi, x->shard_ids[i]);
	if (x->tmin < p->tmin)
		p->tmin = x->tmin;
	if (x->tmax > p->tmax)
		p->tmax = x->tmax;
	mt_timeline_merge(&p->tl, &x->tl);
	for (size_t i = 0; i < x->nmarks; i++)
		mt_agg_mark(a, pi, x->marks[i].time_ns, x->marks[i].label,
			    strlen(x->marks[i].label));
	if (x->classes)
		mt_agg_classes(a, pi, x->classes_time, x->classes, x->nclasses);
	mt_instats_add(&p->in, &x->in);
	if (x->end_reason)
		mt_agg_end(a, pi, x->end_time, x->end_reason, strlen(x->end_reason));
}

bool mt_agg_overlaps(const struct mt_agg *a, const struct mt_agg *x,
		     char *what, size_t len)
{
	for (size_t i = 0; i < x->nprocs; i++) {
		const struct mt_proc *xp = &x->procs[i];
		uint64_t h = xp->hash, k = h;
		uint32_t j;
		while ((j = mt_map_get(&a->proc_idx, k)) != UINT32_MAX) {
			const struct mt_proc *p = &a->procs[j];
			if (p->pid == xp->pid && p->start_real_ns == xp->start_real_ns &&
			    !strcmp(p->host, xp->host))
				break;
			k = chain_next(k);
		}
		if (j == UINT32_MAX)
			continue;
		const struct mt_proc *p = &a->procs[j];
		for (size_t u = 0, v = 0; u < p->nshard_ids && v < xp->nshard_ids;) {
			if (p->shard_ids[u] == xp->shard_ids[v]) {
				snprintf(what, len, "a shard of process %llu on %s",
					 (unsigned long long)p->pid, p->host);
				return true;
			}
			if (p->shard_ids[u] < xp->shard_ids[v])
				u++;
			else
				v++;
		}
	}
	return false;
}

void mt_agg_merge(struct mt_agg *a, struct mt_agg *x)
{
	uint32_t *mod = mt_xmalloc((x->nmodules + 1) * sizeof(uint32_t));
	uint32_t *site = mt_xmalloc((x->nsites + 1) * sizeof(uint32_t));
	uint32_t *proc = mt_xmalloc((x->nprocs + 1) * sizeof(uint32_t));
	uint32_t *thr = mt_xmalloc((x->nthreads + 1) * sizeof(uint32_t));
	uint32_t *st = mt_xmalloc((x->nst + 1) * sizeof(uint32_t));
	uint32_t *stc = mt_xmalloc((x->nstc + 1) * sizeof(uint32_t));
	struct mt_frame *fr = NULL;
	size_t capfr = 0;

	for (size_t i = 0; i < x->nmodules; i++) {
		struct mt_module *m = &x->modules[i];
		mod[i] = mt_agg_module(a, m->path, strlen(m->path), m->build_id,
				       m->build_id_len);
	}
	for (size_t i = 0; i < x->nsites; i++) {
		struct mt_site *s = &x->sites[i];
		mt_grow(&fr, &capfr, s->depth + 1, sizeof(*fr));
		for (uint32_t j = 0; j < s->depth; j++) {
			fr[j] = s->frames[j];
			if (fr[j].module != MT_NO_MODULE)
				fr[j].module = mod[fr[j].module];
		}
		site[i] = mt_agg_site(a, fr, s->depth);
	}
	free(fr);
	for (size_t i = 0; i < x->nprocs; i++) {
		struct mt_proc *xp = &x->procs[i];
		proc[i] = mt_agg_proc(a, xp->host, xp->pid, xp->start_real_ns);
		merge_proc(a, proc[i], xp);
	}
	for (size_t i = 0; i < x->nthreads; i++) {
		struct mt_thread *xt = &x->threads[i];
		uint32_t ti = mt_agg_thread(a, proc[xt->proc], xt->tid);
		struct mt_thread *t = &a->threads[ti];
		thr[i] = ti;
		mt_agg_thread_name(a, ti, xt->name, strlen(xt->name), xt->name_time);
		if (xt->totals.have)
			mt_agg_totals(a, ti, &xt->totals);
		if (xt->exit_totals.have) {
			struct mt_totals *e = &t->exit_totals;
			e->have = e->from_exit = true;
			e->allocs = mt_add64(e->allocs, xt->exit_totals.allocs);
			e->frees = mt_add64(e->frees, xt->exit_totals.frees);
			e->bytes_allocated = mt_add64(e->bytes_allocated,
						      xt->exit_totals.bytes_allocated);
			e->bytes_freed = mt_add64(e->bytes_freed,
						  xt->exit_totals.bytes_freed);
			e->time_ns = mt_add64(e->time_ns, xt->exit_totals.time_ns);
		}
		t->shards = mt_add64(t->shards, xt->shards);
		mt_est_sum(&t->freed_by, &xt->freed_by);
		if (xt->live) {
			if (!t->live) {
				t->live = mt_xcalloc(1, sizeof(*t->live));
				t->live->tmin = UINT64_MAX;
			}
			mt_series_merge(t->live, xt->live);
		}
		if (xt->tmin < t->tmin)
			t->tmin = xt->tmin;
		if (xt->tmax > t->tmax)
			t->tmax = xt->tmax;
	}
	for (size_t i = 0; i < x->nst; i++) {
		st[i] = mt_agg_st(a, site[x->st[i].site], thr[x->st[i].thread]);
		st_add(&a->st[st[i]], &x->st[i]);
	}
	for (size_t i = 0; i < x->nstc; i++) {
		stc[i] = mt_agg_stc(a, st[x->stc[i].st], x->stc[i].cls);
		mt_est_sum(&a->stc[stc[i]].est, &x->stc[i].est);
	}
	for (size_t i = 0; i < x->nxm; i++) {
		uint32_t k = mt_agg_xm(a, thr[x->xm[i].from], thr[x->xm[i].to]);
		mt_est_sum(&a->xm[k].est, &x->xm[i].est);
	}
	/* Live objects meet pending frees: x's against a's, then x's pending
	 * frees against a's live objects (x's own never match each other). */
	for (size_t i = 0; i < x->nprocs; i++) {
		struct mt_proc *xp = &x->procs[i];
		struct mt_proc *p = &a->procs[proc[i]];
		for (size_t j = 0; j < xp->live.cap; j++) {
			struct mt_live *l = mt_otab_at(&xp->live, j);
			if (!l)
				continue;
			struct mt_live c = *l;
			c.st = st[c.st];
			c.stc = stc[c.stc];
			live_put(a, p, &c);
		}
		for (size_t j = 0; j < xp->pend.cap; j++) {
			struct mt_pend *f = mt_otab_at(&xp->pend, j);
			if (!f)
				continue;
			struct mt_pend c = *f;
			c.thread = thr[c.thread];
			pend_put(a, p, &c);
		}
	}
	for (size_t i = 0; i < x->nproblems; i++)
		mt_agg_problem(a, x->problems[i].file, x->problems[i].text);
	a->problems_dropped += x->problems_dropped;
	a->aggregates += x->aggregates;
	free(mod);
	free(site);
	free(proc);
	free(thr);
	free(st);
	free(stc);
}
