/* backend: the private copy of jemalloc that does the real work, and the
 * per-thread arenas bound on top of it.
 *
 * libmtalloc links jemalloc's static PIC archive with every public name
 * renamed to mtje_<name> (Makefile.am, rule for jemalloc/libjemalloc_mt.a),
 * so the hot path calls jemalloc's own malloc/free fast path directly, the
 * library can set jemalloc's options, and no jemalloc name is exported. */
#ifndef MT_BACKEND_H
#define MT_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* jemalloc's public interface under its private names (jemalloc(3)). */
void *mtje_malloc(size_t size);
void *mtje_calloc(size_t n, size_t size);
void *mtje_realloc(void *p, size_t size);
void mtje_free(void *p);
int mtje_posix_memalign(void **out, size_t align, size_t size);
void *mtje_aligned_alloc(size_t align, size_t size);
size_t mtje_malloc_usable_size(const void *p);
void *mtje_mallocx(size_t size, int flags);
void *mtje_rallocx(void *p, size_t size, int flags);
void mtje_dallocx(void *p, int flags);
void mtje_sdallocx(void *p, size_t size, int flags);
/* Sized free without flags: jemalloc's own operator delete(void *, size_t)
 * entry, which takes the free fast path with the size class looked up from
 * `size` (no radix-tree walk); mtje_sdallocx has no fast path in 5.3.  Its
 * name keeps jemalloc's internal je_ prefix, which the rename leaves alone. */
void je_je_sdallocx_noflags(void *p, size_t size) MT_HIDDEN;
#define mtje_sdallocx_noflags je_je_sdallocx_noflags
size_t mtje_nallocx(size_t size, int flags);
int mtje_mallctl(const char *name, void *old, size_t *oldlen, void *new_,
		 size_t newlen);
int mtje_mallctlnametomib(const char *name, size_t *mib, size_t *miblen);
int mtje_mallctlbymib(const size_t *mib, size_t miblen, void *old,
		      size_t *oldlen, void *new_, size_t newlen);

/* jemalloc's flag encodings (jemalloc/jemalloc.h, stable since 4.0). */
#define MT_MALLOCX_LG_ALIGN(la) ((int)(la))
#define MT_MALLOCX_ZERO ((int)0x40)

/* The option string compiled into our jemalloc (jemalloc's malloc_conf),
 * documented with its measurements in doc/design.md. */
extern const char *mtje_malloc_conf;

/* Makes every small block 16-byte aligned (jemalloc's 8-byte class
 * otherwise aligns malloc(1..8) to 8 only); call once, right after
 * jemalloc's own initialisation.  False if jemalloc is not the version this
 * was written for (then nothing is changed). */
bool mt_backend_align16(void);

/* Reads the arena policy and resolves jemalloc names; called once from
 * mt_thread_init with the reentrancy guard set.  Never fails: without
 * per-thread arenas, threads use jemalloc's automatic arenas. */
void mt_backend_init(const struct mt_conf *conf);

/* Binds the calling thread to an arena: a recycled one, a new one below the
 * cap, or past the cap the least shared one.  Returns the slot number to
 * hand back at thread exit, or -1 when the thread stays on jemalloc's
 * automatic arenas.  Takes the backend lock but never holds it across a
 * jemalloc call. */
int mt_backend_thread_bind(void);

/* Gives back the slot of an exiting thread; the arena and its objects stay
 * alive (never arena.<i>.destroy an arena that held objects). */
void mt_backend_thread_release(int slot);

/* fork(2) handlers: the lock is held across fork, and in the child every
 * slot but the forking thread's (`keep`) becomes free again. */
void mt_backend_fork_prepare(void);
void mt_backend_fork_parent(void);
void mt_backend_fork_child(int keep);

/* Sets the most arenas made from now on (mallopt M_ARENA_MAX); 0 = none. */
void mt_backend_set_cap(unsigned n);

/* Arena figures: created by us, bound to at least one live thread. */
void mt_backend_arena_counts(unsigned *created, unsigned *in_use);

