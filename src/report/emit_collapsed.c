/* emit_collapsed: the "collapsed stacks" (folded) format that
 * flamegraph.pl, inferno and speedscope read: one line per stack, frames
 * root-first separated by ';', a space, then an integer value (--value:
 * bytes allocated, allocations, or bytes live at the end).
 *
 * Frames are function names, inlined functions expanded (outermost
 * first); a frame without a symbol prints as module+0xoffset.  Sites that
 * name the same stack this way (two call sites on different lines of one
 * function) are summed into one line; lines are sorted by stack so that
 * the output is stable; zero values are left out. */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

struct line {
	char *stack;
	uint64_t value;
};

struct sbuf {
	char *p;
	size_t n, cap;
};

static void put(struct sbuf *b, const char *s)
{
	size_t k = strlen(s);
	mt_grow(&b->p, &b->cap, b->n + k + 1, 1);
	for (size_t i = 0; i < k; i++) {
		char c = s[i];
		/* ';' separates frames and a newline ends the line */
		b->p[b->n++] = c == ';' ? ':' : (c == '\n' || c == '\r') ? ' ' : c;
	}
	b->p[b->n] = '\0';
}

static void sep(struct sbuf *b)
{
	mt_grow(&b->p, &b->cap, b->n + 2, 1);
	b->p[b->n++] = ';';
	b->p[b->n] = '\0';
}

/* The frame names of a site, root first, separated by ";" (malloc'd). */
void mt_collapsed_stack(const struct mt_view *v, uint32_t site, char **out)
{
	const struct mt_site *s = &v->agg->sites[site];
	struct sbuf b = { NULL, 0, 0 };

	put(&b, "");
	if (!s->depth) {
		put(&b, "[unknown stack]");
		*out = b.p;
		return;
	}
	uint32_t trim = mt_site_trim(v->agg, s);
	for (uint32_t i = s->depth; i-- > trim;) {
		const struct mt_frame *f = &s->frames[i];
		struct mt_symframe sf[16];
		int n = mt_symbols_lookup(v->sym, f, sf, 16);
		bool named = false;
		for (int q = n; q-- > 0;) {
			if (!sf[q].function)
				continue;
			if (b.n)
				sep(&b);
			put(&b, sf[q].function);
			named = true;
		}
		if (!named) {
			char buf[1024];
			mt_view_frame(v, f, buf, sizeof(buf));
			if (b.n)
				sep(&b);
			put(&b, buf);
		}
	}
	*out = b.p;
}

uint64_t mt_site_value(const struct mt_vsite *s, enum mt_value what)
{
	double x;

	switch (what) {
	case MT_VALUE_COUNT: x = mt_est_count(&s->alloc); break;
	case MT_VALUE_LIVE: x = mt_est_bytes(&s->live); break;
	case MT_VALUE_LIVE_COUNT: x = mt_est_count(&s->live); break;
	default: x = mt_est_bytes(&s->alloc); break;
	}
	return x > 0 ? (uint64_t)llround(x) : 0;
}

static int line_cmp(const void *x, const void *y)
{
	return strcmp(((const struct line *)x)->stack, ((const struct line *)y)->stack);
}

void mt_emit_collapsed(FILE *out, struct mt_view *const *views, size_t nv)
{
	struct line *l = NULL;
	size_t n = 0, cap = 0;

	for (size_t k = 0; k < nv; k++) {
		const struct mt_view *v = views[k];
		for (size_t i = 0; i < v->nsites; i++) {
			uint64_t x = mt_site_value(&v->sites[i], v->opt->value);
			if (!x)
				continue;
			mt_grow(&l, &cap, n + 1, sizeof(*l));
			mt_collapsed_stack(v, v->sites[i].site, &l[n].stack);
			l[n++].value = x;
		}
	}
	mt_sort(l, n, sizeof(*l), line_cmp);
	for (size_t i = 0; i < n;) {
		uint64_t sum = 0;
		size_t e = i;
		while (e < n && !strcmp(l[e].stack, l[i].stack))
			sum = mt_add64(sum, l[e++].value);
		fprintf(out, "%s %" PRIu64 "\n", l[i].stack, sum);
		for (; i < e; i++)
			free(l[i].stack);
	}
	free(l);
}
