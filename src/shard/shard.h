/* shard: the per-thread record writer of libmtalloc.  Records are encoded
 * with msgpack-c's packer on a write callback into the thread's
 * preallocated buffer (never msgpack_sbuffer, which calls realloc); a full
 * buffer is written as one framed chunk with one write(2).  Every function
 * here runs with the calling thread's reentrancy guard set and, except
 * where noted, with the writer locked (mt_shard_lock). */
#ifndef MT_SHARD_H
#define MT_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/common.h"
#include "format.h"

/* What every shard header says about the process (filled by track). */
struct mt_shard_proc {
	uint32_t pid, ppid;
	char host[65];
	char exe[MT_PATH_MAX];  /* /proc/self/exe target */
	const char *exe_base;   /* last component of exe */
	char cmdline[2048];     /* argv, NUL-separated, truncated */
	size_t cmdline_len;     /* bytes */
	uint64_t start_real_ns; /* CLOCK_REALTIME at initialisation */
	uint64_t start_mono_ns; /* CLOCK_MONOTONIC at the same instant */
	char dir[MT_PATH_MAX];  /* output directory, %p expanded */
	const struct mt_conf *conf;
	uintptr_t addr_base;    /* base of the scaled addr fields */
	uint64_t fork_seq;      /* event counter when this process was forked (0: not) */
};

extern struct mt_shard_proc mt_shard_proc MT_HIDDEN;

struct mt_intern;

/* One shard being written; lives in struct mt_tls (zeroed = idle). */
struct mt_shard_writer {
	int busy;                /* 1 while the owner appends or flushes; of a
				  * shared writer, while anyone does (atomic) */
	int foreign;             /* 1 while another thread holds the writer
				  * (atomic; mt_shard_lock) */
	bool shared;             /* no owner: the process collector */
	bool failed;             /* a write failed: records are now dropped */
	bool created;            /* the file exists (header and chunk 0 written) */
	uint32_t tid;            /* kernel thread id; 0 = process collector */
	unsigned char *buf;      /* file header room + chunk header + payload */
	size_t cap;              /* bytes of buf */
	size_t len;              /* bytes used in buf, headers included */
	size_t limit;            /* bytes: a record of n bytes goes in without
				  * further checks while len + n <= limit;
				  * 0 while the chunk is empty (not started),
				  * the writer failed or has no buffer */
	uint32_t shard_no;       /* this shard's number in the process */
	uint32_t chunk_seq;      /* number of the chunk being filled */
	uint32_t chunk_records;  /* records in it (count) */
	uint64_t seq_last;       /* last seq written (delta base) */
	uint64_t time_last;      /* ns: last time written (delta base) */
	uint64_t dropped_records;  /* count, not yet reported in a record */
	uint64_t dropped_bytes;    /* bytes, likewise */
	unsigned modules_written;  /* module records written (count) */
	uint32_t next_stack_id;
	struct mt_intern *intern;  /* stack table */
	uintptr_t *last_pcs;     /* the last stack interned (MT_STACK_MAX) */
	uint32_t last_depth;     /* its frames (count); UINT32_MAX = none */
	uint32_t last_id;        /* its id */
	char name[96];           /* file name within the directory */
	char thread_name[16];    /* last name written */
};

/* Monotonic time in ns: CLOCK_MONOTONIC, interpolated by the time-stamp
 * counter where the kernel itself keeps time by it (its clocksource is
 * "tsc": invariant and synchronised across CPUs).  The vDSO's
 * clock_gettime orders its counter read with an lfence, which waits for
 * every load before it, cache misses included: on the sampled paths that
 * was a tenth of the time of sample:all (perf, churn).  Each thread keeps
 * an anchor (a clock_gettime reading and the counter at the same moment),
 * renewed every MT_TSC_SPAN ticks (about 50 ms); ticks become ns by a
 * process-wide ratio measured from start-up (mt_tsc_mult: ns per tick in
 * 32.32 fixed point; 0 until 20 ms have passed, or for good where the
 * counter is not the kernel's clock, and clock_gettime is read instead).
 * Renewals can step a thread's times back by the ratio's error over one
 * span (well under a microsecond): records carry non-negative deltas, so
 * such a step reads as 0.  doc/format.md, section 3, "Times". */
