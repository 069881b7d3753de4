/* emit_json: the report as one JSON document, schema "mtreport-1"
 * (doc/report-schema.md).  Keys are stable; every figure the text shows is
 * here, most with more precision.  Numbers derived from the aggregate's
 * integers print identically however the inputs were grouped. */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

struct js {
	FILE *f;
	const struct mt_view *v;
	int depth;
	bool first[64];  /* no element yet at this depth */
};

static void sep(struct js *j)
{
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = false;
}

static void str_raw(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else if (*p < 0x80)
				fputc(*p, f);
			else {
				/* pass valid UTF-8 through, escape stray bytes */
				int n = (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2
					: (*p & 0xf8) == 0xf0 ? 3 : -1;
				int k;
				for (k = 1; n > 0 && k <= n; k++)
					if ((p[k] & 0xc0) != 0x80)
						break;
				if (n > 0 && k == n + 1) {
					fwrite(p, 1, (size_t)n + 1, f);
					p += n;
				} else {
					fprintf(f, "\\u%04x", *p);
				}
			}
		}
	}
	fputc('"', f);
}

static void key(struct js *j, const char *k)
{
	sep(j);
	str_raw(j->f, k);
	fputc(':', j->f);
}

static void open_(struct js *j, const char *k, char c)
{
	if (k)
		key(j, k);
	else
		sep(j);
	fputc(c, j->f);
	j->first[++j->depth] = true;
}

static void close_(struct js *j, char c)
{
	j->depth--;
	fputc(c, j->f);
}

#define OBJ(j, k) open_(j, k, '{')
#define ARR(j, k) open_(j, k, '[')
#define END_OBJ(j) close_(j, '}')
#define END_ARR(j) close_(j, ']')

static void k_u(struct js *j, const char *k, uint64_t v)
{
	key(j, k);
	fprintf(j->f, "%" PRIu64, v);
}

static void k_s(struct js *j, const char *k, const char *s)
{
	key(j, k);
	str_raw(j->f, s ? s : "");
}

static void k_null(struct js *j, const char *k)
{
	key(j, k);
	fputs("null", j->f);
}

static void k_b(struct js *j, const char *k, bool b)
{
	key(j, k);
	fputs(b ? "true" : "false", j->f);
}

/* A real number: up to 3 decimals, trailing zeros dropped. */
static void num(FILE *f, double x)
{
	char buf[64];
	int n;

	if (!isfinite(x)) {
		fputs("null", f);
		return;
	}
	if (fabs(x) >= 1e15) {
		fprintf(f, "%.17g", x);
		return;
	}
	n = snprintf(buf, sizeof(buf), "%.3f", x);
	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
	if (!strcmp(buf, "-0"))
		strcpy(buf, "0");
	fputs(buf, f);
}

static void k_d(struct js *j, const char *k, double x)
{
	key(j, k);
	num(j->f, x);
}

static void u_s(struct js *j, const char *s)
{
	sep(j);
	str_raw(j->f, s);
}

/* An estimate: {"value", "ci95": [lo, hi], "samples", "few_samples"}. */
static void k_est(struct js *j, const char *k, const struct mt_est *e, bool bytes)
{
	double v = bytes ? mt_est_bytes(e) : mt_est_count(e);
	double ci = bytes ? mt_est_bytes_ci(e) : mt_est_count_ci(e);

	OBJ(j, k);
	k_d(j, "value", v);
	key(j, "ci95");
	fputc('[', j->f);
	num(j->f, v - ci > 0 ? v - ci : 0);
	fputc(',', j->f);
	num(j->f, v + ci);
	fputc(']', j->f);
	k_u(j, "samples", e->samples);
	k_b(j, "few_samples", mt_few(e));
	END_OBJ(j);
}

static void hex(char *buf, const uint8_t *p, uint32_t n)
{
	static const char h[] = "0123456789abcdef";
	for (uint32_t i = 0; i < n; i++) {
		buf[2 * i] = h[p[i] >> 4];
		buf[2 * i + 1] = h[p[i] & 15];
	}
	buf[2 * n] = '\0';
}

static void site_id(struct js *j, const char *k, uint32_t site)
{
	char id[20];
	snprintf(id, sizeof(id), "%016" PRIx64, j->v->agg->sites[site].hash);
	k_s(j, k, id);
}

