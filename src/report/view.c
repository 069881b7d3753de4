/* view: the report model.  From an aggregate and the options it selects
 * processes and threads, sums the (site, thread) cells of the selection
 * into sites, threads, size classes and lifetimes, orders them, and draws
 * the findings.  Every ordering ends on the site's content (its hash, then
 * its frames), never on an index, so that the output depends only on the
 * data.  The emitters print a view; they compute nothing of their own. */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

static const struct mt_view *sort_view; /* qsort has no context argument */

/* ---- frames and labels --------------------------------------------------------- */

const char *mt_module_name(const struct mt_agg *a, uint32_t m)
{
	if (m == MT_NO_MODULE)
		return "?";
	const char *p = a->modules[m].path;
	if (p[0])
		return mt_basename(p);
	return a->modules[m].ident;
}

void mt_view_frame(const struct mt_view *v, const struct mt_frame *f,
		   char *buf, size_t len)
{
	struct mt_symframe sf[16];
	int n = mt_symbols_lookup(v->sym, f, sf, 16);

	if (n > 0 && sf[n - 1].function) {
		/* the innermost source frame names the line; the outermost
		 * the function that holds the code */
		const struct mt_symframe *s = &sf[0];
		if (s->file && s->line)
			snprintf(buf, len, "%s (%s:%u)", sf[n - 1].function,
				 mt_basename(s->file), s->line);
		else
			snprintf(buf, len, "%s", sf[n - 1].function);
		return;
	}
	if (f->module == MT_NO_MODULE)
		snprintf(buf, len, "0x%" PRIx64, f->offset);
	else
		snprintf(buf, len, "%s+0x%" PRIx64, mt_module_name(v->agg, f->module),
			 f->offset);
}

uint32_t mt_site_trim(const struct mt_agg *a, const struct mt_site *s)
{
	uint32_t t = 0;

	while (t + 1 < s->depth && s->frames[t].module != MT_NO_MODULE &&
	       a->modules[s->frames[t].module].wrapper)
		t++;
	return t;
}

/* ---- sorting ----------------------------------------------------------------------- */

static int site_cmp_content(const struct mt_agg *a, uint32_t x, uint32_t y)
{
	const struct mt_site *s = &a->sites[x], *t = &a->sites[y];

	if (s->hash != t->hash)
		return s->hash < t->hash ? -1 : 1;
	if (s->depth != t->depth)
		return s->depth < t->depth ? -1 : 1;
	for (uint32_t i = 0; i < s->depth; i++) {
		const struct mt_frame *f = &s->frames[i], *g = &t->frames[i];
		if (f->offset != g->offset)
			return f->offset < g->offset ? -1 : 1;
		const char *mf = f->module == MT_NO_MODULE ? "" : a->modules[f->module].ident;
		const char *mg = g->module == MT_NO_MODULE ? "" : a->modules[g->module].ident;
		int c = strcmp(mf, mg);
		if (c)
			return c;
	}
	return 0;
}

#define DESC(x, y)                          \
	if ((x) != (y))                     \
		return (x) > (y) ? -1 : 1;

static int tie(const struct mt_vsite *a, const struct mt_vsite *b)
{
	return site_cmp_content(sort_view->agg, a->site, b->site);
}

static int cmp_bytes(const void *x, const void *y)
{
	const struct mt_vsite *a = &sort_view->sites[*(const uint32_t *)x];
	const struct mt_vsite *b = &sort_view->sites[*(const uint32_t *)y];
	DESC(a->alloc.b, b->alloc.b)
	DESC(a->alloc.n, b->alloc.n)
	return tie(a, b);
}

static int cmp_count(const void *x, const void *y)
{
	const struct mt_vsite *a = &sort_view->sites[*(const uint32_t *)x];
	const struct mt_vsite *b = &sort_view->sites[*(const uint32_t *)y];
	DESC(a->alloc.n, b->alloc.n)
	DESC(a->alloc.b, b->alloc.b)
	return tie(a, b);
}

static int cmp_live(const void *x, const void *y)
{
	const struct mt_vsite *a = &sort_view->sites[*(const uint32_t *)x];
	const struct mt_vsite *b = &sort_view->sites[*(const uint32_t *)y];
	DESC(a->live.b, b->live.b)
	DESC(a->live.n, b->live.n)
	return tie(a, b);
}

static int cmp_leaked(const void *x, const void *y)
{
	const struct mt_vsite *a = &sort_view->sites[*(const uint32_t *)x];
	const struct mt_vsite *b = &sort_view->sites[*(const uint32_t *)y];
	DESC(a->live.n, b->live.n)
	DESC(a->live.b, b->live.b)
	return tie(a, b);
}

static int cmp_xfree(const void *x, const void *y)
{
	const struct mt_vsite *a = &sort_view->sites[*(const uint32_t *)x];
	const struct mt_vsite *b = &sort_view->sites[*(const uint32_t *)y];
	DESC(a->xfreed.n, b->xfreed.n)
	DESC(a->xfreed.b, b->xfreed.b)
	return tie(a, b);
}