struct mt_clock {
	uint64_t tsc;  /* counter at the anchor */
	uint64_t ns;   /* CLOCK_MONOTONIC at the anchor */
};

#define MT_TSC_SPAN ((uint64_t)1 << 27) /* ticks: 54 ms at 2.5 GHz */

extern uint64_t mt_tsc_mult MT_HIDDEN;
extern __thread struct mt_clock mt_clock_tls MT_HIDDEN
	__attribute__((tls_model("initial-exec")));

/* Reads CLOCK_MONOTONIC, renews the anchor and the ratio. */
uint64_t mt_now_ns_slow(void);
/* Decides whether the counter may be used (reads the clocksource). */
void mt_clock_init(void);

static inline uint64_t mt_now_ns(void)
{
#if defined(__x86_64__)
	uint64_t m = __atomic_load_n(&mt_tsc_mult, __ATOMIC_RELAXED);
	if (MT_LIKELY(m)) {
		uint64_t d = __builtin_ia32_rdtsc() - mt_clock_tls.tsc;
		if (MT_LIKELY(d < MT_TSC_SPAN))
			return mt_clock_tls.ns + ((d * m) >> 32);
	}
#endif
	return mt_now_ns_slow();
}

/* Who may write a writer.  Its owner thread appends a record at every
 * sampled event; another thread takes it only to flush it (mtalloc_flush,
 * process exit), and anyone takes the shared collector.  So the owner's
 * side is made cheap and the other side pays (an asymmetric Dekker lock,
 * doc/design.md "Writers"): the owner marks itself busy with a plain
 * store and then reads `foreign`; another thread sets `foreign`, has
 * membarrier(2) run a full barrier on every thread of the process, then
 * waits for `busy` to clear.  Either the owner's store was seen, or the
 * owner, past the barrier, sees `foreign` and backs off.  Where the
 * process cannot register for membarrier's private expedited command (old
 * kernels, seccomp, valgrind, TSan builds), every side takes `busy` by an
 * atomic exchange instead.  mt_shard_sync_init decides, once, before any
 * writer is used. */
extern bool mt_shard_asym MT_HIDDEN;
void mt_shard_sync_init(void);
/* In a fork child (one thread): registers afresh or turns the asymmetric
 * lock off. */
void mt_shard_sync_fork_child(void);

/* Takes the writer from any thread; returns false if it stays held for
 * `wait_ns` (0 = don't wait).  Release with mt_shard_unlock. */
bool mt_shard_lock(struct mt_shard_writer *w, uint64_t wait_ns);
void mt_shard_unlock(struct mt_shard_writer *w);

/* Takes the calling thread's own writer: no locked instruction with the
 * asymmetric lock.  False when another thread holds it (or the owner
 * itself, interrupted by a signal).  Release with mt_shard_unlock_own. */