static void frames(struct js *j, const struct mt_site *s)
{
	const struct mt_agg *a = j->v->agg;
	uint32_t trim = mt_site_trim(a, s);

	ARR(j, "frames");
	for (uint32_t i = 0; i < s->depth; i++) {
		const struct mt_frame *f = &s->frames[i];
		struct mt_symframe sf[16];
		int n = mt_symbols_lookup(j->v->sym, f, sf, 16);
		OBJ(j, NULL);
		if (f->module == MT_NO_MODULE) {
			k_null(j, "module");
			k_null(j, "path");
			k_null(j, "build_id");
		} else {
			const struct mt_module *m = &a->modules[f->module];
			k_s(j, "module", mt_module_name(a, f->module));
			k_s(j, "path", m->path);
			if (m->build_id_len) {
				char *h = mt_xmalloc(2 * (size_t)m->build_id_len + 1);
				hex(h, m->build_id, m->build_id_len);
				k_s(j, "build_id", h);
				free(h);
			} else {
				k_null(j, "build_id");
			}
		}
		k_u(j, "offset", f->offset);
		k_b(j, "wrapper", i < trim);
		/* source frames, innermost (most inlined) first */
		ARR(j, "source");
		for (int q = 0; q < n; q++) {
			OBJ(j, NULL);
			if (sf[q].function)
				k_s(j, "function", sf[q].function);
			else
				k_null(j, "function");
			if (sf[q].file)
				k_s(j, "file", sf[q].file);
			else
				k_null(j, "file");
			k_u(j, "line", sf[q].line);
			k_b(j, "inlined", sf[q].inlined);
			END_OBJ(j);
		}
		END_ARR(j);
		END_OBJ(j);
	}
	END_ARR(j);
}

static void thread_ref(struct js *j, uint32_t t)
{
	const struct mt_agg *a = j->v->agg;
	const struct mt_thread *th = &a->threads[t];
	k_u(j, "pid", a->procs[th->proc].pid);
	k_u(j, "tid", th->tid);
	k_s(j, "name", th->name);
}

static void lifetime(struct js *j, const struct mt_est *freed, mt_u128 life_w,
		     const uint64_t *life)
{
	OBJ(j, "lifetime");
	if (freed->n)
		k_d(j, "mean_ns", mt_u128_double(life_w) / mt_est_count(freed));
	else
		k_null(j, "mean_ns");
	int med = mt_life_median(life);
	if (med >= 0)
		k_s(j, "median", mt_life_label(med));
	else
		k_null(j, "median");
	ARR(j, "histogram");
	for (unsigned i = 0; i < MT_LIFE_BUCKETS; i++) {
		sep(j);
		num(j->f, ldexp((double)life[i], -MT_FX_BITS));
	}
	END_ARR(j);
	END_OBJ(j);
}

static void site(struct js *j, const struct mt_vsite *s)
{
	const struct mt_view *v = j->v;
	const struct mt_agg *a = v->agg;

	OBJ(j, NULL);
	site_id(j, "id", s->site);
	k_s(j, "label", s->label);
	frames(j, &a->sites[s->site]);
	k_est(j, "allocs", &s->alloc, false);
	k_est(j, "bytes", &s->alloc, true);
	k_est(j, "frees", &s->freed, false);
	k_est(j, "bytes_freed", &s->freed, true);
	k_est(j, "cross_thread_frees", &s->xfreed, false);
	k_est(j, "cross_thread_bytes", &s->xfreed, true);
	k_est(j, "live_objects", &s->live, false);
	k_est(j, "live_bytes", &s->live, true);
	k_u(j, "size_min", s->size_min);
	k_u(j, "size_max", s->size_max);
	lifetime(j, &s->freed, s->life_w, s->life);
	ARR(j, "threads");
	for (uint32_t k = 0; k < s->nst; k++) {
		const struct mt_st *c = &a->st[v->st[s->first_st + k]];
		struct mt_est live;
		mt_est_diff(&live, &c->alloc, &c->freed);
		live.samples = c->alloc.samples - c->freed.samples;
		OBJ(j, NULL);
		thread_ref(j, c->thread);
		k_est(j, "allocs", &c->alloc, false);
		k_est(j, "bytes", &c->alloc, true);
		k_est(j, "frees", &c->freed, false);
		k_est(j, "cross_thread_frees", &c->xfreed, false);
		k_est(j, "live_objects", &live, false);
		k_est(j, "live_bytes", &live, true);
		END_OBJ(j);
	}
	END_ARR(j);
	END_OBJ(j);
}

