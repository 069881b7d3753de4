/* emit_text: the readable summary (the default output).  Prints a view; it
 * computes nothing the JSON output could not show. */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report/report.h"

#define MAX_FRAMES 10 /* stack frames printed per site */

struct out {
	FILE *f;
	const struct mt_view *v;
	bool few_used;  /* an estimate was marked: print the legend */
};

/* "4,006", "4,006 ±120", with " *" for one or two samples. */
static const char *est_n(struct out *o, const struct mt_est *e, char *buf, size_t len)
{
	char a[32], b[32];
	double ci = mt_est_count_ci(e);

	mt_fmt_count(a, sizeof(a), mt_est_count(e));
	if (e->vn && ci >= 0.5) {
		mt_fmt_count(b, sizeof(b), ci);
		snprintf(buf, len, "%s ±%s%s", a, b, mt_few(e) ? " *" : "");
	} else {
		snprintf(buf, len, "%s%s", a, mt_few(e) ? " *" : "");
	}
	if (mt_few(e))
		o->few_used = true;
	return buf;
}

static const char *est_b(struct out *o, const struct mt_est *e, char *buf, size_t len)
{
	char a[32], b[32];

	mt_fmt_bytes(a, sizeof(a), mt_est_bytes(e));
	if (e->vb && mt_est_bytes_ci(e) >= 0.5) {
		mt_fmt_bytes(b, sizeof(b), mt_est_bytes_ci(e));
		snprintf(buf, len, "%s ±%s%s", a, b, mt_few(e) ? " *" : "");
	} else {
		snprintf(buf, len, "%s%s", a, mt_few(e) ? " *" : "");
	}
	if (mt_few(e))
		o->few_used = true;
	return buf;
}

static const char *cnt(double n, char *buf, size_t len)
{
	mt_fmt_count(buf, len, n);
	return buf;
}

static const char *byt(double n, char *buf, size_t len)
{
	mt_fmt_bytes(buf, len, n);
	return buf;
}

static void heading(struct out *o, int n, const char *title)
{
	fprintf(o->f, "\n== %d. %s ==\n", n, title);
}

static unsigned top(const struct out *o)
{
	return o->v->opt->top;
}

static void print_frames(struct out *o, const struct mt_site *s, const char *indent)
{
	const struct mt_agg *a = o->v->agg;
	uint32_t trim = mt_site_trim(a, s);

	if (!s->depth) {
		fprintf(o->f, "%s[stack unknown: its record was lost]\n", indent);
		return;
	}
	for (uint32_t i = 0; i < s->depth && i < MAX_FRAMES; i++) {
		const struct mt_frame *f = &s->frames[i];
		struct mt_symframe sf[16];
		int n = mt_symbols_lookup(o->v->sym, f, sf, 16);
		const char *mark = i < trim ? "~ " : "  ";
		char buf[512];
		if (n <= 0) {
			mt_view_frame(o->v, f, buf, sizeof(buf));
			fprintf(o->f, "%s%s%s\n", indent, mark, buf);
			continue;
		}
		for (int k = 0; k < n; k++) {
			const char *fn = sf[k].function ? sf[k].function : "??";
			if (sf[k].file)
				fprintf(o->f, "%s%s%s%s (%s:%u)  [%s+0x%" PRIx64 "]\n", indent,
					mark, sf[k].inlined ? "(inlined) " : "", fn,
					sf[k].file, sf[k].line,
					mt_module_name(a, f->module), f->offset);
			else
				fprintf(o->f, "%s%s%s%s  [%s+0x%" PRIx64 "]\n", indent, mark,
					sf[k].inlined ? "(inlined) " : "", fn,
					mt_module_name(a, f->module), f->offset);
		}
	}
	if (s->depth > MAX_FRAMES)
		fprintf(o->f, "%s  ... %u more frames\n", indent, s->depth - MAX_FRAMES);
}