static inline bool mt_shard_lock_own(struct mt_shard_writer *w)
{
	if (MT_UNLIKELY(!mt_shard_asym))
		return !__atomic_exchange_n(&w->busy, 1, __ATOMIC_ACQUIRE);
	if (__atomic_load_n(&w->busy, __ATOMIC_RELAXED))
		return false;
	__atomic_store_n(&w->busy, 1, __ATOMIC_RELAXED);
	/* Program order only: the other side's membarrier orders the rest. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (MT_LIKELY(!__atomic_load_n(&w->foreign, __ATOMIC_ACQUIRE)))
		return true;
	__atomic_store_n(&w->busy, 0, __ATOMIC_RELEASE);
	return false;
}

static inline void mt_shard_unlock_own(struct mt_shard_writer *w)
{
	__atomic_store_n(&w->busy, 0, __ATOMIC_RELEASE);
}

/* mt_shard_lock_own, waiting up to wait_ns while another thread holds it. */
bool mt_shard_lock_own_wait(struct mt_shard_writer *w, uint64_t wait_ns);

/* Takes the calling thread's own writer to append a sampled record.  While
 * another thread flushes it, waits for the flush to end (at most
 * MT_SHARD_RECORD_WAIT_NS) where that can be told from the owner's own
 * hold (the asymmetric lock: `busy` is only ever the owner's); a record
 * that cannot be written then is counted as dropped. */
#define MT_SHARD_RECORD_WAIT_NS (100u * 1000 * 1000)
bool mt_shard_lock_record_slow(struct mt_shard_writer *w);
static inline bool mt_shard_lock_record(struct mt_shard_writer *w)
{
	if (MT_LIKELY(mt_shard_lock_own(w)))
		return true;
	return mt_shard_lock_record_slow(w);
}

/* Gets the writer ready for records (allocates its buffer on first use);
 * false when the writer failed or memory is short (the record is then
 * counted as dropped by the caller with mt_shard_drop). */
bool mt_shard_ready_slow(struct mt_shard_writer *w, uint32_t tid);
static inline bool mt_shard_ready(struct mt_shard_writer *w, uint32_t tid)
{
	if (MT_LIKELY(w->buf && !w->failed))
		return true;
	return mt_shard_ready_slow(w, tid);
}

/* Counts a record that could not be written. */
void mt_shard_drop(struct mt_shard_writer *w, size_t bytes);

/* Record appenders (format.h says what each field means).  `now` is the
 * record's time (mt_now_ns), read once by the caller.  weight < 0 omits
 * the weight. */
void mt_shard_put_alloc(struct mt_shard_writer *w, uint64_t seq, uint64_t now,
			uintptr_t addr, uint64_t size, uint64_t slack,
			uint32_t stack_id, double weight);
void mt_shard_put_free(struct mt_shard_writer *w, uint64_t seq, uint64_t now,
		       uintptr_t addr, uint64_t alloc_seq);
void mt_shard_put_totals(struct mt_shard_writer *w, uint64_t allocs,
			 uint64_t frees, uint64_t bytes_allocated,
			 uint64_t bytes_freed, bool shared);
void mt_shard_put_classes(struct mt_shard_writer *w, const uint64_t *sizes,
			  const uint64_t *requests, unsigned n);
void mt_shard_put_timeline(struct mt_shard_writer *w, uint64_t now,
			   uint64_t allocated, uint64_t active,
			   uint64_t resident, uint64_t mapped,
			   uint64_t live_estimate);
void mt_shard_put_mark(struct mt_shard_writer *w, const char *label);
void mt_shard_put_thread_name(struct mt_shard_writer *w, const char *name);
void mt_shard_put_thread_exit(struct mt_shard_writer *w, uint32_t tid,
			      const char *name, uint64_t allocs, uint64_t frees,
			      uint64_t bytes_allocated, uint64_t bytes_freed);
void mt_shard_put_end(struct mt_shard_writer *w, const char *reason);

/* The most frames a stack may have (stack_depth's bound). */
#define MT_STACK_MAX 256

/* Interns a stack (innermost first, n <= MT_STACK_MAX): returns its id,
 * writing the MT_REC_STACK record (and any module records not yet in this
 * shard) the first time. */
uint32_t mt_shard_stack(struct mt_shard_writer *w, const uintptr_t *pcs,
			unsigned n);

/* Writes the buffered records as one chunk (creating the file with its
 * header on the first chunk).  0, or -errno after which the writer is
 * failed and drops records. */
int mt_shard_flush(struct mt_shard_writer *w);

/* Frees the buffer and the stack table; the writer is idle again.  With
 * `forget`, pending records are discarded (fork child). */
void mt_shard_release(struct mt_shard_writer *w, bool forget);

/* Records dropped over the whole process (count). */
uint64_t mt_shard_dropped_total(void);

/* ---- loaded modules (modules.c) ---- */

struct mt_module {
	uintptr_t base;  /* load bias */
	uintptr_t size;  /* bytes from base to the end of the last PT_LOAD */
	char *path;
	unsigned char build_id[64];
	unsigned build_id_len;
};

/* Scans the loaded objects and adds those not yet known. */
void mt_modules_refresh(void);

/* True when pc lies in a known module. */
bool mt_modules_contain(uintptr_t pc);

/* Number of modules known (ids are 0..count-1, never reused). */
unsigned mt_modules_count(void);

/* Module `id` (< mt_modules_count()). */
const struct mt_module *mt_modules_get(unsigned id);

/* fork child: the table lock may have been held by another thread. */
void mt_modules_fork_child(void);

#endif
