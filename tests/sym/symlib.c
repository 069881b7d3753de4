/* symlib: a shared object for the symbolizer's tests; symprog loads it and
 * reports where symlib_leaf is (see symprog.c). */
#include "probe.h"

enum { LEAF_FIRST = __LINE__ + 1 };
PROBE_NOINLINE int symlib_leaf(int x, struct probe *p)
{
	PROBE(p);
	return x - 1;
}
enum { LEAF_LAST = __LINE__ - 1 };

/* symlib_leaf's first and last lines */
const int symlib_leaf_lines[2] = { LEAF_FIRST, LEAF_LAST };