static int cmp_group(const void *x, const void *y)
{
	const struct mt_vsite *a = &sort_view->groups[*(const uint32_t *)x];
	const struct mt_vsite *b = &sort_view->groups[*(const uint32_t *)y];
	switch (sort_view->opt->sort) {
	case MT_SORT_COUNT: DESC(a->alloc.n, b->alloc.n) break;
	case MT_SORT_LIVE: DESC(a->live.b, b->live.b) break;
	case MT_SORT_LEAKED: DESC(a->live.n, b->live.n) break;
	default: break;
	}
	DESC(a->alloc.b, b->alloc.b)
	DESC(a->alloc.n, b->alloc.n)
	return strcmp(a->group, b->group);
}

static int cmp_label(const void *x, const void *y)
{
	const struct mt_vsite *a = &sort_view->sites[*(const uint32_t *)x];
	const struct mt_vsite *b = &sort_view->sites[*(const uint32_t *)y];
	int c = strcmp(a->group, b->group);
	return c ? c : tie(a, b);
}

static int cmp_thread(const void *x, const void *y)
{
	const struct mt_vthread *a = x, *b = y;
	const struct mt_agg *g = sort_view->agg;
	const struct mt_thread *s = &g->threads[a->thread], *t = &g->threads[b->thread];
	if (s->proc != t->proc)
		return sort_view->proc_rank[s->proc] < sort_view->proc_rank[t->proc] ? -1 : 1;
	if (s->tid != t->tid)
		return s->tid < t->tid ? -1 : 1;
	return 0;
}

/* Cells by (process, tid) of their thread. */
static int cmp_cell(const void *x, const void *y)
{
	const struct mt_agg *g = sort_view->agg;
	const struct mt_thread *s = &g->threads[g->st[*(const uint32_t *)x].thread];
	const struct mt_thread *t = &g->threads[g->st[*(const uint32_t *)y].thread];
	if (s->proc != t->proc)
		return sort_view->proc_rank[s->proc] < sort_view->proc_rank[t->proc] ? -1 : 1;
	return s->tid < t->tid ? -1 : s->tid > t->tid;
}

static int cmp_class(const void *x, const void *y)
{
	const struct mt_vclass *a = x, *b = y;
	return a->cls < b->cls ? -1 : a->cls > b->cls;
}

static int cmp_proc_key(const struct mt_agg *g, uint32_t x, uint32_t y)
{
	const struct mt_proc *a = &g->procs[x], *b = &g->procs[y];
	int c = strcmp(a->host, b->host);
	if (c)
		return c;
	if (a->start_real_ns != b->start_real_ns)
		return a->start_real_ns < b->start_real_ns ? -1 : 1;
	if (a->pid != b->pid)
		return a->pid < b->pid ? -1 : 1;
	return 0;
}

static int cmp_proc(const void *x, const void *y)
{
	return cmp_proc_key(sort_view->agg, *(const uint32_t *)x, *(const uint32_t *)y);
}

/* ---- findings ------------------------------------------------------------------------ */