/* Pointers to jemalloc's per-thread cumulative byte counters (usable
 * sizes); both NULL if jemalloc was built without stats. */
void mt_backend_thread_counters(uint64_t **allocated, uint64_t **deallocated);

/* Process figures in bytes from jemalloc's stats (refreshes the epoch):
 * allocated, active, resident, mapped.  Returns 0 or -errno. */
int mt_backend_process_bytes(uint64_t *allocated, uint64_t *active,
			     uint64_t *resident, uint64_t *mapped);

/* Returns memory to the system (every arena's dirty pages); true if the
 * resident size went down. */
bool mt_backend_purge(void);

/* ---- the tracked arena (tracked.c) ---- */

/* free() sends every pointer below this to its slow path: NULL always, and
 * the tracked range once it exists.  Written once at initialisation. */
extern uintptr_t mt_tracked_limit MT_HIDDEN;

/* Chooses the tracked range and creates the tracked arena; 0 or -errno
 * (then nothing is tracked and mt_tracked_limit stays 1). */
int mt_backend_tracked_init(void);

/* An address above every place the tracked range can have, known before
 * it exists (free()'s per-thread bound, track.h). */
uintptr_t mt_backend_tracked_bound(void);

/* True when p lies in the tracked range. */
bool mt_backend_tracked(const void *p);

/* fork(2) child handler of the tracked range. */
void mt_backend_tracked_fork_child(void);

/* The tracked arena's index, -1 before initialisation. */
int mt_backend_tracked_arena(void);

/* Start of the tracked range (0 before initialisation). */
uintptr_t mt_backend_tracked_base(void);

/* Creates an explicit tcache for one thread's tracked objects; its id, or
 * -1 (then use -1 below: no tcache). */
int mt_backend_tracked_tcache(void);

/* Destroys a tcache made by mt_backend_tracked_tcache (thread exit). */
void mt_backend_tracked_tcache_destroy(int tcache);

/* Allocates `size` bytes aligned to `align` (a power of two) in the tracked
 * arena through `tcache` (or none if -1), zeroed if asked, and sets
 * *usable to the block's usable size; NULL when the range or memory is
 * exhausted. */
void *mt_backend_tracked_alloc(size_t size, size_t align, bool zero,
			       int tcache, size_t *usable);

/* jemalloc 5.3's size class of n bytes (n <= MT_CLASSES_CHECKED) with
 * 16-byte quanta (the 8-byte class is gone, mt_backend_align16) and four
 * classes per doubling: 16, 32, 48, 64, then 80, 96, 112, 128, 160, ...
 * the same formula for small and large classes.  Checked against
 * jemalloc at mt_backend_tracked_init (mt_backend_classes_ok). */
#define MT_CLASSES_CHECKED ((size_t)1 << 40)

static inline size_t mt_backend_class_of(size_t n)
{
	if (n <= 64)
		return n <= 16 ? 16 : (n + 15) & ~(size_t)15;
	unsigned lg = 63u - (unsigned)__builtin_clzll(n - 1); /* 2^lg < n */
	size_t delta = (size_t)1 << (lg - 2);
	return (n + delta - 1) & ~(delta - 1);
}

extern bool mt_backend_classes_ok MT_HIDDEN;
size_t mt_backend_size_class_slow(size_t n);

/* jemalloc's size class for a request of n bytes without alignment
 * (nallocx(n, 0); computed once the classes are checked). */
static inline size_t mt_backend_size_class(size_t n)
{
	if (MT_LIKELY(mt_backend_classes_ok && n <= MT_CLASSES_CHECKED))
		return mt_backend_class_of(n);
	return mt_backend_size_class_slow(n);
}

/* Frees a block returned by mt_backend_tracked_alloc(size, align, ...),
 * through the calling thread's `tcache` (or none if -1). */
void mt_backend_tracked_free(void *p, size_t size, size_t align, int tcache);

/* Usable size of a block returned by mt_backend_tracked_alloc. */
size_t mt_backend_tracked_usable(const void *p);

#endif
