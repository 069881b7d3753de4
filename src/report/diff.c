/* diff: two reports side by side.  Sites are matched by their stack as
 * the collapsed view prints it (function names root first where symbols
 * are known, module+offset otherwise), so that a rebuilt binary whose
 * offsets moved still matches by function; sites of one run printing the
 * same are summed.  Figures per stack and in total: bytes allocated,
 * allocations, bytes and objects live at the end (leaks).
 *
 * Status of a stack: "new" (only in NEW), "gone" (only in BASE), "grew" or
 * "shrank" (by bytes allocated, then live bytes, then allocations), or
 * "same" (every figure equal; not listed). */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

#define NFIG 4
static const char *const fig_key[NFIG] = { "bytes", "allocs", "live_bytes", "live_objects" };
static const char *const fig_text[NFIG] = { "bytes allocated", "allocations",
					    "live bytes at the end", "live objects at the end" };
static const enum mt_value fig_value[NFIG] = { MT_VALUE_BYTES, MT_VALUE_COUNT, MT_VALUE_LIVE,
					       MT_VALUE_LIVE_COUNT };

struct drow {
	char *stack;
	char *label;         /* of the site with most bytes */
	uint64_t label_b;
	double v[2][NFIG];   /* [base, new] */
	bool in[2];
};

struct drows {
	struct drow *r;
	size_t n, cap;
	struct mt_map idx;   /* hash of stack (probed) -> r */
};

static struct drow *row(struct drows *d, char *stack)
{
	uint64_t h = mt_hash_bytes(stack, strlen(stack), 0x64696666);

	for (;; h++) {
		uint32_t i = mt_map_get(&d->idx, h);
		if (i == UINT32_MAX)
			break;
		if (!strcmp(d->r[i].stack, stack)) {
			free(stack);
			return &d->r[i];
		}
	}
	mt_grow(&d->r, &d->cap, d->n + 1, sizeof(*d->r));
	struct drow *r = &d->r[d->n];
	memset(r, 0, sizeof(*r));
	r->stack = stack;
	mt_map_put(&d->idx, h, (uint32_t)d->n++);
	return r;
}

static double figure(const struct mt_vsite *s, unsigned k)
{
	switch (fig_value[k]) {
	case MT_VALUE_COUNT: return mt_est_count(&s->alloc);
	case MT_VALUE_LIVE: return mt_est_bytes(&s->live);
	case MT_VALUE_LIVE_COUNT: return mt_est_count(&s->live);
	default: return mt_est_bytes(&s->alloc);
	}
}

static void total(const struct mt_view *v, double *t)
{
	t[0] = mt_est_bytes(&v->total_alloc);
	t[1] = mt_est_count(&v->total_alloc);
	t[2] = mt_est_bytes(&v->total_live);
	t[3] = mt_est_count(&v->total_live);
}

static void add(struct drows *d, const struct mt_view *v, int side)
{
	for (size_t i = 0; i < v->nsites; i++) {
		const struct mt_vsite *s = &v->sites[i];
		char *stack;
		mt_collapsed_stack(v, s->site, &stack);
		struct drow *r = row(d, stack);
		r->in[side] = true;
		for (unsigned k = 0; k < NFIG; k++)
			r->v[side][k] += figure(s, k);
		uint64_t b = s->alloc.b;
		if (!r->label || b > r->label_b) {
			free(r->label);
			r->label = mt_xstrndup(s->label ? s->label : "?",
					       strlen(s->label ? s->label : "?"));
			r->label_b = b;
		}
	}
}

static const char *status(const struct drow *r)
{
	if (!r->in[0] || (r->v[0][0] == 0 && r->v[0][1] == 0))
		return r->v[1][0] || r->v[1][1] ? "new" : "same";
	if (!r->in[1] || (r->v[1][0] == 0 && r->v[1][1] == 0))
		return "gone";
	for (unsigned k = 0; k < NFIG; k++) {
		unsigned q = k == 1 ? 2 : k == 2 ? 1 : k; /* bytes, live, count */
		double a = llround(r->v[0][q]), b = llround(r->v[1][q]);
		if (b > a)
			return "grew";
		if (b < a)
			return "shrank";
	}
	return "same";
}

static double pct(double a, double b)
{
	return a > 0 ? 100.0 * (b - a) / a : b > 0 ? INFINITY : 0;
}

static int by_change(const void *x, const void *y)
{
	const struct drow *a = x, *b = y;
	double da = fabs(a->v[1][0] - a->v[0][0]), db = fabs(b->v[1][0] - b->v[0][0]);
	if (da != db)
		return da > db ? -1 : 1;
	double la = fabs(a->v[1][2] - a->v[0][2]), lb = fabs(b->v[1][2] - b->v[0][2]);
	if (la != lb)
		return la > lb ? -1 : 1;
	return strcmp(a->stack, b->stack);
}

