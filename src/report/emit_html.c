/* emit_html: one self-contained HTML file (no network, no external script
 * or font): the headline figures and run information, an icicle flame
 * graph (bytes, allocations, live at exit; all threads or one; click to
 * zoom, hover for the figures, search), the timeline with the marks, the
 * cross-thread free matrix as a heat map, and sortable tables of sites,
 * threads, size classes and lifetimes.
 *
 * The figures travel as one JSON document inside
 * <script type="application/json">, written with '<', '>' and '&' as
 * \u escapes, so that no string of the traced program (paths, arguments,
 * symbols, thread names, marks) can close the element; the page's script
 * (html_js below, hand-written) reads it with JSON.parse and puts every
 * such string into the page as text (textContent), never as markup.
 * Frames smaller than a cut-off (0.1 % of the view's total by default) are
 * pruned into an "other" node in the browser, and the page says so. */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

/* A JSON string safe inside a <script> element (and valid UTF-8 passed
 * through, stray bytes as U+FFFD). */
static void js_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '<': fputs("\\u003c", f); break;
		case '>': fputs("\\u003e", f); break;
		case '&': fputs("\\u0026", f); break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				fprintf(f, "\\u%04x", *p);
			} else if (*p < 0x80) {
				fputc(*p, f);
			} else {
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
					fputs("\\ufffd", f);
				}
			}
		}
	}
	fputc('"', f);
}

/* Text for the HTML itself (the <title>). */
static void html_text(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		switch (*p) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			if (*p >= 0x20 && *p != 0x7f)
				fputc(*p, f);
		}
	}
}

static void num(FILE *f, double x)
{
	if (!isfinite(x) || x <= 0)
		fputc('0', f);
	else
		fprintf(f, "%.0f", x);
}

/* Frame names interned into one list. */
struct names {
	char **s;
	size_t n, cap;
	struct mt_map idx;
};

static uint32_t name_id(struct names *t, const char *s, size_t len)
{
	uint64_t h = mt_hash_bytes(s, len, 0x68746d6c);
	for (;; h++) {
		uint32_t i = mt_map_get(&t->idx, h);
		if (i == UINT32_MAX)
			break;
		if (strlen(t->s[i]) == len && !memcmp(t->s[i], s, len))
			return i;
	}
	mt_grow(&t->s, &t->cap, t->n + 1, sizeof(*t->s));
	t->s[t->n] = mt_xstrndup(s, len);
	mt_map_put(&t->idx, h, (uint32_t)t->n);
	return (uint32_t)t->n++;
}

extern const char mt_html_head[], mt_html_body[], mt_html_js[];

