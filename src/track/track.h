/* track: per-thread state and the thread lifecycle (first allocation,
 * thread exit, fork), and later the sampling policies and stack capture. */
#ifndef MT_TRACK_H
#define MT_TRACK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"

struct mtalloc_stats;

enum mt_thread_state {
	MT_THREAD_NEW = 0,  /* no allocation yet: `left` is 0 */
	MT_THREAD_READY,    /* set up, counting */
	MT_THREAD_FINISHED, /* our key destructor ran: pass straight through */
};

/* All per-thread state, hot fields first.  `left` is the one combined test
 * of the fast path: an allocation of n bytes goes to the slow path when
 * subtracting n from it borrows, and everything rare (thread not set up,
 * sampling due) is expressed by making `left` small.  The allocation count
 * is not kept here: jemalloc counts requests per arena, and each thread has
 * an arena of its own (mt_backend_requests). */
struct mt_tls {
	uint64_t left;   /* bytes until the next slow-path call */
	uint64_t nfree;  /* frees of non-NULL pointers (count) */
	uint32_t guard;  /* reentrancy depth: >0 while mtalloc itself runs */
	uint8_t state;   /* enum mt_thread_state */
	int slot;        /* backend arena slot, -1 for none */
	uint64_t req_base; /* the arena's request count at binding (count) */
	uint64_t *je_allocated;   /* jemalloc's counter for this thread (bytes) */
	uint64_t *je_deallocated; /* likewise, bytes freed */
	struct mt_tls *next, *prev; /* registry of live threads */
};

extern __thread struct mt_tls mt_tls
	__attribute__((tls_model("initial-exec"))) MT_HIDDEN;

/* The slow path's bookkeeping: initialises the process and the thread when
 * needed and rearms `left`.  Called with the guard clear. */
void mt_thread_slow(struct mt_tls *t);

/* Fills *st with the current figures (see mtalloc_stats_get). */
void mt_thread_stats(struct mtalloc_stats *st);

#endif