static void jstr(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void jnum(FILE *f, double x)
{
	if (!isfinite(x))
		fputs("null", f);
	else if (x == floor(x) && fabs(x) < 1e15)
		fprintf(f, "%.0f", x);
	else
		fprintf(f, "%.3f", x);
}

static void jfig(FILE *f, const char *k, double a, double b)
{
	fprintf(f, "\"%s\":{\"base\":", k);
	jnum(f, a);
	fputs(",\"new\":", f);
	jnum(f, b);
	fputs(",\"delta\":", f);
	jnum(f, b - a);
	fputs(",\"percent\":", f);
	jnum(f, pct(a, b));
	fputc('}', f);
}

static void fmt_fig(char *buf, size_t len, unsigned k, double x)
{
	if (k == 0 || k == 2)
		mt_fmt_bytes(buf, len, x);
	else
		mt_fmt_count(buf, len, x);
}

static void fmt_delta(char *buf, size_t len, unsigned k, double a, double b)
{
	char t[64];
	fmt_fig(t, sizeof(t), k, fabs(b - a));
	double p = pct(a, b);
	if (!isfinite(p))
		snprintf(buf, len, "%s%s (new)", b >= a ? "+" : "-", t);
	else
		snprintf(buf, len, "%s%s (%+.1f%%)", b >= a ? "+" : "-", t, p);
}

bool mt_diff(FILE *out, const struct mt_view *base, const struct mt_view *nv,
	     const char *base_name, const char *new_name, double fail_pct)
{
	struct drows d;
	double t[2][NFIG];
	bool grew = false;

	memset(&d, 0, sizeof(d));
	add(&d, base, 0);
	add(&d, nv, 1);
	total(base, t[0]);
	total(nv, t[1]);
	mt_sort(d.r, d.n, sizeof(*d.r), by_change);
	for (unsigned k = 0; k < 3 && fail_pct >= 0; k++)
		if (pct(t[0][k], t[1][k]) > fail_pct)
			grew = true;
	size_t counts[5] = { 0 };  /* new, gone, grew, shrank, same */
	static const char *const names[5] = { "new", "gone", "grew", "shrank", "same" };
	for (size_t i = 0; i < d.n; i++)
		for (unsigned q = 0; q < 5; q++)
			if (!strcmp(status(&d.r[i]), names[q]))
				counts[q]++;

	if (nv->opt->format == MT_FMT_JSON) {
		fputs("{\"schema\":\"mtreport-diff-1\",\"base\":", out);
		jstr(out, base_name);
		fputs(",\"new\":", out);
		jstr(out, new_name);
		fputs(",\"totals\":{", out);
		for (unsigned k = 0; k < NFIG; k++) {
			if (k)
				fputc(',', out);
			jfig(out, fig_key[k], t[0][k], t[1][k]);
		}
		fputs("},\"stacks\":{", out);
		for (unsigned q = 0; q < 5; q++)
			fprintf(out, "%s\"%s\":%zu", q ? "," : "", names[q], counts[q]);
		fprintf(out, "},\"fail_if_growth\":");
		if (fail_pct >= 0)
			jnum(out, fail_pct);
		else
			fputs("null", out);
		fprintf(out, ",\"failed\":%s,\"sites\":[", grew ? "true" : "false");
		bool first = true;
		for (size_t i = 0; i < d.n; i++) {
			const struct drow *r = &d.r[i];
			const char *st = status(r);
			if (!strcmp(st, "same"))
				continue;
			fputs(first ? "{" : ",{", out);
			first = false;
			fputs("\"status\":", out);
			jstr(out, st);
			fputs(",\"label\":", out);
			jstr(out, r->label);
			fputs(",\"stack\":", out);
			jstr(out, r->stack);
			for (unsigned k = 0; k < NFIG; k++) {
				fputc(',', out);
				jfig(out, fig_key[k], r->v[0][k], r->v[1][k]);
			}
			fputc('}', out);
		}
		fputs("]}\n", out);
	} else {
		char a[64], b[64], c[96];
		fprintf(out, "mtreport diff: %s -> %s\n\n", base_name, new_name);
		fprintf(out, "%-26s %14s %14s   %s\n", "", "base", "new", "change");
		for (unsigned k = 0; k < NFIG; k++) {
			fmt_fig(a, sizeof(a), k, t[0][k]);
			fmt_fig(b, sizeof(b), k, t[1][k]);
			fmt_delta(c, sizeof(c), k, t[0][k], t[1][k]);
			fprintf(out, "%-26s %14s %14s   %s\n", fig_text[k], a, b, c);
		}
		fprintf(out, "\nstacks: %zu new, %zu gone, %zu grew, %zu shrank, %zu unchanged\n",
			counts[0], counts[1], counts[2], counts[3], counts[4]);
		size_t shown = 0, lim = nv->opt->top;
		for (size_t i = 0; i < d.n && shown < lim; i++) {
			const struct drow *r = &d.r[i];
			const char *st = status(r);
			if (!strcmp(st, "same"))
				continue;
			if (!shown)
				fputs("\nby change in bytes allocated:\n", out);
			shown++;
			fmt_delta(c, sizeof(c), 0, r->v[0][0], r->v[1][0]);
			fprintf(out, "%3zu. %-6s %s  %s\n", shown, st, c, r->label);
			fmt_fig(a, sizeof(a), 1, r->v[0][1]);
			fmt_fig(b, sizeof(b), 1, r->v[1][1]);
			fprintf(out, "     allocations %s -> %s;", a, b);
			fmt_fig(a, sizeof(a), 2, r->v[0][2]);
			fmt_fig(b, sizeof(b), 2, r->v[1][2]);
			fprintf(out, " live %s -> %s\n", a, b);
		}
		if (fail_pct >= 0)
			fprintf(out, "\n--fail-if-growth %g%%: %s\n", fail_pct,
				grew ? "FAILED, a total grew more" : "passed");
	}
	for (size_t i = 0; i < d.n; i++) {
		free(d.r[i].stack);
		free(d.r[i].label);
	}
	free(d.r);
	mt_map_free(&d.idx);
	return grew;
}