static void utc(uint64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;

	if (!ns || !gmtime_r(&t, &tm)) {
		snprintf(buf, len, "unknown");
		return;
	}
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* ---- 1. Run ------------------------------------------------------------------- */

static void policy_text(const struct mt_proc *p, char *buf, size_t len)
{
	const struct mt_shard_header *h = &p->policy;
	char m[32];

	switch (h->policy) {
	case MT_SHARD_POLICY_POISSON:
		mt_fmt_bytes(m, sizeof(m), (double)h->mean);
		snprintf(buf, len, "poisson, mean interval %s (estimates are sampled)", m);
		break;
	case MT_SHARD_POLICY_TIERED:
		snprintf(buf, len,
			 "tiered: >= %" PRIu64 " B always, >= %" PRIu64 " B at %g, "
			 "smaller at %g, boost after %" PRIu64 " up to %gx",
			 h->large, h->medium, h->medium_rate, h->small_rate,
			 h->boost_threshold, h->boost_max);
		break;
	case MT_SHARD_POLICY_ALL:
		snprintf(buf, len, "all (every allocation recorded: the figures are exact)");
		break;
	case MT_SHARD_POLICY_OFF:
		snprintf(buf, len, "off (exact totals only)");
		break;
	default:
		snprintf(buf, len, "%s", p->policy_name[0] ? p->policy_name : "unknown");
	}
}

static void run_section(struct out *o)
{
	const struct mt_view *v = o->v;
	const struct mt_agg *a = v->agg;
	char b1[96], b2[96], b3[96], b4[96];

	heading(o, 1, "Run");
	if (!v->nprocs)
		fprintf(o->f, "no process selected\n");
	for (size_t k = 0; k < v->nprocs; k++) {
		const struct mt_vproc *vp = &v->procs[k];
		const struct mt_proc *p = &a->procs[vp->proc];
		char ind[64];
		unsigned d = vp->depth < 8 ? vp->depth : 8;
		memset(ind, ' ', 4 * d);
		ind[4 * d] = '\0';
		fprintf(o->f, "%s%sprocess %" PRIu64 " on %s: %s\n", ind,
			vp->depth ? "(forked) " : "", p->pid,
			p->host[0] ? p->host : "?", p->exe[0] ? p->exe : "?");
		fprintf(o->f, "%s  command:", ind);
		for (uint32_t i = 0; i < p->argc && i < 16; i++)
			fprintf(o->f, " %s", p->argv[i]);
		if (p->argc > 16)
			fprintf(o->f, " ... (%u arguments)", p->argc);
		fprintf(o->f, "\n");
		utc(p->start_real_ns, b1, sizeof(b1));
		mt_fmt_ns(b2, sizeof(b2), (double)vp->duration_ns);
		fprintf(o->f, "%s  started %s, traced for %s, %s\n", ind, b1, b2,
			p->end_reason ? p->end_reason : "no end record (killed, or still running)");
		fprintf(o->f, "%s  parent %" PRIu64 "%s; threads %" PRIu64 "; mtalloc %s\n",
			ind, p->ppid, vp->parent >= 0 ? " (in this report)" : "",
			vp->nthreads, p->version[0] ? p->version : "?");
		{
			char pol[256];
			policy_text(p, pol, sizeof(pol));
			fprintf(o->f, "%s  sampling: %s", ind, pol);
			if (p->policy.present & MT_SHARD_H_SEED)
				fprintf(o->f, "; seed %" PRIu64, p->policy.seed);
			if (p->policy.present & MT_SHARD_H_DEPTH)
				fprintf(o->f, "; stack depth %" PRIu64, p->policy.stack_depth);
			if (p->unwind[0])
				fprintf(o->f, "; unwind %s", p->unwind);
			fprintf(o->f, "\n");
		}
		const struct mt_instats *s = &p->in;
		fprintf(o->f, "%s  read %s records from %s shards (%s); chunks: %s read, "
			"%" PRIu64 " corrupt, %" PRIu64 " missing; %" PRIu64 " torn tails\n",
			ind, cnt((double)s->records, b1, sizeof(b1)),
			cnt((double)s->shards, b2, sizeof(b2)),
			byt((double)s->bytes, b3, sizeof(b3)),
			cnt((double)s->chunks_read, b4, sizeof(b4)), s->chunks_corrupt,
			s->chunks_missing, s->torn_tails);
		if (s->records_malformed || s->records_unknown || s->bytes_skipped)
			fprintf(o->f, "%s  skipped: %" PRIu64 " bytes of damaged chunks, %" PRIu64
				" malformed records, %" PRIu64 " of unknown kinds\n",
				ind, s->bytes_skipped, s->records_malformed, s->records_unknown);
		if (s->dropped_records)
			fprintf(o->f, "%s  the program dropped %" PRIu64 " records (%" PRIu64
				" bytes): sampled figures undercount\n",
				ind, s->dropped_records, s->dropped_bytes);
		if (s->no_end)
			fprintf(o->f, "%s  %" PRIu64 " shards have no end record\n", ind, s->no_end);
		if (vp->unmatched_frees)
			fprintf(o->f, "%s  %" PRIu64 " sampled frees name an allocation not in "
				"the input%s\n", ind, vp->unmatched_frees,
				vp->depth ? " (objects inherited from the parent, or lost chunks)"
					  : " (lost chunks, or shards not given)");
		if (s->bad_weight || s->dup_seq)
			fprintf(o->f, "%s  %" PRIu64 " allocations without a usable weight, "
				"%" PRIu64 " repeated event numbers: ignored\n",
				ind, s->bad_weight, s->dup_seq);
	}
	if (a->nproblems) {
		fprintf(o->f, "input problems (%zu%s):\n", a->nproblems,
			a->problems_dropped ? ", more not kept" : "");
		for (size_t i = 0; i < a->nproblems && i < 20; i++)
			fprintf(o->f, "  %s: %s\n", a->problems[i].file, a->problems[i].text);
		if (a->nproblems > 20)
			fprintf(o->f, "  ... %zu more (see the JSON output)\n",
				a->nproblems - 20);
	}
}

/* ---- 2. Totals ----------------------------------------------------------------------- */

static void totals_section(struct out *o)
{
	const struct mt_view *v = o->v;
	char a1[96], a2[96], b1[96];
	struct mt_est fb = { 0 };

	heading(o, 2, "Totals");
	fprintf(o->f, "%-18s %22s   %s\n", "", "exact", "sampled estimate (95% interval)");
	if (v->exact.have) {
		fprintf(o->f, "%-18s %22s   %s\n", "allocations",
			cnt((double)v->exact.allocs, a1, sizeof(a1)),
			est_n(o, &v->total_alloc, a2, sizeof(a2)));
		fprintf(o->f, "%-18s %22s   %s\n", "frees",
			cnt((double)v->exact.frees, a1, sizeof(a1)),
			est_n(o, &v->total_freed, a2, sizeof(a2)));
		fprintf(o->f, "%-18s %22s   %s\n", "bytes allocated",
			byt((double)v->exact.bytes_allocated, a1, sizeof(a1)),
			est_b(o, &v->total_alloc, a2, sizeof(a2)));
		fprintf(o->f, "%-18s %22s   %s\n", "bytes freed",
			byt((double)v->exact.bytes_freed, a1, sizeof(a1)),
			est_b(o, &v->total_freed, a2, sizeof(a2)));
		fprintf(o->f, "%-18s %22s   %s objects, %s\n", "live at the end",
			byt((double)(v->exact.bytes_allocated > v->exact.bytes_freed
					     ? v->exact.bytes_allocated - v->exact.bytes_freed
					     : 0),
			    a1, sizeof(a1)),
			est_n(o, &v->total_live, a2, sizeof(a2)),
			est_b(o, &v->total_live, b1, sizeof(b1)));
		fprintf(o->f, "(exact: %" PRIu64 " threads' counters; bytes are usable sizes%s)\n",
			v->exact_threads,
			v->exact_shared ? "; some threads shared an arena, so their "
					  "allocation counts are the arena's and overlap"
					: "");
	} else {
		fprintf(o->f, "%-18s %22s   %s\n", "allocations", "-",
			est_n(o, &v->total_alloc, a2, sizeof(a2)));
		fprintf(o->f, "%-18s %22s   %s\n", "bytes allocated", "-",
			est_b(o, &v->total_alloc, a2, sizeof(a2)));
	}
	(void)fb;
	fprintf(o->f, "%-18s %22s   %s objects, %s\n", "cross-thread frees", "",
		est_n(o, &v->total_xfreed, a1, sizeof(a1)),
		est_b(o, &v->total_xfreed, a2, sizeof(a2)));
	for (size_t k = 0; k < v->nprocs; k++) {
		const struct mt_vproc *p = &v->procs[k];
		char t1[32], t2[32], r[32];
		if (!p->have_tl)
			continue;
		mt_fmt_ns(t1, sizeof(t1), (double)(p->peak.time_ns - p->t0));
		mt_fmt_ns(t2, sizeof(t2), (double)(p->final.time_ns - p->t0));
		mt_fmt_bytes(r, sizeof(r), (double)p->peak_resident);
		fprintf(o->f, "process %" PRIu64 " (timeline): peak %s allocated at +%s; "
			"final %s at +%s; peak resident %s\n",
			v->agg->procs[p->proc].pid,
			byt((double)p->peak.allocated, a1, sizeof(a1)), t1,
			byt((double)p->final.allocated, a2, sizeof(a2)), t2, r);
	}

	fprintf(o->f, "\nsize classes: exact requests beside the sampled estimate, "
		"with the sites that fill them\n");
	fprintf(o->f, "%10s %14s %22s   %s\n", "class", "exact", "sampled", "top sites (share of the class)");
	unsigned shown = 0;
	for (size_t i = 0; i < v->nclasses; i++) {
		const struct mt_vclass *c = &v->classes[i];
		if (!c->est.samples && !c->exact)
			continue;
		if (shown++ >= 4 * top(o))
			break;
		fprintf(o->f, "%10" PRIu64 " %14s %22s  ", c->cls,
			c->exact ? cnt((double)c->exact, a1, sizeof(a1)) : "-",
			c->est.samples ? est_n(o, &c->est, a2, sizeof(a2)) : "-");
		for (unsigned k = 0; k < c->nsites; k++)
			fprintf(o->f, " %s (%.0f%%)", v->sites[c->sites[k]].label,
				c->est.n ? 100.0 * (double)c->site_n[k] / (double)c->est.n : 0);
		fprintf(o->f, "\n");
	}
	if (shown > 4 * top(o))
		fprintf(o->f, "%10s (more classes in the JSON output)\n", "...");
}

/* ---- 3. and 4. sites -------------------------------------------------------------------- */

static void site_block(struct out *o, unsigned rank, const struct mt_vsite *s,
		       bool leak)
{
	const struct mt_view *v = o->v;
	const struct mt_agg *a = v->agg;
	char b1[96], b2[96], b3[96], b4[96], b5[96], b6[96];

	if (leak)
		fprintf(o->f, "%3u. %s objects, %s live  [%" PRIu64 " samples]\n",
			rank, est_n(o, &s->live, b1, sizeof(b1)),
			est_b(o, &s->live, b2, sizeof(b2)), s->live.samples);
	else
		fprintf(o->f, "%3u. %s in %s allocations  [%" PRIu64 " samples]\n"
			"     freed %s (%s by another thread); live %s, %s\n",
			rank, est_b(o, &s->alloc, b1, sizeof(b1)),
			est_n(o, &s->alloc, b2, sizeof(b2)), s->alloc.samples,
			cnt(mt_est_count(&s->freed), b3, sizeof(b3)),
			cnt(mt_est_count(&s->xfreed), b4, sizeof(b4)),
			cnt(mt_est_count(&s->live), b5, sizeof(b5)),
			byt(mt_est_bytes(&s->live), b6, sizeof(b6)));
	if (s->size_min == s->size_max)
		fprintf(o->f, "     size %" PRIu64 " B", s->size_min);
	else
		fprintf(o->f, "     sizes %" PRIu64 "..%" PRIu64 " B", s->size_min, s->size_max);
	int med = mt_life_median(s->life);
	if (med >= 0 && s->freed.n) {
		double mean = mt_u128_double(s->life_w) / mt_est_count(&s->freed);
		mt_fmt_ns(b1, sizeof(b1), mean);
		fprintf(o->f, "; lifetime: median %s, mean %s", mt_life_label(med), b1);
	}
	fprintf(o->f, "; site %016" PRIx64 "\n", a->sites[s->site].hash);
	print_frames(o, &a->sites[s->site], "       ");
	if (s->nst > 1 && !leak) {
		/* the threads that allocate here */
		fprintf(o->f, "     by thread:");
		unsigned shown = 0;
		for (uint32_t k = 0; k < s->nst && shown < 8; k++, shown++) {
			const struct mt_st *c = &a->st[v->st[s->first_st + k]];
			const struct mt_thread *t = &a->threads[c->thread];
			fprintf(o->f, " %" PRIu64 "%s%s%s %s;", t->tid, t->name[0] ? "(" : "",
				t->name, t->name[0] ? ")" : "",
				cnt(mt_est_count(&c->alloc), b1, sizeof(b1)));
		}
		if (s->nst > 8)
			fprintf(o->f, " ... %u threads", s->nst);
		fprintf(o->f, "\n");
	}
}

static void sites_section(struct out *o)
{
	const struct mt_view *v = o->v;
	const struct mt_options *opt = v->opt;
	char t[128];

	heading(o, 3, "Top allocation sites");
	fprintf(o->f, "(estimates with 95%% intervals; ~ marks allocation wrapper frames "
		"(libc, libstdc++), the site being the first frame after them)\n");
	struct {
		const char *name;
		const uint32_t *ord;
		enum mt_sort s;
	} lists[] = {
		{ "by bytes", v->by_bytes, MT_SORT_BYTES },
		{ "by count", v->by_count, MT_SORT_COUNT },
		{ "by live bytes", v->by_live, MT_SORT_LIVE },
		{ "by leaked objects", v->by_leaked, MT_SORT_LEAKED },
	};
	for (size_t l = 0; l < 4; l++) {
		if (opt->sort_given ? lists[l].s != opt->sort : l >= 2)
			continue;
		size_t n = lists[l].s >= MT_SORT_LIVE ? v->nleaks : v->nsites;
		snprintf(t, sizeof(t), "%s", lists[l].name);
		fprintf(o->f, "\n-- %s --\n", t);
		if (!n)
			fprintf(o->f, "no sampled allocation\n");
		for (size_t k = 0; k < n && k < top(o); k++)
			site_block(o, (unsigned)k + 1, &v->sites[lists[l].ord[k]], false);
	}
	if (opt->by_function) {
		char b1[96], b2[96];
		fprintf(o->f, "\n-- grouped by function (first frame after the wrappers) --\n");
		for (size_t k = 0; k < v->ngroups && k < top(o); k++) {
			const struct mt_vsite *g = &v->groups[v->group_order[k]];
			fprintf(o->f, "%3zu. %-40s %s in %s allocations, %u sites\n", k + 1,
				g->label, est_b(o, &g->alloc, b1, sizeof(b1)),
				est_n(o, &g->alloc, b2, sizeof(b2)), g->nst);
		}
	}
}

static void leaks_section(struct out *o)
{
	const struct mt_view *v = o->v;
	const uint32_t *ord = v->opt->sort == MT_SORT_LEAKED ? v->by_leaked : v->by_live;
	char b1[96], b2[96];

	heading(o, 4, "Leaks: sampled objects never freed");
	if (!v->nleaks) {
		fprintf(o->f, "none: every sampled object was freed\n");
		return;
	}
	fprintf(o->f, "%s objects, %s, at %zu sites (live when their thread or "
		"process ended)\n", est_n(o, &v->total_live, b1, sizeof(b1)),
		est_b(o, &v->total_live, b2, sizeof(b2)), v->nleaks);
	for (size_t k = 0; k < v->nleaks && k < top(o); k++)
		site_block(o, (unsigned)k + 1, &v->sites[ord[k]], true);
}

/* ---- 5. sizes ------------------------------------------------------------------------- */

static void bar(FILE *f, double x, double max, int width)
{
	int n = max > 0 ? (int)lround(width * x / max) : 0;
	for (int i = 0; i < n; i++)
		fputc('#', f);
}

static bool hot_exact; /* rank by exact requests (else by the estimate) */

static int cmp_hot(const void *x, const void *y)
{
	const struct mt_vclass *a = *(const struct mt_vclass *const *)x;
	const struct mt_vclass *b = *(const struct mt_vclass *const *)y;
	uint64_t ka = hot_exact ? a->exact : a->est.n;
	uint64_t kb = hot_exact ? b->exact : b->est.n;
	if (ka != kb)
		return ka > kb ? -1 : 1;
	return a->cls < b->cls ? -1 : a->cls > b->cls;
}

static void sizes_section(struct out *o)
{
	const struct mt_view *v = o->v;
	char b1[96], b2[96];
	double max = 0, all = 0;
	bool exact = false;

	heading(o, 5, "Size distribution");
	for (size_t i = 0; i < v->nclasses; i++)
		exact |= v->classes[i].exact != 0;
	for (size_t i = 0; i < v->nclasses; i++) {
		double x = exact ? (double)v->classes[i].exact : mt_est_count(&v->classes[i].est);
		all += x;
		if (x > max)
			max = x;
	}
	if (!v->nclasses) {
		fprintf(o->f, "no size class data\n");
		return;
	}
	fprintf(o->f, "requests per size class (%s), and the sampled bytes\n",
		exact ? "exact" : "sampled estimate");
	for (size_t i = 0; i < v->nclasses; i++) {
		const struct mt_vclass *c = &v->classes[i];
		double x = exact ? (double)c->exact : mt_est_count(&c->est);
		fprintf(o->f, "%10" PRIu64 " %14s %5.1f%% %12s |", c->cls,
			cnt(x, b1, sizeof(b1)), all > 0 ? 100 * x / all : 0,
			byt(mt_est_bytes(&c->est), b2, sizeof(b2)));
		bar(o->f, x, max, 30);
		fprintf(o->f, "\n");
	}
	const struct mt_vclass **hot = mt_xmalloc((v->nclasses + 1) * sizeof(*hot));
	for (size_t i = 0; i < v->nclasses; i++)
		hot[i] = &v->classes[i];
	hot_exact = exact;
	mt_sort(hot, v->nclasses, sizeof(*hot), cmp_hot);
	fprintf(o->f, "\nhot size classes (most requested):\n");
	for (size_t i = 0; i < v->nclasses && i < 5; i++) {
		const struct mt_vclass *c = hot[i];
		double x = exact ? (double)c->exact : mt_est_count(&c->est);
		fprintf(o->f, "  %" PRIu64 " B: %.1f%% of requests", c->cls,
			all > 0 ? 100 * x / all : 0);
		if (c->nsites)
			fprintf(o->f, ", mostly from %s", v->sites[c->sites[0]].label);
		fprintf(o->f, "\n");
	}
	free(hot);
}

/* ---- 6. threads --------------------------------------------------------------------------- */

static void threads_section(struct out *o)
{
	const struct mt_view *v = o->v;
	const struct mt_agg *a = v->agg;
	char b[8][64];

	heading(o, 6, "Threads");
	if (!v->nthreads) {
		fprintf(o->f, "no thread selected\n");
		return;
	}
	fprintf(o->f, "%8s %8s %-16s %12s %12s %10s | %14s %10s %12s %12s %10s\n",
		"pid", "tid", "name", "allocs", "frees", "bytes", "sampled allocs",
		"bytes", "freed by oth", "freed for oth", "peak live");
	for (size_t i = 0; i < v->nthreads; i++) {
		const struct mt_vthread *t = &v->threads[i];
		const struct mt_thread *th = &a->threads[t->thread];
		const struct mt_totals *x = th->totals.have ? &th->totals
				   : th->exit_totals.have ? &th->exit_totals : NULL;
		fprintf(o->f, "%8" PRIu64 " %8" PRIu64 " %-16.16s %12s %12s %10s | %14s %10s %12s %12s %10s\n",
			a->procs[th->proc].pid, th->tid, th->name[0] ? th->name : "-",
			x ? cnt((double)x->allocs, b[0], 64) : "-",
			x ? cnt((double)x->frees, b[1], 64) : "-",
			x ? byt((double)x->bytes_allocated, b[2], 64) : "-",
			cnt(mt_est_count(&t->alloc), b[3], 64),
			byt(mt_est_bytes(&t->alloc), b[4], 64),
			cnt(mt_est_count(&t->xfreed_by_others), b[5], 64),
			cnt(mt_est_count(&t->freed_for_others), b[6], 64),
			byt(t->peak_live, b[7], 64));
	}
	fprintf(o->f, "(allocs, frees, bytes: exact; the rest sampled estimates. "
		"freed by oth: its objects freed by other threads; freed for oth: "
		"other threads' objects it freed)\n");
}

/* ---- 7. cross-thread frees -------------------------------------------------------------------- */

static int cmp_xm(const void *x, const void *y)
{
	const struct mt_xm *a = *(const struct mt_xm *const *)x;
	const struct mt_xm *b = *(const struct mt_xm *const *)y;
	if (a->est.n != b->est.n)
		return a->est.n > b->est.n ? -1 : 1;
	if (a->est.b != b->est.b)
		return a->est.b > b->est.b ? -1 : 1;
	return 0;
}

static int cmp_xm_full(const void *x, const void *y, const struct mt_agg *g)
{
	int c = cmp_xm(x, y);
	if (c)
		return c;
	const struct mt_xm *a = *(const struct mt_xm *const *)x;
	const struct mt_xm *b = *(const struct mt_xm *const *)y;
	const struct mt_thread *af = &g->threads[a->from], *bf = &g->threads[b->from];
	const struct mt_thread *at = &g->threads[a->to], *bt = &g->threads[b->to];
	if (g->procs[af->proc].pid != g->procs[bf->proc].pid)
		return g->procs[af->proc].pid < g->procs[bf->proc].pid ? -1 : 1;
	if (af->tid != bf->tid)
		return af->tid < bf->tid ? -1 : 1;
	return at->tid < bt->tid ? -1 : at->tid > bt->tid;
}

static const struct mt_agg *xm_agg;
static int cmp_xm_q(const void *x, const void *y)
{
	return cmp_xm_full(x, y, xm_agg);
}

/* The matrix cells (from != to) of the selection, most objects first. */
const struct mt_xm **mt_view_xm(const struct mt_view *v, size_t *n)
{
	const struct mt_agg *a = v->agg;
	const struct mt_xm **x = mt_xmalloc((a->nxm + 1) * sizeof(*x));

	*n = 0;
	for (size_t i = 0; i < a->nxm; i++)
		if (a->xm[i].from != a->xm[i].to && v->thread_on[a->xm[i].from] &&
		    v->thread_on[a->xm[i].to] && a->xm[i].est.samples)
			x[(*n)++] = &a->xm[i];
	xm_agg = a;
	mt_sort(x, *n, sizeof(*x), cmp_xm_q);
	return x;
}

static void xthread_section(struct out *o)
{
	const struct mt_view *v = o->v;
	const struct mt_agg *a = v->agg;
	char b1[96], b2[96], b3[96];
	size_t n;
	const struct mt_xm **x = mt_view_xm(v, &n);

	heading(o, 7, "Cross-thread frees");
	if (!n) {
		fprintf(o->f, "none: every sampled object was freed by the thread that "
			"allocated it (or not at all)\n");
		free(x);
		return;
	}
	fprintf(o->f, "allocating thread -> freeing thread: objects (95%%), bytes\n");
	for (size_t i = 0; i < n && i < 4 * top(o); i++) {
		const struct mt_thread *f = &a->threads[x[i]->from], *t = &a->threads[x[i]->to];
		fprintf(o->f, "  %" PRIu64 ":%" PRIu64 " %-14s -> %" PRIu64 " %-14s %s, %s\n",
			a->procs[f->proc].pid, f->tid, f->name[0] ? f->name : "-", t->tid,
			t->name[0] ? t->name : "-", est_n(o, &x[i]->est, b1, sizeof(b1)),
			est_b(o, &x[i]->est, b2, sizeof(b2)));
	}
	if (n > 4 * top(o))
		fprintf(o->f, "  ... %zu more pairs\n", n - 4 * top(o));
	free(x);
	fprintf(o->f, "\nsites whose objects migrate between threads:\n");
	for (size_t k = 0; k < v->nxsites && k < top(o); k++) {
		const struct mt_vsite *s = &v->sites[v->by_xfree[k]];
		fprintf(o->f, "%3zu. %s objects (%s) freed by another thread, of %s: %s\n",
			k + 1, est_n(o, &s->xfreed, b1, sizeof(b1)),
			est_b(o, &s->xfreed, b2, sizeof(b2)),
			cnt(mt_est_count(&s->alloc), b3, sizeof(b3)), s->label);
	}
}

/* ---- 8. lifetimes ----------------------------------------------------------------------------- */

static void lifetimes_section(struct out *o)
{
	const struct mt_view *v = o->v;
	double total = 0, max = 0;
	char b1[96], b2[96];

	heading(o, 8, "Lifetimes of sampled objects");
	for (unsigned i = 0; i < MT_LIFE_BUCKETS; i++) {
		double x = ldexp((double)v->life[i], -MT_FX_BITS);
		total += x;
		if (x > max)
			max = x;
	}
	if (total <= 0) {
		fprintf(o->f, "no sampled object was freed\n");
		return;
	}
	for (unsigned i = 0; i < MT_LIFE_BUCKETS; i++) {
		double x = ldexp((double)v->life[i], -MT_FX_BITS);
		fprintf(o->f, "%10s %14s %5.1f%% |", mt_life_label((int)i),
			cnt(x, b1, sizeof(b1)), 100 * x / total);
		bar(o->f, x, max, 40);
		fprintf(o->f, "\n");
	}
	unsigned shown = 0;
	for (size_t k = 0; k < v->nsites; k++) {
		const struct mt_vsite *s = &v->sites[v->by_bytes[k]];
		double n = mt_est_count(&s->alloc);
		int med = mt_life_median(s->life);
		if (n <= 0 || med < 0 || med > 3 || mt_est_bytes(&s->alloc) / n < 65536)
			continue;
		if (!shown++)
			fprintf(o->f, "\nshort-lived large allocations (64 KiB or more on "
				"average, median lifetime under 1 ms):\n");
		fprintf(o->f, "  %s: %s allocations of %s on average, median %s\n",
			s->label, cnt(n, b1, sizeof(b1)),
			byt(mt_est_bytes(&s->alloc) / n, b2, sizeof(b2)),
			mt_life_label(med));
		if (shown >= top(o))
			break;
	}
}

/* ---- 9. findings ------------------------------------------------------------------------------- */

static void findings_section(struct out *o)
{
	const struct mt_view *v = o->v;

	heading(o, 9, "Bottlenecks");
	if (!v->nfindings)
		fprintf(o->f, "nothing stands out\n");
	for (size_t i = 0; i < v->nfindings; i++)
		fprintf(o->f, "%2zu. [%s] %s\n    evidence: %s\n", i + 1,
			v->findings[i].kind, v->findings[i].text, v->findings[i].evidence);
}

/* ---- 10. timeline ---------------------------------------------------------------------------------- */

#define TL_ROWS 16

static void timeline_section(struct out *o)
{
	const struct mt_view *v = o->v;
	const struct mt_agg *a = v->agg;
	char b[6][64];
	bool any = false;

	heading(o, 10, "Timeline");
	for (size_t k = 0; k < v->nprocs; k++) {
		const struct mt_vproc *vp = &v->procs[k];
		const struct mt_proc *p = &a->procs[vp->proc];
		if (!vp->have_tl && !p->nmarks)
			continue;
		any = true;
		fprintf(o->f, "process %" PRIu64 ": %" PRIu64 " points\n", p->pid, p->tl.npoints);
		fprintf(o->f, "%12s %12s %12s %12s %12s %14s  %s\n", "time", "allocated",
			"active", "resident", "mapped", "sampled live", "mark");
		/* rows: TL_ROWS slices of the traced time, each its peak point;
		 * marks in time order between them */
		uint64_t t0 = vp->t0, t1 = p->tl.tmax > t0 ? p->tl.tmax : t0;
		struct mt_tpoint row[TL_ROWS];
		bool used[TL_ROWS];
		memset(used, 0, sizeof(used));
		for (unsigned i = 0; i < MT_TL_N; i++) {
			const struct mt_tslot *s = &p->tl.s[i];
			if (!s->used)
				continue;
			const struct mt_tpoint *pts[2] = { &s->max, &s->last };
			for (int q = 0; q < 2; q++) {
				uint64_t t = pts[q]->time_ns;
				unsigned r = t1 > t0 && t > t0
						     ? (unsigned)((double)(t - t0) * TL_ROWS / (double)(t1 - t0 + 1))
						     : 0;
				if (r >= TL_ROWS)
					r = TL_ROWS - 1;
				if (!used[r] || pts[q]->allocated > row[r].allocated ||
				    (pts[q]->allocated == row[r].allocated &&
				     pts[q]->time_ns < row[r].time_ns)) {
					row[r] = *pts[q];
					used[r] = true;
				}
			}
		}
		/* the final point replaces its row's peak on the last row */
		if (vp->have_tl) {
			unsigned r = TL_ROWS - 1;
			while (r > 0 && !used[r])
				r--;
			row[r] = vp->final;
			used[r] = true;
		}
		/* marks, sorted by time then label */
		size_t nm = p->nmarks, m = 0;
		const struct mt_mark **mk = mt_xmalloc((nm + 1) * sizeof(*mk));
		for (size_t i = 0; i < nm; i++)
			mk[i] = &p->marks[i];
		for (size_t i = 1; i < nm; i++)
			for (size_t j = i; j > 0 &&
			     (mk[j]->time_ns < mk[j - 1]->time_ns ||
			      (mk[j]->time_ns == mk[j - 1]->time_ns &&
			       strcmp(mk[j]->label, mk[j - 1]->label) < 0)); j--) {
				const struct mt_mark *t = mk[j];
				mk[j] = mk[j - 1];
				mk[j - 1] = t;
			}
		for (unsigned r = 0; r < TL_ROWS; r++) {
			char labels[256] = "";
			size_t ll = 0;
			if (!used[r])
				continue;
			while (m < nm && mk[m]->time_ns <= row[r].time_ns) {
				if (row[r].time_ns - mk[m]->time_ns < 1000000) {
					/* the point the mark recorded: one row */
					ll += (size_t)snprintf(labels + ll, ll < sizeof(labels) ? sizeof(labels) - ll : 0,
							       "%s%s", ll ? "; " : "", mk[m]->label);
					if (ll >= sizeof(labels))
						ll = sizeof(labels) - 1;
					m++;
					continue;
				}
				mt_fmt_ns(b[0], 64, (double)(mk[m]->time_ns > t0 ? mk[m]->time_ns - t0 : 0));
				fprintf(o->f, "%12s %12s %12s %12s %12s %14s  %s\n", b[0], "", "",
					"", "", "", mk[m]->label);
				m++;
			}
			mt_fmt_ns(b[0], 64, (double)(row[r].time_ns > t0 ? row[r].time_ns - t0 : 0));
			fprintf(o->f, "%12s %12s %12s %12s %12s %14s%s%s\n", b[0],
				byt((double)row[r].allocated, b[1], 64),
				byt((double)row[r].active, b[2], 64),
				byt((double)row[r].resident, b[3], 64),
				byt((double)row[r].mapped, b[4], 64),
				byt(row[r].live_estimate, b[5], 64), labels[0] ? "  " : "", labels);
		}
		for (; m < nm; m++) {
			mt_fmt_ns(b[0], 64, (double)(mk[m]->time_ns > t0 ? mk[m]->time_ns - t0 : 0));
			fprintf(o->f, "%12s %12s %12s %12s %12s %14s  %s\n", b[0], "", "", "",
				"", "", mk[m]->label);
		}
		free(mk);
	}
	if (!any)
		fprintf(o->f, "no timeline points\n");
}

void mt_emit_text(FILE *f, struct mt_view *const *views, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct out o = { f, views[i], false };
		const struct mt_view *v = views[i];
		if (v->only_proc >= 0)
			fprintf(f, "%s######## process %" PRIu64 " ########\n", i ? "\n" : "",
				v->agg->procs[v->only_proc].pid);
		char ns[32];
		mt_fmt_count(ns, sizeof(ns), (double)v->total_alloc.samples);
		fprintf(f, "mtreport %s: %zu process%s, %zu thread%s, %s sampled "
			"allocations, policy %s\n",
			PACKAGE_VERSION, v->nprocs, v->nprocs == 1 ? "" : "es", v->nthreads,
			v->nthreads == 1 ? "" : "s", ns, v->policy[0] ? v->policy : "?");
		run_section(&o);
		totals_section(&o);
		sites_section(&o);
		leaks_section(&o);
		sizes_section(&o);
		threads_section(&o);
		xthread_section(&o);
		lifetimes_section(&o);
		findings_section(&o);
		timeline_section(&o);
		if (o.few_used)
			fprintf(f, "\n* the estimate rests on one or two samples: the normal "
				"approximation is poor and it may be off by a large factor.\n");
	}
}
