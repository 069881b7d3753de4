/* The shard format: the single source of truth for the writer (libmtalloc),
 * the reader (mtreport, tests) and doc/format.md.  Change them together,
 * with the golden files.
 *
 * A shard is one file written by one thread of one process:
 *
 *   file header   16 bytes: MT_SHARD_MAGIC (8 bytes), u16 major, u16 minor,
 *                 u32 flags (written 0; readers ignore bits they do not
 *                 know), all little-endian
 *   chunk*        each: a 24-byte chunk header, then `length` bytes of
 *                 payload, a sequence of msgpack records
 *
 * A chunk is written with one write(2); a crash loses at most the chunk
 * being written, and the reader detects a torn or corrupt chunk by its
 * checksums, skips it (resynchronising on the next chunk magic) and goes on.
 * Every chunk is self-contained: delta-coded fields restart at its first
 * record (MT_REC_CHUNK), so any chunk decodes without the ones before it,
 * except that stack and module ids refer to records of earlier chunks of
 * the same shard. */
#ifndef MT_SHARD_FORMAT_H
#define MT_SHARD_FORMAT_H

#include <stdint.h>

#define MT_SHARD_MAGIC "MTSHARD\0"   /* 8 bytes, NUL included */
#define MT_SHARD_MAJOR 1             /* readers reject a newer major */
#define MT_SHARD_MINOR 0             /* new minors only add keys/kinds */
#define MT_SHARD_FILE_HEADER 16      /* bytes */
#define MT_SHARD_SUFFIX ".mts"

#define MT_CHUNK_MAGIC 0x4b43544du   /* "MTCK" as a little-endian u32 */
#define MT_CHUNK_HEADER 24           /* bytes */
#define MT_CHUNK_MAX (16u << 20)     /* largest payload a reader accepts */

/* Chunk header, little-endian, 24 bytes:
 *   u32 magic     MT_CHUNK_MAGIC
 *   u32 length    payload bytes (<= MT_CHUNK_MAX)
 *   u32 seq       chunk number in this shard: 0, 1, 2, ...
 *   u32 crc       CRC-32C of the payload
 *   u32 reserved  0
 *   u32 hcrc      CRC-32C of the 20 bytes before it */

/* Records.  Each is a msgpack array whose first element is the kind; a
 * reader skips kinds it does not know and ignores extra trailing elements
 * (that is how minor versions extend the format; kinds added by later
 * minors carry no delta fields, and an optional element followed by newer
 * ones is written as nil when absent).  Fields marked d are deltas from the
 * same field of the previous record in the chunk that has it (from the
 * MT_REC_CHUNK base for the first); the writer emits them as unsigned
 * integers, readers add them modulo 2^64.  Times are nanoseconds of
 * CLOCK_MONOTONIC; sizes are bytes; addr fields are scaled (below); str
 * values are the bytes as found (paths need not be UTF-8).  Chunk 0 starts
 * with MT_REC_CHUNK, then MT_REC_HEADER. */
