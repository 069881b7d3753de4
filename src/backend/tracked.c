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
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define RANGE_SIZE ((uintptr_t)64 << 30) /* bytes the range may grow to */

uintptr_t mt_tracked_limit = 1; /* until the range exists, only NULL */
static uintptr_t base, end;     /* the range we may grow into */
static _Atomic uintptr_t next;  /* [base, next) is mapped, by us, for jemalloc */
static int arena_flag;          /* MALLOCX_ARENA of the tracked arena */
static int arena_index = -1;    /* its index */
bool mt_backend_classes_ok;      /* jemalloc's size classes are mt_backend_class_of()'s */
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;

/* Maps [at, at + size) read-write exactly there, or fails.  A plain hint
 * (not MAP_FIXED_NOREPLACE, which valgrind does not know) that the kernel
 * honours when the place is free. */
static bool map_at(uintptr_t at, size_t size)
{
	void *got = mmap((void *)at, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (got == (void *)at)
		return true;
	if (got != MAP_FAILED)
		munmap(got, size);
	return false;
}

/* The range grows by mapping each extent on demand at its end, so that the
 * process's limits (RLIMIT_AS, RLIMIT_DATA, overcommit) apply to sampled
 * objects exactly as to the others: a sampled allocation never succeeds
 * where a plain one would fail.  Adjacent mappings merge into one. */
static void *hook_alloc(extent_hooks_t *h, void *new_addr, size_t size,
			size_t alignment, bool *zero, bool *commit,
			unsigned arena_ind)
{
	void *ret = NULL;

	(void)h;
	(void)arena_ind;
	if (new_addr || alignment == 0 || (alignment & (alignment - 1)))
		return NULL; /* jemalloc can do without a fixed address */
	pthread_mutex_lock(&grow_lock);
	uintptr_t cur = atomic_load_explicit(&next, memory_order_relaxed);
	uintptr_t at = (cur + alignment - 1) & ~(uintptr_t)(alignment - 1);
	if (at >= cur && at <= end && end - at >= size && map_at(cur, at - cur + size)) {
		atomic_store_explicit(&next, at + size, memory_order_release);
		ret = (void *)at;
	}
	pthread_mutex_unlock(&grow_lock);
	if (!ret)
		return NULL; /* the sample goes untracked */
	*zero = true;   /* fresh anonymous pages read as zero */
	*commit = true;
	return ret;
}

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

/* Valgrind gives the program's mappings low addresses (from 64 MiB up) and
 * its preload is in LD_PRELOAD. */
static bool under_valgrind(void)
{
	const char *pre = secure_getenv("LD_PRELOAD");

	return pre && strstr(pre, "/vgpreload_");
}

/* Above every address choose_range() can give the range: the last
 * candidate's end, or under valgrind the end of the fixed range below its
 * mappings.  Fixed before the range exists, so that a thread can take it
 * once at set-up (free()'s test, track.h); a plain block below it only
 * takes free()'s slow path, which tells it apart exactly. */
#define VALGRIND_BASE ((uintptr_t)16 << 20)
#define VALGRIND_END ((uintptr_t)64 << 20)
#define LAST_CANDIDATE ((uintptr_t)16 << 40)

uintptr_t mt_backend_tracked_bound(void)
{
	static uintptr_t bound; /* computed once; racing threads agree */
	uintptr_t b = __atomic_load_n(&bound, __ATOMIC_RELAXED);

	if (!b) {
		b = under_valgrind() ? VALGRIND_END : LAST_CANDIDATE + RANGE_SIZE;
		__atomic_store_n(&bound, b, __ATOMIC_RELAXED);
	}
	return b;
}

/* Chooses where the range grows: low in the address space, so that
 * `p < limit` holds for no pointer jemalloc maps itself (the kernel places
 * those top-down, just below the stack), but above the image and brk of a
 * non-PIE program.  The first page is mapped now, both to check the place
 * is free and for jemalloc's first extent.  Under valgrind, whose mappings
 * start at 64 MiB, the range is the 48 MiB below that. */
static int choose_range(void)
{
	static const uintptr_t candidates[] = {
		(uintptr_t)1 << 40, (uintptr_t)2 << 40, (uintptr_t)4 << 40,
		(uintptr_t)8 << 40, (uintptr_t)1 << 39, LAST_CANDIDATE,
	};
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	if (under_valgrind()) {
		if (!map_at(VALGRIND_BASE, page))
			return -ENOMEM;
		base = VALGRIND_BASE;
		end = VALGRIND_END;
	} else {
		size_t i = 0;
		while (i < MT_ARRAY_SIZE(candidates) && !map_at(candidates[i], page))
			i++;
		if (i == MT_ARRAY_SIZE(candidates))
			return -ENOMEM;
		base = candidates[i];
		end = base + RANGE_SIZE;
	}
	atomic_store(&next, base + page);
	return 0;
}

/* Checks mt_backend_class_of against jemalloc at every class boundary up to
 * MT_CLASSES_CHECKED (about 140 nallocx calls, once). */
static bool check_classes(void)
{
	if (mtje_nallocx(1, 0) != 16)
		return false;
	for (size_t c = 16; c < MT_CLASSES_CHECKED;) {
		size_t up = mtje_nallocx(c + 1, 0);
		if (mt_backend_class_of(c) != c || !up || mt_backend_class_of(c + 1) != up)
			return false;
		c = up;
	}
	return true;
}

size_t mt_backend_size_class_slow(size_t n)
{
	return mtje_nallocx(n ? n : 1, 0);
}

void mt_backend_tracked_fork_child(void)
{
	pthread_mutex_init(&grow_lock, NULL);
}

int mt_backend_tracked_init(void)
{
	extent_hooks_t *hp = &hooks;
	unsigned arena;
	size_t len = sizeof(arena);
	int err;

	if (base)
		return 0;
	err = choose_range();
	if (err)
		return err;
	/* jemalloc calls hook_alloc from arenas.create itself (metadata). */
	err = mtje_mallctl("arenas.create", &arena, &len, &hp, sizeof(hp));
	if (err) {
		munmap((void *)base, atomic_load(&next) - base);
		base = end = 0;
		return -err;
	}
	arena_flag = MALLOCX_ARENA(arena);
	arena_index = (int)arena;
	mt_backend_classes_ok = check_classes();
	__atomic_store_n(&mt_tracked_limit, end, __ATOMIC_RELEASE);
	return 0;
}

bool mt_backend_tracked(const void *p)
{
	return (uintptr_t)p >= base &&
	       (uintptr_t)p < atomic_load_explicit(&next, memory_order_acquire);
}

int mt_backend_tracked_arena(void)
{
	return arena_index;
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

void *mt_backend_tracked_alloc(size_t size, size_t align, bool zero, int tcache,
			       size_t *usable)
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
	/* Without alignment, the usable size is the size class: computed,
	 * not looked up (40 instructions a sample). */
	if (p)
		*usable = align <= 16 && mt_backend_classes_ok && size <= MT_CLASSES_CHECKED
				  ? mt_backend_class_of(size ? size : 1)
				  : mtje_malloc_usable_size(p);
	MT_ASSERT(!p || *usable == mtje_malloc_usable_size(p));
	return p;
}

void mt_backend_tracked_free(void *p, size_t size, size_t align, int tcache)
{
	int f = tcache_flag(tcache);

	if (align > 16)
		f |= MALLOCX_LG_ALIGN(__builtin_ctzl(align));
	/* Sized: jemalloc takes the class from the size instead of looking
	 * the block up in its radix tree (often a cache miss for a block
	 * freed long after its allocation). */
	mtje_sdallocx(p, size ? size : 1, f);
}

size_t mt_backend_tracked_usable(const void *p)
{
	return mtje_malloc_usable_size(p);
}
