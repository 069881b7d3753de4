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
	int busy;                /* 1 while someone appends or flushes (atomic) */
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

/* Monotonic time in ns (clock_gettime through the vDSO). */
static inline uint64_t mt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Takes the writer; returns false if it stays busy for `wait_ns` (0 =
 * don't wait).  Only the exit-time flusher of other threads waits. */
bool mt_shard_lock_wait(struct mt_shard_writer *w, uint64_t wait_ns);
static inline bool mt_shard_lock(struct mt_shard_writer *w, uint64_t wait_ns)
{
	if (MT_LIKELY(!__atomic_exchange_n(&w->busy, 1, __ATOMIC_ACQUIRE)))
		return true;
	return mt_shard_lock_wait(w, wait_ns);
}

static inline void mt_shard_unlock(struct mt_shard_writer *w)
{
	__atomic_store_n(&w->busy, 0, __ATOMIC_RELEASE);
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