enum mt_rec_kind {
	/* [1, {map}]: who wrote this shard; the record after the MT_REC_CHUNK
	 * of chunk 0.  Keys (strings): see MT_KEY_* below; pid, policy and
	 * addr_base are always present. */
	MT_REC_HEADER = 1,
	/* [2, module_id, path, build_id (bin, may be empty), base, size]:
	 * a loaded object; base is its load bias (dlpi_addr), size the end of
	 * its last PT_LOAD segment relative to base (for a non-PIE program,
	 * base is 0 and the range starts at 0).  Ids are the process's module
	 * numbers; stacks refer to modules by address, not by id. */
	MT_REC_MODULE = 2,
	/* [3, stack_id, [pc, ...]]: an interned call stack, innermost first,
	 * return addresses as captured (the reader subtracts 1 to symbolize
	 * a call site).  Ids are unique within the shard. */
	MT_REC_STACK = 3,
	/* [4, d seq, d time, addr, size, slack, stack_id (, weight)]:
	 * a sampled allocation.  seq is the process-wide event number;
	 * slack = usable size - size; weight (float) is 1/p, the number of
	 * allocations this record stands for, omitted when the policy
	 * determines it (poisson: 1/(1-exp(-size/mean)) of the record's size,
	 * which is never 0: a 0-byte allocation is never sampled by poisson;
	 * all: 1). */
	MT_REC_ALLOC = 4,
	/* [5, d seq, d time, addr, alloc_seq]: the free of a sampled
	 * allocation, by this shard's thread; alloc_seq is the seq of the
	 * MT_REC_ALLOC it ends (which may be in any shard of the process or
	 * of its parent, for objects inherited across fork: the child's seq
	 * counter continues the parent's, so an alloc_seq at or below the child's
	 * fork_seq header key refers to the parent). */
	MT_REC_FREE = 5,
	/* [6, d time, allocs, frees, bytes_allocated, bytes_freed, shared]:
	 * this thread's exact cumulative totals at a flush (counts and bytes
	 * as in mtalloc.h); shared (bool) says the thread's arena was shared,
	 * so its allocs are the arena's. */
	MT_REC_TOTALS = 6,
	/* [14, d time, [[size_class_bytes, requests], ...]]: the process's
	 * exact allocation requests per jemalloc size class (classes with
	 * requests only), cumulative, written at flushes. */
	MT_REC_CLASSES = 14,
	/* [7, d time, allocated, active, resident, mapped, live_estimate]
	 * (all uint):
	 * process memory (bytes, jemalloc's statistics) and the estimated
	 * live bytes from sampled objects (sum of weight x size over the
	 * sampled objects not yet freed), at a point in time. */
	MT_REC_TIMELINE = 7,
	/* [8, d time, label]: mtalloc_mark(label). */
	MT_REC_MARK = 8,
	/* [9, d time, name]: the thread's name changed. */
	MT_REC_THREAD_NAME = 9,
	/* [10, records, bytes]: records dropped (buffer or write failures)
	 * since the previous such record. */
	MT_REC_DROPPED = 10,
	/* [11, tid, name, allocs, frees, bytes_allocated, bytes_freed]:
	 * totals of a thread that exited without a shard of its own (it had no
	 * sampled record); written into the shard of the thread that reports
	 * them (any thread of the same process). */
	MT_REC_THREAD_EXIT = 11,
	/* [12, seq_base, time_base]: first record of every chunk: the bases
	 * of the chunk's deltas. */
	MT_REC_CHUNK = 12,
	/* [13, d time, reason]: the thread's last record (reason: "exit",
	 * "process-exit", "fork"). */
	MT_REC_END = 13,
};

/* Keys of the MT_REC_HEADER map.  Readers ignore keys they do not know. */
#define MT_KEY_VERSION "mtalloc"      /* str: library version */
#define MT_KEY_HOST "host"            /* str: nodename */
#define MT_KEY_PID "pid"              /* uint */
#define MT_KEY_PPID "ppid"            /* uint */
#define MT_KEY_TID "tid"              /* uint: kernel thread id */
#define MT_KEY_THREAD "thread"        /* str: thread name */
#define MT_KEY_EXE "exe"              /* str: /proc/self/exe target */
#define MT_KEY_ARGV "argv"            /* [str...] */
#define MT_KEY_START_REAL "start_realtime_ns" /* uint: process start, epoch */
#define MT_KEY_START_MONO "start_mono_ns"     /* uint: same instant, monotonic */
#define MT_KEY_CLOCK "clock"          /* str: "monotonic" */
#define MT_KEY_POLICY "policy"        /* str: poisson | tiered | all | off */
#define MT_KEY_MEAN "mean"            /* uint: poisson mean interval, bytes */
#define MT_KEY_TIERS "tiers"          /* map: tiered parameters (below) */
#define MT_KEY_SEED "seed"            /* uint */
#define MT_KEY_DEPTH "stack_depth"    /* uint: frames at most */
#define MT_KEY_UNWIND "unwind"        /* str: libunwind | fp */
#define MT_KEY_SHARD_SEQ "shard"      /* uint: this shard's number in its process (0, 1, ...) */
/* tiered parameters: */
#define MT_KEY_LARGE "large"          /* uint: bytes; >= is always sampled */
#define MT_KEY_MEDIUM "medium"        /* uint: bytes; >= uses medium_rate */
#define MT_KEY_MEDIUM_RATE "medium_rate" /* float */
#define MT_KEY_SMALL_RATE "small_rate"   /* float */
#define MT_KEY_BOOST_THRESHOLD "boost_threshold" /* uint: allocations */
#define MT_KEY_BOOST_MAX "boost_max"  /* float */

#define MT_KEY_ADDR_BASE "addr_base"  /* uint: base of the addr fields */
#define MT_KEY_FORK_SEQ "fork_seq"    /* uint: seq counter at fork (a child with events before it) */
#define MT_KEY_BUFFER "buffer"        /* uint: chunk buffer size, bytes */

/* The addr field of MT_REC_ALLOC and MT_REC_FREE is
 * (address - addr_base) >> MT_ADDR_SHIFT, which keeps it within 32 bits
 * (5 msgpack bytes) for sampled objects. */
#define MT_ADDR_SHIFT 4

/* CRC-32C (Castagnoli), the chunk checksums.  Seed with 0. */
uint32_t mt_crc32c(uint32_t crc, const void *data, uint64_t len);

#endif