static void totals_obj(struct js *j, const char *k, const struct mt_totals *t,
		       bool shared)
{
	if (!t->have) {
		k_null(j, k);
		return;
	}
	OBJ(j, k);
	k_u(j, "allocs", t->allocs);
	k_u(j, "frees", t->frees);
	k_u(j, "bytes_allocated", t->bytes_allocated);
	k_u(j, "bytes_freed", t->bytes_freed);
	k_b(j, "arena_shared", shared);
	END_OBJ(j);
}

static void tpoint(struct js *j, const char *k, const struct mt_tpoint *p, uint64_t t0)
{
	OBJ(j, k);
	k_u(j, "t_ns", p->time_ns > t0 ? p->time_ns - t0 : 0);
	k_u(j, "allocated", p->allocated);
	k_u(j, "active", p->active);
	k_u(j, "resident", p->resident);
	k_u(j, "mapped", p->mapped);
	k_d(j, "live_estimate", p->live_estimate);
	END_OBJ(j);
}

static void input(struct js *j, const struct mt_view *v)
{
	const struct mt_instats *s = &v->in;
	const struct mt_agg *a = v->agg;

	OBJ(j, "input");
	k_u(j, "shards", s->shards);
	k_u(j, "bytes", s->bytes);
	k_u(j, "records", s->records);
	k_u(j, "chunks_read", s->chunks_read);
	k_u(j, "chunks_corrupt", s->chunks_corrupt);
	k_u(j, "chunks_missing", s->chunks_missing);
	k_u(j, "chunks_out_of_order", s->seq_backwards);
	k_u(j, "bytes_skipped", s->bytes_skipped);
	k_u(j, "torn_tails", s->torn_tails);
	k_u(j, "records_malformed", s->records_malformed);
	k_u(j, "records_unknown", s->records_unknown);
	k_u(j, "allocs_without_weight", s->bad_weight);
	k_u(j, "repeated_events", s->dup_seq);
	k_u(j, "dropped_records", s->dropped_records);
	k_u(j, "dropped_bytes", s->dropped_bytes);
	k_u(j, "shards_without_end", s->no_end);
	k_u(j, "unmatched_frees", v->unmatched_frees);
	/* problems, sorted so that the order of reading never shows */
	size_t n = a->nproblems;
	const struct mt_problem **p = mt_xmalloc((n + 1) * sizeof(*p));
	for (size_t i = 0; i < n; i++)
		p[i] = &a->problems[i];
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0; k--) {
			int c = strcmp(p[k]->file, p[k - 1]->file);
			if (!c)
				c = strcmp(p[k]->text, p[k - 1]->text);
			if (c >= 0)
				break;
			const struct mt_problem *t = p[k];
			p[k] = p[k - 1];
			p[k - 1] = t;
		}
	ARR(j, "problems");
	for (size_t i = 0; i < n; i++) {
		OBJ(j, NULL);
		k_s(j, "file", p[i]->file);
		k_s(j, "problem", p[i]->text);
		END_OBJ(j);
	}
	END_ARR(j);
	free(p);
	k_u(j, "problems_not_kept", a->problems_dropped);
	END_OBJ(j);
}

