/* The tracked arena: sampled objects live in a jemalloc arena whose extents
 * are carved from one address range reserved at start-up, low in the
 * address space.  free() then recognises a sampled pointer, and NULL, with
 * one comparison against mt_tracked_limit: everything jemalloc hands out
 * otherwise comes from mmap, far above the range.
 *
 * Tracked objects are allocated and freed with the tracked arena's flags and
 * an explicit tcache of their own (one per thread, tcache.create) or
 * MALLOCX_TCACHE_NONE, never through a thread's normal tcache, which would
 * leak tracked memory into plain allocations.  The explicit tcache saves a
 * slab allocation per sample: callgrind, sample:all, malloc(64)+free
 * loop: 1,490 instructions per tracked allocation with TCACHE_NONE. */
#include "config.h"

#include "backend.h"

#include <errno.h>
#include <jemalloc/jemalloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define RANGE_SIZE ((uintptr_t)64 << 30) /* bytes reserved (MAP_NORESERVE) */

uintptr_t mt_tracked_limit = 1; /* until the range exists, only NULL */
static uintptr_t base, end;
static _Atomic uintptr_t next; /* bump pointer of the hooks */
static int arena_flag;         /* MALLOCX_ARENA of the tracked arena */

static void *hook_alloc(extent_hooks_t *h, void *new_addr, size_t size,
			size_t alignment, bool *zero, bool *commit,
			unsigned arena_ind)
{
	uintptr_t cur = atomic_load_explicit(&next, memory_order_relaxed), at;

	(void)h;
	(void)arena_ind;
	if (new_addr)
		return NULL; /* jemalloc can do without a fixed address */
	if (alignment == 0 || (alignment & (alignment - 1)))
		return NULL;
	do {
		at = (cur + alignment - 1) & ~(uintptr_t)(alignment - 1);
		if (at < cur || at > end || end - at < size)
			return NULL; /* range exhausted: the sample goes untracked */
	} while (!atomic_compare_exchange_weak_explicit(
		&next, &cur, at + size, memory_order_relaxed,
		memory_order_relaxed));
	*zero = true;   /* fresh anonymous pages read as zero */
	*commit = true; /* the range is mapped read-write */
	return (void *)at;
}

/* Returning true opts out: jemalloc keeps the extent for reuse (retain). */
static bool hook_dalloc(extent_hooks_t *h, void *addr, size_t size,
			bool committed, unsigned arena_ind)
{
	return true;
}

static void hook_destroy(extent_hooks_t *h, void *addr, size_t size,
			 bool committed, unsigned arena_ind)
{
	madvise(addr, size, MADV_DONTNEED);
}

static bool hook_commit(extent_hooks_t *h, void *addr, size_t size,
			size_t offset, size_t length, unsigned arena_ind)
{
	return false; /* always committed */
}

static bool hook_decommit(extent_hooks_t *h, void *addr, size_t size,
			  size_t offset, size_t length, unsigned arena_ind)
{
	return true; /* opt out: stays committed */
}

static bool hook_purge_lazy(extent_hooks_t *h, void *addr, size_t size,
			    size_t offset, size_t length, unsigned arena_ind)
{
	return madvise((char *)addr + offset, length, MADV_FREE) != 0;
}

static bool hook_purge_forced(extent_hooks_t *h, void *addr, size_t size,
			      size_t offset, size_t length, unsigned arena_ind)
{
	return madvise((char *)addr + offset, length, MADV_DONTNEED) != 0;
}

static bool hook_split(extent_hooks_t *h, void *addr, size_t size,
		       size_t size_a, size_t size_b, bool committed,
		       unsigned arena_ind)
{
	return false;
}

static bool hook_merge(extent_hooks_t *h, void *addr_a, size_t size_a,
		       void *addr_b, size_t size_b, bool committed,
		       unsigned arena_ind)
{
	return false; /* both halves lie in our range */
}

static extent_hooks_t hooks = {
	hook_alloc, hook_dalloc, hook_destroy, hook_commit, hook_decommit,
	hook_purge_lazy, hook_purge_forced, hook_split, hook_merge,
};

