/* symbols: the report's one call site of the symbolizer (symbolize.h),
 * with a cache of every frame looked up.  Symbolization happens at render
 * time, for the frames the report shows; the aggregate keeps only
 * (module, offset) pairs. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "report/symbolize.h"

#define MAX_INLINE 16 /* source frames kept per address */

struct centry {
	uint32_t module;
	uint64_t offset;
	int n;
	struct mt_symframe f[MAX_INLINE];
};

struct mt_symbols {
	const struct mt_agg *agg;
	struct mt_symbolizer *sym;
	struct centry *v;
	size_t n, cap;
	struct mt_map idx;
};

struct mt_symbols *mt_symbols_new(const struct mt_agg *a, bool enabled,
				  const char *debug_path)
{
	struct mt_symbols *s;

	if (!enabled)
		return NULL;
	s = mt_xcalloc(1, sizeof(*s));
	s->agg = a;
	if (mt_sym_new(&s->sym, debug_path) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

int mt_symbols_lookup(struct mt_symbols *s, const struct mt_frame *f,
		      struct mt_symframe *out, int max)
{
	if (!s || f->module == MT_NO_MODULE || f->offset == 0)
		return 0;
	uint64_t k = mt_mix64(s->agg->modules[f->module].hash ^ mt_mix64(f->offset));
	uint32_t i;
	while ((i = mt_map_get(&s->idx, k)) != UINT32_MAX) {
		if (s->v[i].module == f->module && s->v[i].offset == f->offset)
			goto found;
		k = mt_mix64(k + 1);
	}
	mt_grow(&s->v, &s->cap, s->n + 1, sizeof(*s->v));
	i = (uint32_t)s->n++;
	struct centry *e = &s->v[i];
	const struct mt_module *m = &s->agg->modules[f->module];
	struct mt_sym_module sm = { m->path, m->build_id, m->build_id_len };
	struct mt_sym_frame fr[MAX_INLINE];
	memset(e, 0, sizeof(*e));
	e->module = f->module;
	e->offset = f->offset;
	/* a return address: look up the call instruction before it */
	e->n = mt_sym_lookup(s->sym, &sm, f->offset - 1, fr, MAX_INLINE);
	if (e->n < 0)
		e->n = 0;
	for (int j = 0; j < e->n; j++) {
		e->f[j].function = fr[j].function;
		e->f[j].file = fr[j].file;
		e->f[j].line = fr[j].line;
		e->f[j].inlined = fr[j].inlined;
	}
	mt_map_put(&s->idx, k, i);
found:;
	int n = s->v[i].n < max ? s->v[i].n : max;
	memcpy(out, s->v[i].f, (size_t)n * sizeof(*out));
	return n;
}

bool mt_symbols_module_found(struct mt_symbols *s, uint32_t module)
{
	if (!s || module == MT_NO_MODULE)
		return false;
	const struct mt_module *m = &s->agg->modules[module];
	struct mt_sym_module sm = { m->path, m->build_id, m->build_id_len };
	return mt_sym_module_found(s->sym, &sm);
}

void mt_symbols_free(struct mt_symbols *s)
{
	if (!s)
		return;
	mt_sym_free(s->sym);
	free(s->v);
	mt_map_free(&s->idx);
	free(s);
}