static void processes(struct js *j, const struct mt_view *v)
{
	const struct mt_agg *a = v->agg;

	ARR(j, "processes");
	for (size_t k = 0; k < v->nprocs; k++) {
		const struct mt_vproc *vp = &v->procs[k];
		const struct mt_proc *p = &a->procs[vp->proc];
		const struct mt_shard_header *h = &p->policy;
		OBJ(j, NULL);
		k_u(j, "pid", p->pid);
		k_u(j, "ppid", p->ppid);
		if (vp->parent >= 0)
			k_u(j, "parent", a->procs[v->procs[vp->parent].proc].pid);
		else
			k_null(j, "parent");
		k_s(j, "host", p->host);
		k_s(j, "exe", p->exe);
		ARR(j, "argv");
		for (uint32_t i = 0; i < p->argc; i++)
			u_s(j, p->argv[i]);
		END_ARR(j);
		k_s(j, "mtalloc", p->version);
		k_u(j, "start_realtime_ns", p->start_real_ns);
		k_u(j, "duration_ns", vp->duration_ns);
		if (p->end_reason)
			k_s(j, "end", p->end_reason);
		else
			k_null(j, "end");
		k_u(j, "threads", vp->nthreads);
		k_u(j, "shards", p->in.shards);
		k_u(j, "records", p->in.records);
		OBJ(j, "policy");
		k_s(j, "name", p->policy_name);
		if (h->present & MT_SHARD_H_MEAN)
			k_u(j, "mean", h->mean);
		if (h->policy == MT_SHARD_POLICY_TIERED) {
			k_u(j, "large", h->large);
			k_u(j, "medium", h->medium);
			k_d(j, "medium_rate", h->medium_rate);
			k_d(j, "small_rate", h->small_rate);
			k_u(j, "boost_threshold", h->boost_threshold);
			k_d(j, "boost_max", h->boost_max);
		}
		if (h->present & MT_SHARD_H_SEED)
			k_u(j, "seed", h->seed);
		if (h->present & MT_SHARD_H_DEPTH)
			k_u(j, "stack_depth", h->stack_depth);
		k_s(j, "unwind", p->unwind);
		END_OBJ(j);
		totals_obj(j, "exact", &vp->exact, vp->exact.shared);
		k_est(j, "sampled_allocs", &vp->alloc, false);
		k_est(j, "sampled_bytes", &vp->alloc, true);
		if (vp->have_tl) {
			OBJ(j, "timeline");
			tpoint(j, "peak", &vp->peak, vp->t0);
			tpoint(j, "final", &vp->final, vp->t0);
			k_u(j, "peak_resident", vp->peak_resident);
			k_u(j, "points", vp->tl_points);
			END_OBJ(j);
		} else {
			k_null(j, "timeline");
		}
		k_u(j, "unmatched_frees", vp->unmatched_frees);
		k_u(j, "live_sampled_objects", vp->live_records);
		k_u(j, "dropped_records", p->in.dropped_records);
		END_OBJ(j);
	}
	END_ARR(j);
}