static bool try_range(uintptr_t at, uintptr_t size)
{
	void *want = (void *)at;
	void *got = mmap(want, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (got == want) {
		base = at;
		end = at + size;
		atomic_store(&next, base);
		return true;
	}
	if (got != MAP_FAILED)
		munmap(got, size);
	return false;
}

/* Valgrind gives the program's mappings low addresses (from 64 MiB up) and
 * its preload is in LD_PRELOAD. */
static bool under_valgrind(void)
{
	const char *pre = secure_getenv("LD_PRELOAD");

	return pre && strstr(pre, "/vgpreload_");
}

/* Reserves the range at the first free candidate address: low, so that
 * `p < limit` holds for no pointer jemalloc maps itself, but above the
 * program image and brk of a non-PIE program.  Under valgrind, whose
 * mappings start at 64 MiB, the range is the 48 MiB below that. */
static int reserve(void)
{
	static const uintptr_t candidates[] = {
		(uintptr_t)1 << 40, (uintptr_t)2 << 40, (uintptr_t)4 << 40,
		(uintptr_t)8 << 40, (uintptr_t)1 << 39, (uintptr_t)16 << 40,
	};

	if (under_valgrind())
		return try_range((uintptr_t)16 << 20, (uintptr_t)48 << 20) ? 0 : -ENOMEM;
	for (size_t i = 0; i < MT_ARRAY_SIZE(candidates); i++)
		if (try_range(candidates[i], RANGE_SIZE))
			return 0;
	return -ENOMEM;
}

int mt_backend_tracked_init(void)
{
	extent_hooks_t *hp = &hooks;
	unsigned arena;
	size_t len = sizeof(arena);
	int err;

	if (base)
		return 0;
	err = reserve();
	if (err)
		return err;
	/* jemalloc calls hook_alloc from arenas.create itself (metadata). */
	err = mtje_mallctl("arenas.create", &arena, &len, &hp, sizeof(hp));
	if (err) {
		munmap((void *)base, end - base);
		base = end = 0;
		return -err;
	}
	arena_flag = MALLOCX_ARENA(arena);
	__atomic_store_n(&mt_tracked_limit, end, __ATOMIC_RELEASE);
	return 0;
}

bool mt_backend_tracked(const void *p)
{
	return (uintptr_t)p >= base && (uintptr_t)p < end;
}

uintptr_t mt_backend_tracked_base(void)
{
	return base;
}

int mt_backend_tracked_tcache(void)
{
	unsigned id;
	size_t len = sizeof(id);

	if (!base || mtje_mallctl("tcache.create", &id, &len, NULL, 0))
		return -1;
	return (int)id;
}

void mt_backend_tracked_tcache_destroy(int tcache)
{
	unsigned id = (unsigned)tcache;

	if (tcache >= 0)
		mtje_mallctl("tcache.destroy", NULL, NULL, &id, sizeof(id));
}

static int tcache_flag(int tcache)
{
	return tcache >= 0 ? MALLOCX_TCACHE(tcache) : MALLOCX_TCACHE_NONE;
}

void *mt_backend_tracked_alloc(size_t size, size_t align, bool zero, int tcache)
{
	int f = arena_flag | tcache_flag(tcache);

	if (!base)
		return NULL;
	if (align > 16)
		f |= MALLOCX_LG_ALIGN(__builtin_ctzl(align));
	if (zero)
		f |= MALLOCX_ZERO;
	void *p = mtje_mallocx(size ? size : 1, f);
	if (p && !mt_backend_tracked(p)) {
		/* Cannot happen with the flags above; never hand out a pointer
		 * that free() would misroute. */
		mtje_dallocx(p, MALLOCX_TCACHE_NONE);
		return NULL;
	}
	return p;
}

void mt_backend_tracked_free(void *p, int tcache)
{
	mtje_dallocx(p, tcache_flag(tcache));
}

size_t mt_backend_tracked_usable(const void *p)
{
	return mtje_malloc_usable_size(p);
}
