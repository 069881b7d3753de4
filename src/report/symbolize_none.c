/* symbolize_none: a symbolizer that knows nothing, for builds configured
 * --without-symbols (and until src/report/symbolize.c, the libdwfl one,
 * is in the tree).  Every frame prints as module+offset. */
#include "config.h"

#include <stdlib.h>

#include "report/symbolize.h"

struct mt_symbolizer {
	int unused;
};

int mt_sym_new(struct mt_symbolizer **out, const char *debug_path)
{
	(void)debug_path;
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -12; /* -ENOMEM */
}

void mt_sym_free(struct mt_symbolizer *s)
{
	free(s);
}

int mt_sym_lookup(struct mt_symbolizer *s, const struct mt_sym_module *m,
		  uint64_t offset, struct mt_sym_frame *out, int max)
{
	(void)s, (void)m, (void)offset, (void)out, (void)max;
	return 0;
}

bool mt_sym_module_found(struct mt_symbolizer *s, const struct mt_sym_module *m)
{
	(void)s, (void)m;
	return false;
}