static void body(struct js *j, const struct mt_view *v)
{
	const struct mt_agg *a = v->agg;
	const struct mt_options *o = v->opt;
	size_t lim = o->top_given ? o->top : SIZE_MAX;

	input(j, v);
	processes(j, v);

	OBJ(j, "totals");
	totals_obj(j, "exact", &v->exact, v->exact_shared);
	OBJ(j, "sampled");
	k_est(j, "allocs", &v->total_alloc, false);
	k_est(j, "bytes", &v->total_alloc, true);
	k_est(j, "frees", &v->total_freed, false);
	k_est(j, "bytes_freed", &v->total_freed, true);
	k_est(j, "live_objects", &v->total_live, false);
	k_est(j, "live_bytes", &v->total_live, true);
	k_est(j, "cross_thread_frees", &v->total_xfreed, false);
	k_est(j, "cross_thread_bytes", &v->total_xfreed, true);
	END_OBJ(j);
	k_b(j, "exact_weights", v->exact_weights);
	END_OBJ(j);

	ARR(j, "size_classes");
	for (size_t i = 0; i < v->nclasses; i++) {
		const struct mt_vclass *c = &v->classes[i];
		OBJ(j, NULL);
		k_u(j, "size", c->cls);
		k_u(j, "exact_requests", c->exact);
		k_est(j, "allocs", &c->est, false);
		k_est(j, "bytes", &c->est, true);
		ARR(j, "sites");
		for (unsigned k = 0; k < c->nsites; k++) {
			OBJ(j, NULL);
			site_id(j, "site", v->sites[c->sites[k]].site);
			k_d(j, "allocs", ldexp((double)c->site_n[k], -MT_FX_BITS));
			END_OBJ(j);
		}
		END_ARR(j);
		END_OBJ(j);
	}
	END_ARR(j);

	const uint32_t *ord = o->sort == MT_SORT_COUNT ? v->by_count
			      : o->sort == MT_SORT_LIVE ? v->by_live
			      : o->sort == MT_SORT_LEAKED ? v->by_leaked : v->by_bytes;
	size_t nsort = o->sort >= MT_SORT_LIVE ? v->nleaks : v->nsites;
	k_s(j, "sort", o->sort == MT_SORT_COUNT ? "count" : o->sort == MT_SORT_LIVE ? "live"
		       : o->sort == MT_SORT_LEAKED ? "leaked" : "bytes");
	ARR(j, "sites");
	for (size_t k = 0; k < nsort && k < lim; k++)
		site(j, &v->sites[ord[k]]);
	END_ARR(j);

	if (o->by_function) {
		ARR(j, "functions");
		for (size_t k = 0; k < v->ngroups && k < lim; k++) {
			const struct mt_vsite *g = &v->groups[v->group_order[k]];
			OBJ(j, NULL);
			k_s(j, "function", g->label);
			k_u(j, "sites", g->nst);
			k_est(j, "allocs", &g->alloc, false);
			k_est(j, "bytes", &g->alloc, true);
			k_est(j, "live_objects", &g->live, false);
			k_est(j, "live_bytes", &g->live, true);
			END_OBJ(j);
		}
		END_ARR(j);
	}

	ARR(j, "leaks");
	const uint32_t *lord = o->sort == MT_SORT_LEAKED ? v->by_leaked : v->by_live;
	for (size_t k = 0; k < v->nleaks && k < lim; k++) {
		const struct mt_vsite *s = &v->sites[lord[k]];
		OBJ(j, NULL);
		site_id(j, "site", s->site);
		k_s(j, "label", s->label);
		k_est(j, "objects", &s->live, false);
		k_est(j, "bytes", &s->live, true);
		END_OBJ(j);
	}
	END_ARR(j);

	ARR(j, "threads");
	for (size_t i = 0; i < v->nthreads; i++) {
		const struct mt_vthread *t = &v->threads[i];
		const struct mt_thread *th = &a->threads[t->thread];
		const struct mt_totals *x = th->totals.have ? &th->totals : &th->exit_totals;
		OBJ(j, NULL);
		thread_ref(j, t->thread);
		k_u(j, "shards", th->shards);
		totals_obj(j, "exact", x, x->shared);
		k_est(j, "allocs", &t->alloc, false);
		k_est(j, "bytes", &t->alloc, true);
		k_est(j, "frees", &t->freed_by, false);
		k_est(j, "bytes_freed", &t->freed_by, true);
		k_est(j, "own_objects_freed", &t->freed, false);
		k_est(j, "freed_by_other_threads", &t->xfreed_by_others, false);
		k_est(j, "freed_for_other_threads", &t->freed_for_others, false);
		k_est(j, "live_objects", &t->live, false);
		k_est(j, "live_bytes", &t->live, true);
		k_d(j, "peak_live_bytes", t->peak_live);
		END_OBJ(j);
	}
	END_ARR(j);

	OBJ(j, "cross_thread");
	size_t nx;
	const struct mt_xm **x = mt_view_xm(v, &nx);
	ARR(j, "matrix");
	for (size_t i = 0; i < nx; i++) {
		const struct mt_thread *f = &a->threads[x[i]->from], *t = &a->threads[x[i]->to];
		OBJ(j, NULL);
		k_u(j, "pid", a->procs[f->proc].pid);
		k_u(j, "from_tid", f->tid);
		k_s(j, "from_name", f->name);
		k_u(j, "to_tid", t->tid);
		k_s(j, "to_name", t->name);
		k_est(j, "objects", &x[i]->est, false);
		k_est(j, "bytes", &x[i]->est, true);
		END_OBJ(j);
	}
	END_ARR(j);
	free(x);
	ARR(j, "sites");
	for (size_t k = 0; k < v->nxsites && k < lim; k++) {
		const struct mt_vsite *s = &v->sites[v->by_xfree[k]];
		OBJ(j, NULL);
		site_id(j, "site", s->site);
		k_s(j, "label", s->label);
		k_est(j, "objects", &s->xfreed, false);
		k_est(j, "bytes", &s->xfreed, true);
		END_OBJ(j);
	}
	END_ARR(j);
	END_OBJ(j);

	OBJ(j, "lifetimes");
	ARR(j, "histogram");
	for (unsigned i = 0; i < MT_LIFE_BUCKETS; i++) {
		OBJ(j, NULL);
		if (mt_life_bound(i) == UINT64_MAX)
			k_null(j, "below_ns");
		else
			k_u(j, "below_ns", mt_life_bound(i));
		k_d(j, "objects", ldexp((double)v->life[i], -MT_FX_BITS));
		END_OBJ(j);
	}
	END_ARR(j);
	ARR(j, "short_lived_large");
	for (size_t k = 0; k < v->nsites; k++) {
		const struct mt_vsite *s = &v->sites[v->by_bytes[k]];
		double n = mt_est_count(&s->alloc);
		int med = mt_life_median(s->life);
		if (n <= 0 || med < 0 || med > 3 || mt_est_bytes(&s->alloc) / n < 65536)
			continue;
		OBJ(j, NULL);
		site_id(j, "site", s->site);
		k_s(j, "label", s->label);
		k_d(j, "avg_size", mt_est_bytes(&s->alloc) / n);
		k_s(j, "median_lifetime", mt_life_label(med));
		END_OBJ(j);
	}
	END_ARR(j);
	END_OBJ(j);

	ARR(j, "findings");
	for (size_t i = 0; i < v->nfindings; i++) {
		OBJ(j, NULL);
		k_s(j, "kind", v->findings[i].kind);
		k_s(j, "text", v->findings[i].text);
		key(j, "evidence");
		fputs(v->findings[i].evidence, j->f);
		END_OBJ(j);
	}
	END_ARR(j);

	ARR(j, "timeline");
	for (size_t k = 0; k < v->nprocs; k++) {
		const struct mt_vproc *vp = &v->procs[k];
		const struct mt_proc *p = &a->procs[vp->proc];
		OBJ(j, NULL);
		k_u(j, "pid", p->pid);
		k_s(j, "host", p->host);
		k_u(j, "t0_mono_ns", vp->t0);
		ARR(j, "points");
		/* each slot's peak and latest point, in time order */
		for (unsigned i = 0; i < MT_TL_N; i++) {
			const struct mt_tslot *s = &p->tl.s[i];
			if (!s->used)
				continue;
			const struct mt_tpoint *a1 = &s->max, *a2 = &s->last;
			if (a2->time_ns < a1->time_ns) {
				const struct mt_tpoint *t = a1;
				a1 = a2;
				a2 = t;
			}
			tpoint(j, NULL, a1, vp->t0);
			if (memcmp(a1, a2, sizeof(*a1)))
				tpoint(j, NULL, a2, vp->t0);
		}
		END_ARR(j);
		ARR(j, "marks");
		size_t nm = p->nmarks;
		const struct mt_mark **mk = mt_xmalloc((nm + 1) * sizeof(*mk));
		for (size_t i = 0; i < nm; i++)
			mk[i] = &p->marks[i];
		for (size_t i = 1; i < nm; i++)
			for (size_t q = i; q > 0 &&
			     (mk[q]->time_ns < mk[q - 1]->time_ns ||
			      (mk[q]->time_ns == mk[q - 1]->time_ns &&
			       strcmp(mk[q]->label, mk[q - 1]->label) < 0)); q--) {
				const struct mt_mark *t = mk[q];
				mk[q] = mk[q - 1];
				mk[q - 1] = t;
			}
		for (size_t i = 0; i < nm; i++) {
			OBJ(j, NULL);
			k_u(j, "t_ns", mk[i]->time_ns > vp->t0 ? mk[i]->time_ns - vp->t0 : 0);
			k_s(j, "label", mk[i]->label);
			END_OBJ(j);
		}
		free(mk);
		END_ARR(j);
		END_OBJ(j);
	}
	END_ARR(j);
}

