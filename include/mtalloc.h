/* mtalloc: a jemalloc-backed allocator with built-in allocation tracking.
 *
 * Link with -lmtalloc (pkg-config --libs mtalloc) or preload libmtalloc.so;
 * the standard malloc family and C++ operator new/delete then come from
 * mtalloc.  This header declares the few functions mtalloc adds.  See
 * mtalloc(3). */
#ifndef MTALLOC_H
#define MTALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MTALLOC_VERSION_MAJOR 0
#define MTALLOC_VERSION_MINOR 1
#define MTALLOC_VERSION_PATCH 0

/* The library's version as "MAJOR.MINOR.PATCH". */
const char *mtalloc_version(void);

/* Exact counters of one scope (a thread or the whole process). */
struct mtalloc_counts {
	uint64_t allocs;          /* allocation requests served (count) */
	uint64_t frees;           /* frees of non-NULL pointers (count) */
	uint64_t bytes_allocated; /* cumulative bytes (usable sizes) */
	uint64_t bytes_freed;     /* cumulative bytes (usable sizes) */
};

struct mtalloc_stats {
	struct mtalloc_counts process; /* every thread, living and exited */
	struct mtalloc_counts thread;  /* the calling thread */
	uint64_t live_bytes;     /* bytes in allocations not yet freed */
	uint64_t active_bytes;   /* bytes in pages holding allocations */
	uint64_t resident_bytes; /* bytes of allocator memory in RAM */
	uint64_t mapped_bytes;   /* bytes mapped by the allocator */
	uint32_t threads_alive;  /* threads that have allocated and not exited */
	uint32_t arenas_created; /* per-thread arenas made so far */
	uint32_t arenas_in_use;  /* per-thread arenas bound to a live thread */
	uint32_t reserved_;
};

/* Fills *st (of `size` bytes: pass sizeof *st) with the current figures.
 * Counts are exact: allocations and frees are counted by mtalloc in the
 * thread (one add on the fast path each), bytes come from jemalloc's
 * per-thread counters (usable sizes).  A realloc that moves a block counts
 * as one allocation and one free.  Calls a thread makes after its exit
 * destructor ran count in `process` only.
 * Returns 0, or -1 with errno set (EINVAL for a NULL pointer or a size
 * smaller than the first two members). */
int mtalloc_stats_get(struct mtalloc_stats *st, size_t size);

/* Writes every thread's pending records, totals and a timeline point to
 * the shards now (threads busy writing are waited for a bounded time).
 * Returns 0, or -1 with errno EIO if some shard could not be written. */
int mtalloc_flush(void);

/* Records a labelled point in the memory timeline (the label is copied,
 * at most 1024 bytes), with the process's memory figures at that moment. */
void mtalloc_mark(const char *label);

/* Changes the sampling policy of every thread at run time, with the syntax
 * of the sample: option ("poisson:1m", "tiered", "all", "off").  Threads
 * pick it up on their next allocation.  Returns 0, or -1 with errno EINVAL
 * (malformed) or ENOTSUP (tracking is off or has no address range). */
int mtalloc_sample_set(const char *spec);

#ifdef __cplusplus
}
#endif

#endif /* MTALLOC_H */