static void data(FILE *f, const struct mt_view *v)
{
	const struct mt_agg *a = v->agg;
	struct names nm;

	memset(&nm, 0, sizeof(nm));
	fputs("{\"run\":[", f);
	for (size_t i = 0; i < v->nprocs; i++) {
		const struct mt_vproc *vp = &v->procs[i];
		const struct mt_proc *p = &a->procs[vp->proc];
		fputs(i ? ",{" : "{", f);
		fputs("\"exe\":", f);
		js_str(f, p->exe);
		fputs(",\"argv\":[", f);
		for (uint32_t k = 0; k < p->argc; k++) {
			if (k)
				fputc(',', f);
			js_str(f, p->argv[k]);
		}
		fprintf(f, "],\"pid\":%" PRIu64 ",\"ppid\":%" PRIu64 ",\"host\":", p->pid, p->ppid);
		js_str(f, p->host);
		fprintf(f, ",\"start_s\":%" PRIu64 ",\"duration_ns\":%" PRIu64
			",\"threads\":%" PRIu64 ",\"policy\":", p->start_real_ns / 1000000000u,
			vp->duration_ns, vp->nthreads);
		js_str(f, p->policy_name);
		fputs(",\"version\":", f);
		js_str(f, p->version);
		fputs(",\"end\":", f);
		js_str(f, p->end_reason);
		fprintf(f, ",\"peak_resident\":%" PRIu64 ",\"tl\":[", vp->peak_resident);
		/* the timeline: per slot, its peak and its latest point, in time order */
		bool first = true;
		for (unsigned k = 0; k < MT_TL_N; k++) {
			const struct mt_tslot *s = &p->tl.s[k];
			if (!s->used)
				continue;
			const struct mt_tpoint *pt[2] = { &s->max, &s->last };
			if (s->max.time_ns > s->last.time_ns) {
				pt[0] = &s->last;
				pt[1] = &s->max;
			}
			for (int q = 0; q < 2; q++) {
				if (q && pt[1]->time_ns == pt[0]->time_ns)
					continue;
				fprintf(f, "%s[%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",", first ? "" : ",",
					pt[q]->time_ns > vp->t0 ? pt[q]->time_ns - vp->t0 : 0,
					pt[q]->allocated, pt[q]->resident);
				num(f, pt[q]->live_estimate);
				fputc(']', f);
				first = false;
			}
		}
		fputs("],\"marks\":[", f);
		for (size_t k = 0; k < p->nmarks; k++) {
			fprintf(f, "%s[%" PRIu64 ",", k ? "," : "",
				p->marks[k].time_ns > vp->t0 ? p->marks[k].time_ns - vp->t0 : 0);
			js_str(f, p->marks[k].label);
			fputc(']', f);
		}
		fputs("]}", f);
	}
	fputs("],\"policy\":", f);
	js_str(f, v->policy);
	fprintf(f, ",\"exact_weights\":%s,\"totals\":{\"bytes\":", v->exact_weights ? "true" : "false");
	num(f, mt_est_bytes(&v->total_alloc));
	fputs(",\"allocs\":", f);
	num(f, mt_est_count(&v->total_alloc));
	fputs(",\"frees\":", f);
	num(f, mt_est_count(&v->total_freed));
	fputs(",\"live_bytes\":", f);
	num(f, mt_est_bytes(&v->total_live));
	fputs(",\"live_objects\":", f);
	num(f, mt_est_count(&v->total_live));
	fputs(",\"cross_thread_frees\":", f);
	num(f, mt_est_count(&v->total_xfreed));
	fprintf(f, ",\"samples\":%" PRIu64 "}", v->total_alloc.samples);

	/* threads: [pid, tid, name, allocs, bytes, live bytes, peak live] */
	fputs(",\"threads\":[", f);
	uint32_t *tix = mt_xcalloc(a->nthreads + 1, sizeof(*tix));
	for (size_t i = 0; i < v->nthreads; i++) {
		const struct mt_vthread *t = &v->threads[i];
		const struct mt_thread *th = &a->threads[t->thread];
		tix[t->thread] = (uint32_t)i;
		fprintf(f, "%s[%" PRIu64 ",%" PRIu64 ",", i ? "," : "", a->procs[th->proc].pid, th->tid);
		js_str(f, th->name);
		fputc(',', f);
		num(f, mt_est_count(&t->alloc));
		fputc(',', f);
		num(f, mt_est_bytes(&t->alloc));
		fputc(',', f);
		num(f, mt_est_bytes(&t->live));
		fputc(',', f);
		num(f, t->peak_live);
		fputc(']', f);
	}
	/* sites: [label, stack, bytes, allocs, live bytes, live objects, frees]
	 * cells: [site, thread, bytes, allocs, live bytes, live objects] */
	fputs("],\"sites\":[", f);
	char **stacks = mt_xcalloc(v->nsites + 1, sizeof(*stacks));
	for (size_t i = 0; i < v->nsites; i++) {
		const struct mt_vsite *s = &v->sites[i];
		fputs(i ? ",[" : "[", f);
		js_str(f, s->label);
		fputs(",[", f);
		mt_collapsed_stack(v, s->site, &stacks[i]);
		const char *p = stacks[i];
		for (bool first = true;; first = false) {
			const char *e = strchr(p, ';');
			size_t len = e ? (size_t)(e - p) : strlen(p);
			fprintf(f, "%s%u", first ? "" : ",", name_id(&nm, p, len));
			if (!e)
				break;
			p = e + 1;
		}
		fputs("],", f);
		num(f, mt_est_bytes(&s->alloc));
		fputc(',', f);
		num(f, mt_est_count(&s->alloc));
		fputc(',', f);
		num(f, mt_est_bytes(&s->live));
		fputc(',', f);
		num(f, mt_est_count(&s->live));
		fputc(',', f);
		num(f, mt_est_count(&s->freed));
		fputc(']', f);
	}
	fputs("],\"cells\":[", f);
	bool first = true;
	for (size_t i = 0; i < v->nsites; i++) {
		const struct mt_vsite *s = &v->sites[i];
		for (uint32_t k = 0; k < s->nst; k++) {
			const struct mt_st *c = &a->st[v->st[s->first_st + k]];
			struct mt_est live;
			mt_est_diff(&live, &c->alloc, &c->freed);
			fprintf(f, "%s[%zu,%u,", first ? "" : ",", i, tix[c->thread]);
			first = false;
			num(f, mt_est_bytes(&c->alloc));
			fputc(',', f);
			num(f, mt_est_count(&c->alloc));
			fputc(',', f);
			num(f, mt_est_bytes(&live));
			fputc(',', f);
			num(f, mt_est_count(&live));
			fputc(']', f);
		}
		free(stacks[i]);
	}
	free(stacks);
	fputs("],\"frames\":[", f);
	for (size_t i = 0; i < nm.n; i++) {
		if (i)
			fputc(',', f);
		js_str(f, nm.s[i]);
		free(nm.s[i]);
	}
	free(nm.s);
	mt_map_free(&nm.idx);
	/* sizes: [class, exact, sampled]; lifetimes: [label, objects] */
	fputs("],\"sizes\":[", f);
	for (size_t i = 0; i < v->nclasses; i++) {
		fprintf(f, "%s[%" PRIu64 ",%" PRIu64 ",", i ? "," : "", v->classes[i].cls,
			v->classes[i].exact);
		num(f, mt_est_count(&v->classes[i].est));
		fputc(']', f);
	}
	fputs("],\"life\":[", f);
	for (unsigned i = 0; i < MT_LIFE_BUCKETS; i++) {
		fputs(i ? ",[" : "[", f);
		js_str(f, mt_life_label((int)i));
		fputc(',', f);
		num(f, ldexp((double)v->life[i], -MT_FX_BITS));
		fputc(']', f);
	}
	/* the matrix: [from, to, objects, bytes] (thread indices) */
	fputs("],\"xm\":[", f);
	size_t nx;
	const struct mt_xm **x = mt_view_xm(v, &nx);
	for (size_t i = 0; i < nx; i++) {
		fprintf(f, "%s[%u,%u,", i ? "," : "", tix[x[i]->from], tix[x[i]->to]);
		num(f, mt_est_count(&x[i]->est));
		fputc(',', f);
		num(f, mt_est_bytes(&x[i]->est));
		fputc(']', f);
	}
	free(x);
	free(tix);
	fputs("]}", f);
}

void mt_emit_html(FILE *out, struct mt_view *const *views, size_t nv)
{
	const struct mt_view *v = views[0];
	const struct mt_agg *a = v->agg;
	const char *exe = v->nprocs ? a->procs[v->procs[0].proc].exe : NULL;

	(void)nv; /* one page: the merged view */
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	      "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
	      "<title>mtreport: ", out);
	html_text(out, exe ? mt_basename(exe) : "report");
	fputs("</title>\n", out);
	fputs(mt_html_head, out);
	fputs("</head>\n", out);
	fputs(mt_html_body, out);
	fputs("<script type=\"application/json\" id=\"mt-data\">", out);
	data(out, v);
	fputs("</script>\n<script>\n", out);
	fputs(mt_html_js, out);
	fputs("</script>\n</body></html>\n", out);
}