void mt_emit_json(FILE *f, struct mt_view *const *views, size_t n)
{
	struct js j = { .f = f };
	const struct mt_options *o = n ? views[0]->opt : NULL;

	j.first[0] = true;
	OBJ(&j, NULL);
	k_s(&j, "schema", "mtreport-1");
	k_s(&j, "mtreport", PACKAGE_VERSION);
	if (o) {
		OBJ(&j, "options");
		if (o->top_given)
			k_u(&j, "top", o->top);
		else
			k_null(&j, "top");
		k_s(&j, "sort", o->sort == MT_SORT_COUNT ? "count" : o->sort == MT_SORT_LIVE
				? "live" : o->sort == MT_SORT_LEAKED ? "leaked" : "bytes");
		ARR(&j, "pids");
		for (size_t i = 0; i < o->npids; i++) {
			sep(&j);
			fprintf(f, "%" PRIu64, o->pids[i]);
		}
		END_ARR(&j);
		ARR(&j, "threads");
		for (size_t i = 0; i < o->nthreads; i++)
			u_s(&j, o->threads[i]);
		END_ARR(&j);
		k_b(&j, "symbols", o->symbols);
		k_b(&j, "by_function", o->by_function);
		k_b(&j, "process_per_section", o->per_process);
		END_OBJ(&j);
	}
	if (n == 1 && views[0]->only_proc < 0) {
		j.v = views[0];
		body(&j, views[0]);
	} else {
		ARR(&j, "per_process");
		for (size_t i = 0; i < n; i++) {
			j.v = views[i];
			OBJ(&j, NULL);
			body(&j, views[i]);
			END_OBJ(&j);
		}
		END_ARR(&j);
	}
	END_OBJ(&j);
	fputc('\n', f);
}
