/* track: per-thread state, the thread lifecycle (first allocation, thread
 * exit, fork, process exit), the sampling policies, stack capture and the
 * sampled objects. */
#ifndef MT_TRACK_H
#define MT_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "shard/shard.h"

struct mtalloc_stats;

enum mt_thread_state {
	MT_THREAD_NEW = 0,  /* no allocation yet: `left` is 0 */
	MT_THREAD_READY,    /* set up, counting */
	MT_THREAD_FINISHED, /* our key destructor ran: pass straight through */
};

/* free()'s one test is `p < flim`.  A set-up thread's flim is
 * mt_backend_tracked_bound(), above every address the tracked range can
 * have, so NULL and sampled blocks take the slow path; a thread not set up
 * yet (TLS starts with this value) or finished has MT_FLIM_UNSET, so every
 * free of it takes the slow path, which sets it up (or counts the late
 * free).  The same compare thus serves as the set-up test. */
#define MT_FLIM_UNSET UINTPTR_MAX

/* The most bytes between two slow-path visits when nothing is sampled, so
 * that a thread notices a policy change made at run time. */
#define MT_REARM_MAX ((uint64_t)256 << 20)

/* All per-thread state, hot fields first.  `left` is the one combined test
 * of the fast path: an allocation of n bytes goes to the slow path when
 * subtracting n from it borrows, and everything rare (thread not set up,
 * sampling due) is expressed by making `left` small.  Counts live here
 * because jemalloc's own (per-arena request counters) reach the arena only
 * when a thread cache is flushed. */
struct mt_tls {
	uint64_t left;   /* bytes until the next slow-path call */
	uint64_t nalloc; /* allocations (count) */
	uintptr_t flim;  /* frees below this take the slow path (above) */
	uint64_t nfree;  /* frees (count) */
	uint32_t guard;  /* reentrancy depth: >0 while mtalloc itself runs */
	uint8_t state;   /* enum mt_thread_state */
	bool sampling;   /* this thread records samples */
	int slot;        /* backend arena slot, -1 for none */
	uint64_t stamp;  /* unique per thread set-up: validates registry entries */
	struct mt_reg *reg; /* this thread's registry entry */
	uint64_t *je_allocated;   /* jemalloc's counter for this thread (bytes) */
	uint64_t *je_deallocated; /* likewise, bytes freed */
	/* sampling (sample.c) */
	uint32_t pending;    /* set by another thread: re-read the policy */
	uint32_t policy_gen; /* generation of the policy this thread uses */
	uint64_t rng;        /* xorshift64* state */
	uint32_t *class_freq; /* tiered: allocations per size class (decayed) */
	uint32_t since_decay; /* tiered: allocations since the last halving */
	uint32_t tid;        /* kernel thread id */
	int tcache;          /* explicit tcache for sampled objects + 1; 0 = none yet */
	struct mt_block_cache *blocks; /* freed sampled blocks kept (object.c) */
	uint64_t cache_alloc_bytes; /* bytes (usable) the block cache served, */
	uint64_t cache_free_bytes;  /* and took, that jemalloc did not count */
	int64_t live_pending; /* bytes: change of the live estimate not yet
			       * in the process total (object.c) */
	uint32_t *class_pending; /* sampled allocations per class not yet in
				  * the process counts (object.c), or NULL */
	uint32_t class_pending_n; /* allocations counted there (count) */
	uint64_t seq_spare;  /* an event number taken with this thread's last
			      * sampled allocation for its next free, while
			      * the thread has taken no other; 0: none
			      * (object.c) */
	struct mt_shard_writer w;     /* this thread's shard */
};

extern __thread struct mt_tls mt_tls
	__attribute__((tls_model("initial-exec"))) MT_HIDDEN;

/* ---- thread.c ---- */

/* Counts an allocation (n bytes asked, block p) or a free (block p) made on
 * the slow path by a thread that may not be set up: set-up threads count in
 * their TLS, others (start-up, after thread exit) in process counters. */
void mt_thread_count_alloc(struct mt_tls *t, const void *p);
void mt_thread_count_free(struct mt_tls *t, const void *p);

