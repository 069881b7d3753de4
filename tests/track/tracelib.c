/* tracelib: loaded by `trace dlopen` after start; its frames must be
 * resolvable from the shards (its module is recorded when it appears). */
#include <stdlib.h>

__attribute__((visibility("default"), noinline)) void **lib_alloc(int n)
{
	void **v = malloc((size_t)n * sizeof(void *));
	for (int i = 0; v && i < n; i++)
		v[i] = malloc(1700);
	return v;
}
