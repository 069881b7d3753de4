/* What jemalloc itself counts: exact per-thread bytes, process bytes, and
 * purging for malloc_trim. */
#include "config.h"

#include "backend.h"

#include <errno.h>
#include <stdint.h>

void mt_backend_thread_counters(uint64_t **allocated, uint64_t **deallocated)
{
	size_t len = sizeof(*allocated);

	if (mtje_mallctl("thread.allocatedp", allocated, &len, NULL, 0) ||
	    mtje_mallctl("thread.deallocatedp", deallocated, &len, NULL, 0)) {
		*allocated = NULL;
		*deallocated = NULL;
	}
}

static int read_size(const char *name, uint64_t *out)
{
	size_t v = 0, len = sizeof(v);
	int err = mtje_mallctl(name, &v, &len, NULL, 0);

	*out = v;
	return err ? -err : 0;
}

int mt_backend_process_bytes(uint64_t *allocated, uint64_t *active,
			     uint64_t *resident, uint64_t *mapped)
{
	uint64_t epoch = 1;
	size_t len = sizeof(epoch);
	int err;

	/* Writing the epoch makes jemalloc merge its per-arena statistics. */
	err = mtje_mallctl("epoch", &epoch, &len, &epoch, sizeof(epoch));
	if (err)
		return -err;
	err = read_size("stats.allocated", allocated);
	if (!err)
		err = read_size("stats.active", active);
	if (!err)
		err = read_size("stats.resident", resident);
	if (!err)
		err = read_size("stats.mapped", mapped);
	return err;
}

bool mt_backend_purge(void)
{
	uint64_t a, act, before = 0, after = 0, m;

	mt_backend_process_bytes(&a, &act, &before, &m);
	/* 4096 is MALLCTL_ARENAS_ALL: every arena at once. */
	if (mtje_mallctl("arena.4096.purge", NULL, NULL, NULL, 0))
		return false;
	mt_backend_process_bytes(&a, &act, &after, &m);
	return after < before;
}