/* The slow path's bookkeeping: initialises the process and the thread when
 * needed.  Called with the guard clear; returns with `left` rearmed unless
 * sampling is due for this allocation (see mt_sample_decide). */
void mt_thread_slow(struct mt_tls *t);

/* Fills *st with the current figures (see mtalloc_stats_get). */
void mt_thread_stats(struct mtalloc_stats *st);

/* Flushes every thread's shard (mtalloc_flush); 0 or -errno. */
int mt_thread_flush_all(void);

/* Writes a mark and a timeline point into the calling thread's shard. */
void mt_thread_mark(const char *label);

/* Changes the sampling policy of every thread ("poisson:1m", "all", ...);
 * 0 or -EINVAL. */
int mt_thread_sample_set(const char *spec);

/* Writes a timeline point into w if the last one (any thread's) is older
 * than the configured interval at `now` (mt_now_ns). */
void mt_thread_timeline_tick(struct mt_shard_writer *w, uint64_t now);

/* ---- sample.c ---- */

/* The policy in force and its generation. */
void mt_sample_init(const struct mt_conf *conf);
/* Replaces the policy (policy, mean and tiers of *c) for every thread. */
void mt_sample_replace(const struct mt_conf *c);
/* Seeds and arms a new thread. */
void mt_sample_thread_init(struct mt_tls *t);
/* Decides whether the allocation of n bytes that sent thread t to the slow
 * path is sampled; returns its weight (1/p, > 0) or 0, and rearms `left`.
 * *omit_weight says the record may leave the weight out (poisson, all). */
double mt_sample_decide(struct mt_tls *t, size_t n, bool *omit_weight);
/* Stops sampling in thread t (its shard failed, or tracking is off). */
void mt_sample_stop(struct mt_tls *t);
/* A uniform double in [0, 1) from the thread's generator (tests, tiered). */
double mt_sample_uniform(struct mt_tls *t);

/* ---- stack.c ---- */

/* Notes the library's own text range, so captured stacks start at the
 * caller of the allocation function. */
void mt_stack_init(const struct mt_conf *conf);
/* Captures up to `max` return addresses of the caller, innermost first;
 * returns how many.  frame: the frame address of a function of libmtalloc
 * that the capture runs under, nearer to its caller (or NULL), where the
 * search for the caller's frame begins. */
unsigned mt_stack_capture(struct mt_tls *t, uintptr_t *pcs, unsigned max,
			  const void *frame);

/* ---- object.c ---- */

/* Allocates n bytes (aligned to align, a power of two >= 16; zeroed if
 * asked) as a sampled object of weight `weight` and records it.  NULL when
 * the tracked arena cannot serve it: the caller then allocates normally.
 * frame: as for mt_stack_capture. */
void *mt_track_alloc(struct mt_tls *t, size_t n, size_t align, bool zero,
		     double weight, bool omit_weight, const void *frame);
/* Records and frees a sampled object (p is in the tracked range). */
void mt_track_free(struct mt_tls *t, void *p);
/* Usable size of a sampled object. */
size_t mt_track_usable(const void *p);
/* Requested size of a sampled object. */
size_t mt_track_size(const void *p);
/* Sampled allocations whose size asks for this jemalloc size class. */
uint64_t mt_track_class_requests(uint64_t class_size);
/* The last event number given (process-wide). */
uint64_t mt_track_seq_now(void);
/* Estimated live bytes of sampled objects (sum of weight x size), with the
 * calling thread's own changes folded in first; other threads' last
 * changes, less than 64 KiB each, may be missing. */
uint64_t mt_track_live_estimate(struct mt_tls *self);
/* Adds what thread t has counted but not yet passed on (live estimate,
 * sampled allocations per class) to the process figures; with `release`,
 * frees its table too.  Only t itself may call it while t runs. */
void mt_track_fold(struct mt_tls *t, bool release);
/* Folds thread t's counts and releases its explicit tcache (thread exit). */
void mt_track_thread_exit(struct mt_tls *t);

#endif