static void finding(struct mt_view *v, const char *kind, const char *evidence,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void finding(struct mt_view *v, const char *kind, const char *evidence,
		    const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	mt_grow(&v->findings, &v->capfindings, v->nfindings + 1, sizeof(*v->findings));
	struct mt_finding *f = &v->findings[v->nfindings++];
	f->kind = mt_xstrndup(kind, strlen(kind));
	f->text = mt_xstrndup(text, strlen(text));
	f->evidence = mt_xstrndup(evidence, strlen(evidence));
}

void mt_fmt_bytes(char *buf, size_t len, double b)
{
	static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	int i = 0;

	if (b < 0)
		b = 0;
	while (b >= 1024 && i < 6) {
		b /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%.0f B", b);
	else
		snprintf(buf, len, "%.*f %s", b < 10 ? 2 : b < 100 ? 1 : 0, b, u[i]);
}

void mt_fmt_count(char *buf, size_t len, double n)
{
	char tmp[64];
	int k, j = 0;

	if (n < 0)
		n = 0;
	if (n >= 1e18) {
		snprintf(buf, len, "%.3g", n);
		return;
	}
	k = snprintf(tmp, sizeof(tmp), "%.0f", n);
	for (int i = 0; i < k && (size_t)j + 2 < len; i++) {
		if (i && (k - i) % 3 == 0)
			buf[j++] = ',';
		buf[j++] = tmp[i];
	}
	buf[j] = '\0';
}

void mt_fmt_ns(char *buf, size_t len, double ns)
{
	if (ns < 1e3)
		snprintf(buf, len, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, len, "%.3g us", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.3g ms", ns / 1e6);
	else
		snprintf(buf, len, "%.3g s", ns / 1e9);
}

/* The lifetime bucket holding the median of a site's freed objects, or -1. */
int mt_life_median(const uint64_t *life)
{
	uint64_t total = 0, run = 0;

	for (unsigned i = 0; i < MT_LIFE_BUCKETS; i++)
		total = mt_add64(total, life[i]);
	if (!total)
		return -1;
	for (unsigned i = 0; i < MT_LIFE_BUCKETS; i++) {
		run += life[i];
		if (run * 2 >= total)
			return (int)i;
	}
	return MT_LIFE_BUCKETS - 1;
}

const char *mt_life_label(int b)
{
	static const char *l[MT_LIFE_BUCKETS] = {
		"< 1 us", "< 10 us", "< 100 us", "< 1 ms", "< 10 ms",
		"< 100 ms", "< 1 s", "< 10 s", "< 100 s", ">= 100 s",
	};
	return b >= 0 && b < MT_LIFE_BUCKETS ? l[b] : "-";
}

static void findings(struct mt_view *v)
{
	const struct mt_agg *a = v->agg;
	double total_n = mt_est_count(&v->total_alloc);
	double total_live = mt_est_bytes(&v->total_live);
	char ev[512], b1[32], b2[32], b3[32];

	/* 1. many small, short-lived allocations at one site */
	for (size_t k = 0; k < v->nsites && total_n > 0; k++) {
		const struct mt_vsite *s = &v->sites[v->by_count[k]];
		double n = mt_est_count(&s->alloc);
		if (n < 0.05 * total_n || s->alloc.samples < 10)
			break;
		double avg = mt_est_bytes(&s->alloc) / n;
		int med = mt_life_median(s->life);
		double fr = mt_est_count(&s->freed) / n;
		if (avg > 256 || med < 0 || med > 1 || fr < 0.5)
			continue;
		snprintf(ev, sizeof(ev),
			 "{\"site\":\"%016" PRIx64 "\",\"allocs\":%.0f,\"share\":%.4f,"
			 "\"avg_size\":%.1f,\"median_lifetime\":\"%s\"}",
			 a->sites[s->site].hash, n, n / total_n, avg,
			 mt_life_label(med));
		mt_fmt_count(b1, sizeof(b1), n);
		finding(v, "small-short-lived", ev,
			"%s makes %s allocations (%.0f%% of all) of %.0f bytes on "
			"average, most freed %s after: a candidate for a stack "
			"buffer, a free list or reuse.",
			s->label, b1, 100 * n / total_n, avg, mt_life_label(med));
	}
	/* 2. a thread freeing most of another thread's objects */
	for (size_t i = 0; i < a->nxm; i++) {
		const struct mt_xm *x = &a->xm[i];
		if (x->from == x->to || !v->thread_on[x->from] || !v->thread_on[x->to])
			continue;
		const struct mt_thread *f = &a->threads[x->from], *t = &a->threads[x->to];
		struct mt_est own = { 0 };
		for (size_t k = 0; k < v->nthreads; k++)
			if (v->threads[k].thread == x->from)
				own = v->threads[k].freed;
		double n = mt_est_count(&x->est), of = mt_est_count(&own);
		if (x->est.samples < 10 || of <= 0 || n < 0.5 * of)
			continue;
		mt_fmt_count(b1, sizeof(b1), n);
		mt_fmt_bytes(b2, sizeof(b2), mt_est_bytes(&x->est));
		snprintf(ev, sizeof(ev),
			 "{\"pid\":%" PRIu64 ",\"from_tid\":%" PRIu64 ",\"to_tid\":%" PRIu64
			 ",\"objects\":%.0f,\"bytes\":%" PRIu64 ",\"share\":%.4f}",
			 a->procs[f->proc].pid, f->tid, t->tid, n, x->est.b, n / of);
		finding(v, "cross-thread-frees", ev,
			"Thread %" PRIu64 " (%s) frees %.0f%% of the objects of thread %" PRIu64
			" (%s) that are freed (%s objects, %s): every such free "
			"goes back to the allocating thread's arena; freeing on the "
			"allocating thread or recycling buffers avoids it.",
			t->tid, t->name[0] ? t->name : "-", 100 * n / of, f->tid,
			f->name[0] ? f->name : "-", b1, b2);
	}
	/* 3. growth without frees */
	for (size_t k = 0; k < v->nsites; k++) {
		const struct mt_vsite *s = &v->sites[v->by_live[k]];
		double lb = mt_est_bytes(&s->live);
		if (s->live.samples == 0 || lb <= 0)
			break;
		if (s->alloc.samples < 10 || s->freed.samples > 0 ||
		    (lb < 0.01 * total_live && lb < 1048576))
			continue;
		mt_fmt_count(b1, sizeof(b1), mt_est_count(&s->alloc));
		mt_fmt_bytes(b2, sizeof(b2), lb);
		snprintf(ev, sizeof(ev),
			 "{\"site\":\"%016" PRIx64 "\",\"allocs\":%.0f,\"frees\":0,"
			 "\"live_bytes\":%.0f}",
			 a->sites[s->site].hash, mt_est_count(&s->alloc), lb);
		finding(v, "growth-without-frees", ev,
			"%s allocated %s objects and freed none: %s still live at "
			"the end (a leak, or a cache without a bound).",
			s->label, b1, b2);
	}
	/* 4. process memory that grows and does not come down */
	for (size_t k = 0; k < v->nprocs; k++) {
		const struct mt_vproc *p = &v->procs[k];
		if (!p->have_tl || p->tl_points < 4)
			continue;
		double a0 = (double)p->first.allocated, af = (double)p->final.allocated;
		double ap = (double)p->peak.allocated;
		if (af < 0.9 * ap || af < 2 * a0 || af - a0 < 1048576)
			continue;
		mt_fmt_bytes(b1, sizeof(b1), a0);
		mt_fmt_bytes(b2, sizeof(b2), af);
		mt_fmt_bytes(b3, sizeof(b3), ap);
		snprintf(ev, sizeof(ev),
			 "{\"pid\":%" PRIu64 ",\"first\":%.0f,\"final\":%.0f,\"peak\":%.0f}",
			 a->procs[p->proc].pid, a0, af, ap);
		finding(v, "memory-growth", ev,
			"Process %" PRIu64 " grew from %s to %s allocated (peak %s) "
			"and did not come down: see the leaks and the timeline.",
			a->procs[p->proc].pid, b1, b2, b3);
	}
	/* 5. a hot size class */
	uint64_t all = 0;
	const struct mt_vclass *hot = NULL;
	for (size_t i = 0; i < v->nclasses; i++) {
		all = mt_add64(all, v->classes[i].exact);
		if (!hot || v->classes[i].exact > hot->exact)
			hot = &v->classes[i];
	}
	if (hot && all && hot->exact >= 0.3 * (double)all && hot->exact >= 1000) {
		mt_fmt_count(b1, sizeof(b1), (double)hot->exact);
		snprintf(ev, sizeof(ev),
			 "{\"size_class\":%" PRIu64 ",\"requests\":%" PRIu64
			 ",\"share\":%.4f}",
			 hot->cls, hot->exact, (double)hot->exact / (double)all);
		finding(v, "hot-size-class", ev,
			"Size class %" PRIu64 " takes %.0f%% of all allocation "
			"requests (%s): %s.",
			hot->cls, 100.0 * (double)hot->exact / (double)all, b1,
			hot->nsites ? v->sites[hot->sites[0]].label
				    : "no sampled site fills it");
	}
	/* 6. short-lived large allocations */
	for (size_t k = 0; k < v->nsites; k++) {
		const struct mt_vsite *s = &v->sites[v->by_bytes[k]];
		double n = mt_est_count(&s->alloc);
		if (n <= 0)
			break;
		double avg = mt_est_bytes(&s->alloc) / n;
		int med = mt_life_median(s->life);
		if (avg < 65536 || med < 0 || med > 3 || n < 10)
			continue;
		mt_fmt_bytes(b1, sizeof(b1), avg);
		mt_fmt_count(b2, sizeof(b2), n);
		snprintf(ev, sizeof(ev),
			 "{\"site\":\"%016" PRIx64 "\",\"allocs\":%.0f,\"avg_size\":%.0f,"
			 "\"median_lifetime\":\"%s\"}",
			 a->sites[s->site].hash, n, avg, mt_life_label(med));
		finding(v, "short-lived-large", ev,
			"%s allocates large blocks (%s on average, %s times) that "
			"live %s: reusing one buffer saves the allocation and the "
			"page faults.",
			s->label, b1, b2, mt_life_label(med));
	}
	/* 7. the quality of the data */
	if (v->in.dropped_records) {
		mt_fmt_count(b1, sizeof(b1), (double)v->in.dropped_records);
		snprintf(ev, sizeof(ev), "{\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
			 v->in.dropped_records, v->in.dropped_bytes);
		finding(v, "records-dropped", ev,
			"The tracked program dropped %s records (buffer or write "
			"failures): the sampled figures undercount.", b1);
	}
	for (size_t k = 0; k < v->nthreads; k++) {
		const struct mt_vthread *t = &v->threads[k];
		const struct mt_thread *th = &a->threads[t->thread];
		const struct mt_totals *x = th->totals.have ? &th->totals : NULL;
		if (!x || x->shared || v->exact_weights == false)
			continue;
		if (t->alloc.samples > x->allocs) {
			snprintf(ev, sizeof(ev),
				 "{\"pid\":%" PRIu64 ",\"tid\":%" PRIu64
				 ",\"exact_allocs\":%" PRIu64 ",\"sampled_records\":%" PRIu64 "}",
				 a->procs[th->proc].pid, th->tid, x->allocs,
				 t->alloc.samples);
			finding(v, "inconsistent-totals", ev,
				"Thread %" PRIu64 " has %" PRIu64 " sampled allocation "
				"records but an exact count of %" PRIu64 " allocations: "
				"the exact count misses allocations (the sampled ones, "
				"served from the tracked arena, are not in the thread "
				"arena's request counters).",
				th->tid, t->alloc.samples, x->allocs);
			break;
		}
	}
}

/* ---- building ------------------------------------------------------------------------- */

static bool thread_wanted(const struct mt_options *o, const struct mt_thread *t)
{
	char tid[32];

	if (!o->nthreads)
		return true;
	snprintf(tid, sizeof(tid), "%" PRIu64, t->tid);
	for (size_t i = 0; i < o->nthreads; i++)
		if (!strcmp(o->threads[i], tid) || !strcmp(o->threads[i], t->name))
			return true;
	return false;
}

static bool proc_wanted(const struct mt_options *o, const struct mt_proc *p)
{
	if (!o->npids)
		return true;
	for (size_t i = 0; i < o->npids; i++)
		if (o->pids[i] == p->pid)
			return true;
	return false;
}

static char *site_label(const struct mt_view *v, uint32_t site)
{
	const struct mt_site *s = &v->agg->sites[site];
	char buf[1024];

	if (!s->depth)
		return mt_xstrndup("[unknown stack]", 15);
	mt_view_frame(v, &s->frames[mt_site_trim(v->agg, s)], buf, sizeof(buf));
	return mt_xstrndup(buf, strlen(buf));
}

/* The --by-function key of a site: the function holding its first frame
 * past the wrappers (module+offset when unknown). */
static char *site_group(const struct mt_view *v, uint32_t site)
{
	const struct mt_site *s = &v->agg->sites[site];
	struct mt_symframe sf[16];
	char buf[1024];

	if (!s->depth)
		return mt_xstrndup("[unknown stack]", 15);
	const struct mt_frame *f = &s->frames[mt_site_trim(v->agg, s)];
	int n = mt_symbols_lookup(v->sym, f, sf, 16);
	if (n > 0 && sf[n - 1].function)
		return mt_xstrndup(sf[n - 1].function, strlen(sf[n - 1].function));
	mt_view_frame(v, f, buf, sizeof(buf));
	return mt_xstrndup(buf, strlen(buf));
}

/* The processes in display order: a fork tree, roots by (host, start, pid),
 * each child after its parent. */
static void order_procs(struct mt_view *v, uint32_t *sel, size_t n)
{
	const struct mt_agg *a = v->agg;
	int *parent = mt_xmalloc((n + 1) * sizeof(int));
	bool *done = mt_xcalloc(n + 1, 1);
	size_t k = 0;

	sort_view = v;
	mt_sort(sel, n, sizeof(*sel), cmp_proc);
	for (size_t i = 0; i < n; i++) {
		const struct mt_proc *c = &a->procs[sel[i]];
		parent[i] = -1;
		for (size_t j = 0; j < n; j++) {
			const struct mt_proc *p = &a->procs[sel[j]];
			if (j != i && p->pid == c->ppid && !strcmp(p->host, c->host) &&
			    (parent[i] < 0 ||
			     p->start_real_ns > a->procs[sel[parent[i]]].start_real_ns))
				parent[i] = (int)j;
		}
	}
	/* DFS; a cycle (pid reuse) falls back to the plain order */
	uint32_t *stack = mt_xmalloc((n + 1) * sizeof(uint32_t));
	unsigned *depth = mt_xmalloc((n + 1) * sizeof(unsigned));
	for (size_t r = 0; r < n; r++) {
		if (done[r] || parent[r] >= 0)
			continue;
		size_t sp = 0;
		stack[sp] = (uint32_t)r;
		depth[sp++] = 0;
		while (sp) {
			sp--;
			uint32_t i = stack[sp];
			unsigned d = depth[sp];
			if (done[i])
				continue;
			done[i] = true;
			struct mt_vproc *vp = &v->procs[k++];
			memset(vp, 0, sizeof(*vp));
			vp->proc = sel[i];
			vp->depth = d;
			for (size_t j = n; j-- > 0;)
				if (parent[j] == (int)i && !done[j]) {
					stack[sp] = (uint32_t)j;
					depth[sp++] = d + 1;
				}
		}
	}
	for (size_t r = 0; r < n; r++)
		if (!done[r]) {
			struct mt_vproc *vp = &v->procs[k++];
			memset(vp, 0, sizeof(*vp));
			vp->proc = sel[r];
		}
	for (size_t i = 0; i < n; i++) {
		v->proc_rank[v->procs[i].proc] = (uint32_t)i;
		v->procs[i].parent = -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct mt_proc *c = &a->procs[v->procs[i].proc];
		for (size_t j = 0; j < n; j++)
			if (j != i && a->procs[v->procs[j].proc].pid == c->ppid &&
			    !strcmp(a->procs[v->procs[j].proc].host, c->host))
				v->procs[i].parent = (int)j;
	}
	v->nprocs = n;
	free(parent);
	free(done);
	free(stack);
	free(depth);
}

static void proc_figures(struct mt_view *v, struct mt_vproc *vp)
{
	const struct mt_proc *p = &v->agg->procs[vp->proc];
	bool first = true;

	for (unsigned i = 0; i < MT_TL_N; i++) {
		const struct mt_tslot *s = &p->tl.s[i];
		if (!s->used)
			continue;
		if (!vp->have_tl) {
			vp->have_tl = true;
			vp->peak = s->max;
			vp->final = s->last;
		}
		if (first) {
			/* the earliest point: the slot's max or last, whichever came first */
			vp->first = s->max.time_ns <= s->last.time_ns ? s->max : s->last;
			first = false;
		}
		if (s->max.allocated > vp->peak.allocated ||
		    (s->max.allocated == vp->peak.allocated && s->max.time_ns < vp->peak.time_ns))
			vp->peak = s->max;
		if (s->last.time_ns >= vp->final.time_ns)
			vp->final = s->last;
		if (s->max.resident > vp->peak_resident)
			vp->peak_resident = s->max.resident;
		if (s->last.resident > vp->peak_resident)
			vp->peak_resident = s->last.resident;
	}
	vp->tl_points = p->tl.npoints;
	uint64_t t0 = p->start_mono_ns && p->start_mono_ns < p->tmin ? p->start_mono_ns
								       : p->tmin;
	vp->t0 = t0;
	vp->duration_ns = p->tmax >= t0 && p->tmin != UINT64_MAX ? p->tmax - t0 : 0;
	vp->unmatched_frees = p->pend.n;
	vp->live_records = p->live.n;
}

void mt_view_build_proc(struct mt_view *v, const struct mt_agg *a,
			const struct mt_options *opt, struct mt_symbols *sym,
			long only)
{
	memset(v, 0, sizeof(*v));
	v->agg = a;
	v->opt = opt;
	v->sym = sym;
	v->only_proc = only;
	v->proc_on = mt_xcalloc(a->nprocs + 1, sizeof(bool));
	v->thread_on = mt_xcalloc(a->nthreads + 1, sizeof(bool));
	v->proc_rank = mt_xcalloc(a->nprocs + 1, sizeof(uint32_t));
	v->procs = mt_xcalloc(a->nprocs + 1, sizeof(*v->procs));

	/* selection */
	uint32_t *sel = mt_xmalloc((a->nprocs + 1) * sizeof(uint32_t));
	size_t nsel = 0;
	for (size_t i = 0; i < a->nprocs; i++)
		if ((only < 0 || (size_t)only == i) && proc_wanted(opt, &a->procs[i])) {
			v->proc_on[i] = true;
			sel[nsel++] = (uint32_t)i;
		}
	order_procs(v, sel, nsel);
	free(sel);
	for (size_t i = 0; i < a->nthreads; i++)
		v->thread_on[i] = v->proc_on[a->threads[i].proc] &&
				  thread_wanted(opt, &a->threads[i]);

	/* policy */
	v->exact_weights = true;
	for (size_t k = 0; k < v->nprocs; k++) {
		const struct mt_proc *p = &a->procs[v->procs[k].proc];
		if (!v->policy)
			v->policy = p->policy_name;
		else if (strcmp(v->policy, p->policy_name))
			v->policy = "mixed";
		if (p->policy.policy != MT_SHARD_POLICY_ALL)
			v->exact_weights = false;
		mt_instats_add(&v->in, &p->in);
		proc_figures(v, &v->procs[k]);
		v->unmatched_frees += p->pend.n;
	}
	if (!v->policy)
		v->policy = "";

	/* sites: the selected cells, grouped by site */
	uint32_t *vs_of = mt_xmalloc((a->nsites + 1) * sizeof(uint32_t));
	memset(vs_of, 0xff, (a->nsites + 1) * sizeof(uint32_t));
	v->sites = mt_xcalloc(a->nsites + 1, sizeof(*v->sites));
	for (size_t i = 0; i < a->nst; i++) {
		const struct mt_st *c = &a->st[i];
		if (!v->thread_on[c->thread] || !c->alloc.samples)
			continue;
		if (vs_of[c->site] == UINT32_MAX) {
			vs_of[c->site] = (uint32_t)v->nsites;
			struct mt_vsite *s = &v->sites[v->nsites++];
			s->site = c->site;
			s->size_min = UINT64_MAX;
		}
		struct mt_vsite *s = &v->sites[vs_of[c->site]];
		mt_est_sum(&s->alloc, &c->alloc);
		mt_est_sum(&s->freed, &c->freed);
		mt_est_sum(&s->xfreed, &c->xfreed);
		s->life_w = mt_add128(s->life_w, c->life_w);
		for (unsigned k = 0; k < MT_LIFE_BUCKETS; k++) {
			s->life[k] = mt_add64(s->life[k], c->life[k]);
			v->life[k] = mt_add64(v->life[k], c->life[k]);
		}
		if (c->size_min < s->size_min)
			s->size_min = c->size_min;
		if (c->size_max > s->size_max)
			s->size_max = c->size_max;
		s->nst++;
	}
	/* the cells of each site, for the per-thread breakdown */
	v->st = mt_xmalloc((a->nst + 1) * sizeof(uint32_t));
	{
		uint32_t pos = 0;
		for (size_t i = 0; i < v->nsites; i++) {
			v->sites[i].first_st = pos;
			pos += v->sites[i].nst;
			v->sites[i].nst = 0;
		}
		for (size_t i = 0; i < a->nst; i++) {
			const struct mt_st *c = &a->st[i];
			if (!v->thread_on[c->thread] || !c->alloc.samples)
				continue;
			struct mt_vsite *s = &v->sites[vs_of[c->site]];
			v->st[s->first_st + s->nst++] = (uint32_t)i;
		}
	}
	sort_view = v;
	for (size_t i = 0; i < v->nsites; i++)
		mt_sort(v->st + v->sites[i].first_st, v->sites[i].nst, sizeof(uint32_t),
		      cmp_cell);
	for (size_t i = 0; i < v->nsites; i++) {
		struct mt_vsite *s = &v->sites[i];
		mt_est_diff(&s->live, &s->alloc, &s->freed);
		s->live.samples = s->alloc.samples - s->freed.samples;
		s->label = site_label(v, s->site);
		s->group = opt->by_function ? site_group(v, s->site)
					    : mt_xstrndup(s->label, strlen(s->label));
		mt_est_sum(&v->total_alloc, &s->alloc);
		mt_est_sum(&v->total_freed, &s->freed);
		mt_est_sum(&v->total_xfreed, &s->xfreed);
	}
	mt_est_diff(&v->total_live, &v->total_alloc, &v->total_freed);
	v->total_live.samples = v->total_alloc.samples - v->total_freed.samples;

	/* orderings */
	sort_view = v;
	uint32_t **ords[] = { &v->by_bytes, &v->by_count, &v->by_live, &v->by_leaked,
			      &v->by_xfree };
	int (*cmps[])(const void *, const void *) = { cmp_bytes, cmp_count, cmp_live,
						      cmp_leaked, cmp_xfree };
	for (int k = 0; k < 5; k++) {
		*ords[k] = mt_xmalloc((v->nsites + 1) * sizeof(uint32_t));
		for (size_t i = 0; i < v->nsites; i++)
			(*ords[k])[i] = (uint32_t)i;
		mt_sort(*ords[k], v->nsites, sizeof(uint32_t), cmps[k]);
	}
	v->nleaks = 0;
	for (size_t i = 0; i < v->nsites; i++)
		if (v->sites[v->by_live[i]].live.samples)
			v->nleaks++;
	v->nxsites = 0;
	for (size_t i = 0; i < v->nsites; i++)
		if (v->sites[v->by_xfree[i]].xfreed.samples)
			v->nxsites++;

	/* groups by the first frame's label (--by-function) */
	if (opt->by_function) {
		uint32_t *ix = mt_xmalloc((v->nsites + 1) * sizeof(uint32_t));
		for (size_t i = 0; i < v->nsites; i++)
			ix[i] = (uint32_t)i;
		mt_sort(ix, v->nsites, sizeof(uint32_t), cmp_label);
		v->groups = mt_xcalloc(v->nsites + 1, sizeof(*v->groups));
		for (size_t i = 0; i < v->nsites; i++) {
			const struct mt_vsite *s = &v->sites[ix[i]];
			struct mt_vsite *g;
			if (v->ngroups && !strcmp(v->groups[v->ngroups - 1].group, s->group)) {
				g = &v->groups[v->ngroups - 1];
			} else {
				g = &v->groups[v->ngroups++];
				g->site = s->site;
				g->group = s->group;
				g->label = s->group;
				g->size_min = UINT64_MAX;
			}
			mt_est_sum(&g->alloc, &s->alloc);
			mt_est_sum(&g->freed, &s->freed);
			mt_est_sum(&g->xfreed, &s->xfreed);
			mt_est_sum(&g->live, &s->live);
			g->nst++; /* sites in the group */
			if (s->size_min < g->size_min)
				g->size_min = s->size_min;
			if (s->size_max > g->size_max)
				g->size_max = s->size_max;
		}
		free(ix);
		v->group_order = mt_xmalloc((v->ngroups + 1) * sizeof(uint32_t));
		for (size_t i = 0; i < v->ngroups; i++)
			v->group_order[i] = (uint32_t)i;
		mt_sort(v->group_order, v->ngroups, sizeof(uint32_t), cmp_group);
	}

	/* threads */
	v->threads = mt_xcalloc(a->nthreads + 1, sizeof(*v->threads));
	uint32_t *vt_of = mt_xmalloc((a->nthreads + 1) * sizeof(uint32_t));
	memset(vt_of, 0xff, (a->nthreads + 1) * sizeof(uint32_t));
	for (size_t i = 0; i < a->nthreads; i++) {
		if (!v->thread_on[i])
			continue;
		vt_of[i] = (uint32_t)v->nthreads;
		struct mt_vthread *t = &v->threads[v->nthreads++];
		const struct mt_thread *th = &a->threads[i];
		t->thread = (uint32_t)i;
		t->freed_by = th->freed_by;
		t->peak_live = (double)mt_series_peak(th->live);
		const struct mt_totals *x = th->totals.have ? &th->totals
				   : th->exit_totals.have ? &th->exit_totals : NULL;
		if (x) {
			v->exact.have = true;
			v->exact.allocs = mt_add64(v->exact.allocs, x->allocs);
			v->exact.frees = mt_add64(v->exact.frees, x->frees);
			v->exact.bytes_allocated =
				mt_add64(v->exact.bytes_allocated, x->bytes_allocated);
			v->exact.bytes_freed = mt_add64(v->exact.bytes_freed, x->bytes_freed);
			v->exact_shared |= x->shared;
			v->exact_threads += x->from_exit ? x->time_ns : 1;
		}
	}
	for (size_t i = 0; i < a->nst; i++) {
		const struct mt_st *c = &a->st[i];
		if (vt_of[c->thread] == UINT32_MAX)
			continue;
		struct mt_vthread *t = &v->threads[vt_of[c->thread]];
		mt_est_sum(&t->alloc, &c->alloc);
		mt_est_sum(&t->freed, &c->freed);
		mt_est_sum(&t->xfreed_by_others, &c->xfreed);
	}
	for (size_t i = 0; i < a->nxm; i++) {
		const struct mt_xm *x = &a->xm[i];
		if (x->from != x->to && vt_of[x->to] != UINT32_MAX)
			mt_est_sum(&v->threads[vt_of[x->to]].freed_for_others, &x->est);
	}
	for (size_t i = 0; i < v->nthreads; i++) {
		struct mt_vthread *t = &v->threads[i];
		mt_est_diff(&t->live, &t->alloc, &t->freed);
		t->live.samples = t->alloc.samples - t->freed.samples;
	}
	sort_view = v;
	mt_sort(v->threads, v->nthreads, sizeof(*v->threads), cmp_thread);
	for (size_t i = 0; i < v->nthreads; i++)
		v->procs[v->proc_rank[a->threads[v->threads[i].thread].proc]].nthreads++;
	/* per process sums */
	for (size_t i = 0; i < v->nthreads; i++) {
		struct mt_vproc *p = &v->procs[v->proc_rank[a->threads[v->threads[i].thread].proc]];
		mt_est_sum(&p->alloc, &v->threads[i].alloc);
		mt_est_sum(&p->freed, &v->threads[i].freed);
		const struct mt_thread *th = &a->threads[v->threads[i].thread];
		const struct mt_totals *x = th->totals.have ? &th->totals
				   : th->exit_totals.have ? &th->exit_totals : NULL;
		if (x) {
			p->exact.have = true;
			p->exact.allocs = mt_add64(p->exact.allocs, x->allocs);
			p->exact.frees = mt_add64(p->exact.frees, x->frees);
			p->exact.bytes_allocated = mt_add64(p->exact.bytes_allocated, x->bytes_allocated);
			p->exact.bytes_freed = mt_add64(p->exact.bytes_freed, x->bytes_freed);
			p->exact.shared |= x->shared;
		}
	}
	free(vt_of);

	/* size classes: sampled by class, exact from the processes' latest
	 * MT_REC_CLASSES, and the sites that fill each class */
	struct mt_map cidx = { 0 };
	struct mt_map csite = { 0 };
	struct { uint64_t cls; uint32_t vs; uint64_t n; } *cs = NULL;
	size_t ncs = 0, capcs = 0, capcl = 0;
	for (size_t i = 0; i < a->nstc; i++) {
		const struct mt_stc *c = &a->stc[i];
		const struct mt_st *st = &a->st[c->st];
		if (!v->thread_on[st->thread] || !c->est.samples)
			continue;
		uint32_t k = mt_map_get(&cidx, c->cls);
		if (k == UINT32_MAX) {
			mt_grow(&v->classes, &capcl, v->nclasses + 1, sizeof(*v->classes));
			k = (uint32_t)v->nclasses++;
			memset(&v->classes[k], 0, sizeof(v->classes[k]));
			v->classes[k].cls = c->cls;
			mt_map_put(&cidx, c->cls, k);
		}
		mt_est_sum(&v->classes[k].est, &c->est);
		uint64_t key = mt_mix64(c->cls) ^ vs_of[st->site];
		uint32_t j;
		while ((j = mt_map_get(&csite, key)) != UINT32_MAX &&
		       (cs[j].cls != c->cls || cs[j].vs != vs_of[st->site]))
			key = mt_mix64(key + 1);
		if (j == UINT32_MAX) {
			mt_grow(&cs, &capcs, ncs + 1, sizeof(*cs));
			j = (uint32_t)ncs++;
			cs[j].cls = c->cls;
			cs[j].vs = vs_of[st->site];
			cs[j].n = 0;
			mt_map_put(&csite, key, j);
		}
		cs[j].n = mt_add64(cs[j].n, c->est.n);
	}
	for (size_t k = 0; k < v->nprocs; k++) {
		const struct mt_proc *p = &a->procs[v->procs[k].proc];
		for (uint32_t i = 0; i < p->nclasses; i++) {
			uint64_t cls = p->classes[i].size;
			uint32_t c = mt_map_get(&cidx, cls);
			if (c == UINT32_MAX) {
				mt_grow(&v->classes, &capcl, v->nclasses + 1,
					sizeof(*v->classes));
				c = (uint32_t)v->nclasses++;
				memset(&v->classes[c], 0, sizeof(v->classes[c]));
				v->classes[c].cls = cls;
				mt_map_put(&cidx, cls, c);
			}
			v->classes[c].exact = mt_add64(v->classes[c].exact,
						       p->classes[i].requests);
		}
	}
	for (size_t j = 0; j < ncs; j++) {
		struct mt_vclass *c = &v->classes[mt_map_get(&cidx, cs[j].cls)];
		/* keep the top 3 by count, ties by the site's order */
		unsigned pos = c->nsites;
		while (pos > 0 && (cs[j].n > c->site_n[pos - 1] ||
				   (cs[j].n == c->site_n[pos - 1] &&
				    site_cmp_content(a, v->sites[cs[j].vs].site,
						     v->sites[c->sites[pos - 1]].site) < 0)))
			pos--;
		if (pos >= 3)
			continue;
		for (unsigned q = (c->nsites < 3 ? c->nsites : 2); q > pos; q--) {
			c->sites[q] = c->sites[q - 1];
			c->site_n[q] = c->site_n[q - 1];
		}
		c->sites[pos] = cs[j].vs;
		c->site_n[pos] = cs[j].n;
		if (c->nsites < 3)
			c->nsites++;
	}
	free(cs);
	mt_map_free(&cidx);
	mt_map_free(&csite);
	mt_sort(v->classes, v->nclasses, sizeof(*v->classes), cmp_class);
	free(vs_of);

	findings(v);
}

void mt_view_build(struct mt_view *v, const struct mt_agg *a,
		   const struct mt_options *opt, struct mt_symbols *sym)
{
	mt_view_build_proc(v, a, opt, sym, -1);
}

void mt_view_free(struct mt_view *v)
{
	for (size_t i = 0; i < v->nsites; i++) {
		free(v->sites[i].label);
		free(v->sites[i].group);
	}
	free(v->sites);
	free(v->st);
	free(v->groups);
	free(v->group_order);
	free(v->threads);
	free(v->classes);
	free(v->by_bytes);
	free(v->by_count);
	free(v->by_live);
	free(v->by_leaked);
	free(v->by_xfree);
	free(v->proc_on);
	free(v->thread_on);
	free(v->proc_rank);
	free(v->procs);
	for (size_t i = 0; i < v->nfindings; i++) {
		free(v->findings[i].kind);
		free(v->findings[i].text);
		free(v->findings[i].evidence);
	}
	free(v->findings);
	memset(v, 0, sizeof(*v));
}
