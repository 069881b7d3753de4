/* shard reader: streams one shard file chunk by chunk, checks its framing
 * (file header, chunk headers, CRC-32C, chunk numbers), skips and counts
 * torn or corrupt chunks, and decodes the msgpack records into plain C
 * structs with the delta coding undone (absolute seq and time) and addr
 * fields turned back into addresses.  It is built as libmtshard.la for
 * mtreport and the tests; it is not part of libmtalloc.  format.h defines
 * the format and doc/format.md specifies it.
 *
 * Memory is bounded by one chunk payload (<= MT_CHUNK_MAX) plus one decoded
 * record; every count and length read from the file is checked against the
 * MT_SHARD_MAX_* bounds below before anything is allocated for it.
 *
 * Types are checked: a known field of the wrong msgpack type makes its
 * record malformed (counted, skipped).  uint fields take non-negative
 * integers, d fields any integer (added modulo 2^64), float fields floats
 * or integers; an alloc weight must be finite and > 0, and a nil weight
 * counts as absent.  A record with a d field before its chunk's
 * MT_REC_CHUNK, or after a d field that could not be read, is malformed.
 *
 * Typical use:
 *
 *	struct mt_shard_reader *r;
 *	const struct mt_shard_record *rec;
 *	int rc = mt_shard_reader_new(&r);
 *	if (rc == 0 && (rc = mt_shard_open(r, path)) == 0)
 *		while ((rc = mt_shard_next(r, &rec)) == 0 && rec)
 *			use(rec);
 *	if (rc < 0)
 *		fprintf(stderr, "mtreport: %s: %s\n", path, mt_shard_error(r));
 *	mt_shard_reader_free(r);
 */
#ifndef MT_SHARD_READER_H
#define MT_SHARD_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

/* Bounds on what one record may hold; a record beyond them is malformed. */
#define MT_SHARD_MAX_FRAMES 1024        /* pcs in one MT_REC_STACK */
#define MT_SHARD_MAX_STR (64u << 10)    /* bytes in one string or bin */
#define MT_SHARD_MAX_ARGV 4096          /* argv entries in the header */
#define MT_SHARD_MAX_CLASSES 4096       /* entries in one MT_REC_CLASSES */
#define MT_SHARD_MAX_OBJECTS (1u << 17) /* msgpack objects in one record */
#define MT_SHARD_MAX_DEPTH 16           /* msgpack nesting in a known kind */

/* A string from the file.  ptr is NUL-terminated (the file's bytes may
 * hold a NUL of their own: len is the true length) or NULL when absent. */
struct mt_shard_str {
	const char *ptr;
	uint32_t len; /* bytes, without the terminating NUL */
};

/* The sampling policy named by the header's "policy" key. */
enum mt_shard_policy {
	MT_SHARD_POLICY_UNKNOWN = 0, /* key absent or a name not below */
	MT_SHARD_POLICY_POISSON,
	MT_SHARD_POLICY_TIERED,
	MT_SHARD_POLICY_ALL,
	MT_SHARD_POLICY_OFF,
};

/* Bits of mt_shard_header.present: which keys the header had. */
enum mt_shard_header_key {
	MT_SHARD_H_VERSION = 1u << 0,
	MT_SHARD_H_HOST = 1u << 1,
	MT_SHARD_H_PID = 1u << 2,
	MT_SHARD_H_PPID = 1u << 3,
	MT_SHARD_H_TID = 1u << 4,
	MT_SHARD_H_THREAD = 1u << 5,
	MT_SHARD_H_EXE = 1u << 6,
	MT_SHARD_H_ARGV = 1u << 7,
	MT_SHARD_H_START_REAL = 1u << 8,
	MT_SHARD_H_START_MONO = 1u << 9,
	MT_SHARD_H_CLOCK = 1u << 10,
	MT_SHARD_H_POLICY = 1u << 11,
	MT_SHARD_H_MEAN = 1u << 12,
	MT_SHARD_H_TIERS = 1u << 13,
	MT_SHARD_H_SEED = 1u << 14,
	MT_SHARD_H_DEPTH = 1u << 15,
	MT_SHARD_H_UNWIND = 1u << 16,
	MT_SHARD_H_SHARD_SEQ = 1u << 17,
	MT_SHARD_H_ADDR_BASE = 1u << 18,
	MT_SHARD_H_BUFFER = 1u << 19,
	/* keys of the "tiers" map */
	MT_SHARD_H_LARGE = 1u << 20,
	MT_SHARD_H_MEDIUM = 1u << 21,
	MT_SHARD_H_MEDIUM_RATE = 1u << 22,
	MT_SHARD_H_SMALL_RATE = 1u << 23,
	MT_SHARD_H_BOOST_THRESHOLD = 1u << 24,
	MT_SHARD_H_BOOST_MAX = 1u << 25,
	MT_SHARD_H_FORK_SEQ = 1u << 26,
};

/* MT_REC_HEADER.  A member whose key was absent is 0 (or a NULL string). */
struct mt_shard_header {
	uint32_t present;                 /* MT_SHARD_H_* bits */
	struct mt_shard_str version;      /* mtalloc version */
	struct mt_shard_str host;         /* nodename */
	uint64_t pid, ppid, tid;          /* kernel ids */
	struct mt_shard_str thread;       /* thread name */
	struct mt_shard_str exe;          /* /proc/self/exe target */
	const struct mt_shard_str *argv;  /* argc entries */
	uint32_t argc;                    /* count */
	uint64_t start_realtime_ns;       /* ns since the epoch */
	uint64_t start_mono_ns;           /* ns, CLOCK_MONOTONIC, same instant */
	struct mt_shard_str clock;        /* "monotonic" */
	struct mt_shard_str policy_name;  /* as written */
	enum mt_shard_policy policy;      /* policy_name parsed */
	uint64_t mean;                    /* bytes: poisson mean interval */
	uint64_t large;                   /* bytes: tiered, always sampled */
	uint64_t medium;                  /* bytes: tiered, medium_rate */
	double medium_rate, small_rate;   /* probabilities */
	uint64_t boost_threshold;         /* allocations */
	double boost_max;                 /* factor */
	uint64_t seed;
	uint64_t stack_depth;             /* frames at most */
	struct mt_shard_str unwind;       /* "libunwind" | "fp" */
	uint64_t shard_seq;               /* this shard's number in its process */
	uint64_t addr_base;               /* base of the addr fields */
	uint64_t buffer;                  /* bytes: the writer's chunk buffer */
	uint64_t fork_seq;                /* child of a fork: the seq counter then */
};

/* MT_REC_MODULE */
struct mt_shard_module {
	uint64_t id;
	struct mt_shard_str path;
	const uint8_t *build_id;  /* build_id_len bytes (none: NULL) */
	uint32_t build_id_len;    /* bytes */
	uint64_t base;            /* load bias */
	uint64_t size;            /* bytes from base to the end of the last PT_LOAD */
};

/* MT_REC_STACK */
struct mt_shard_stack {
	uint64_t id;
	const uint64_t *pcs;  /* depth return addresses, innermost first */
	uint32_t depth;       /* count, <= MT_SHARD_MAX_FRAMES */
};

/* MT_REC_ALLOC (seq and time absolute, addr unscaled) */
struct mt_shard_alloc {
	uint64_t seq;        /* process-wide event number */
	uint64_t time_ns;    /* ns, CLOCK_MONOTONIC */
	uint64_t addr;       /* addr_base + (scaled << MT_ADDR_SHIFT) */
	uint64_t size;       /* bytes requested */
	uint64_t slack;      /* bytes: usable size - size */
	uint64_t stack_id;
	double weight;       /* allocations this record stands for */
	bool has_weight;     /* false: absent (or nil), the policy implies it */
};

/* MT_REC_FREE */
struct mt_shard_free {
	uint64_t seq;        /* process-wide event number */
	uint64_t time_ns;    /* ns, CLOCK_MONOTONIC */
	uint64_t addr;       /* unscaled as for an alloc */
	uint64_t alloc_seq;  /* seq of the MT_REC_ALLOC this free ends */
};

/* MT_REC_TOTALS: the thread's cumulative exact totals at a flush. */
struct mt_shard_totals {
	uint64_t time_ns;
	uint64_t allocs, frees;                 /* count */
	uint64_t bytes_allocated, bytes_freed;  /* bytes */
	bool shared;                            /* the arena was shared */
};

struct mt_shard_class {
	uint64_t size;      /* bytes: the size class */
	uint64_t requests;  /* count, cumulative */
};

/* MT_REC_CLASSES */
struct mt_shard_classes {
	uint64_t time_ns;
	const struct mt_shard_class *v;  /* n entries */
	uint32_t n;                      /* count, <= MT_SHARD_MAX_CLASSES */
};

/* MT_REC_TIMELINE: process memory at time_ns. */
struct mt_shard_timeline {
	uint64_t time_ns;
	uint64_t allocated, active, resident, mapped;  /* bytes */
	double live_estimate;  /* bytes (written as uint or float) */
};

/* MT_REC_MARK, MT_REC_THREAD_NAME and MT_REC_END: a time and a string
 * (label, name, reason). */
struct mt_shard_timed_str {
	uint64_t time_ns;
	struct mt_shard_str str;
};

/* MT_REC_DROPPED: since the previous such record. */
struct mt_shard_dropped {
	uint64_t records;  /* count */
	uint64_t bytes;    /* bytes */
};

/* MT_REC_THREAD_EXIT: totals of a thread without a shard of its own. */
struct mt_shard_thread_exit {
	uint64_t tid;
	struct mt_shard_str name;
	uint64_t allocs, frees;                 /* count */
	uint64_t bytes_allocated, bytes_freed;  /* bytes */
};

/* One decoded record.  Its strings and arrays point into the reader: they
 * stay valid until the next mt_shard_next, mt_shard_open, mt_shard_close or
 * mt_shard_reader_free on the same reader (copy what must live longer).
 * MT_REC_CHUNK records are consumed by the reader and never returned. */
struct mt_shard_record {
	enum mt_rec_kind kind;
	uint32_t chunk;         /* number (seq) of the chunk that held it */
	uint64_t chunk_offset;  /* bytes: file offset of that chunk's header */
	union {
		struct mt_shard_header header;            /* MT_REC_HEADER */
		struct mt_shard_module module;            /* MT_REC_MODULE */
		struct mt_shard_stack stack;              /* MT_REC_STACK */
		struct mt_shard_alloc alloc;              /* MT_REC_ALLOC */
		struct mt_shard_free free;                /* MT_REC_FREE */
		struct mt_shard_totals totals;            /* MT_REC_TOTALS */
		struct mt_shard_classes classes;          /* MT_REC_CLASSES */
		struct mt_shard_timeline timeline;        /* MT_REC_TIMELINE */
		struct mt_shard_timed_str mark;           /* MT_REC_MARK */
		struct mt_shard_timed_str thread_name;    /* MT_REC_THREAD_NAME */
		struct mt_shard_dropped dropped;          /* MT_REC_DROPPED */
		struct mt_shard_thread_exit thread_exit;  /* MT_REC_THREAD_EXIT */
		struct mt_shard_timed_str end;            /* MT_REC_END */
	} u;
};

/* What the reader met in the current file; all zero after mt_shard_open. */
struct mt_shard_stats {
	uint64_t file_bytes;         /* bytes: size of the file */
	uint16_t major, minor;       /* the file header's format version */
	uint32_t flags;              /* the file header's flags (ignored) */
	uint64_t chunks_read;        /* chunks whose checksums held (count) */
	uint64_t chunks_corrupt;     /* corrupt regions skipped (count) */
	uint64_t bytes_skipped;      /* bytes in those regions */
	uint64_t first_corrupt;      /* file offset of the first (if any) */
	uint64_t chunks_missing;     /* chunk numbers never seen (gaps, count) */
	uint64_t seq_backwards;      /* chunks numbered <= their predecessor */
	bool torn_tail;              /* the file ends inside a chunk */
	uint64_t torn_offset;        /* file offset where that chunk begins */
	uint64_t torn_bytes;         /* bytes from there to the end of file */
	uint64_t records;            /* records returned (count) */
	uint64_t records_unknown;    /* records of unknown kind skipped */
	uint64_t records_malformed;  /* records skipped as malformed */
	bool header_seen;            /* an MT_REC_HEADER was decoded */
};

struct mt_shard_reader; /* opaque; one file at a time, one thread at a time */

/* Allocates a reader with no file open.  0, or -ENOMEM. */
int mt_shard_reader_new(struct mt_shard_reader **out);

/* Closes any open file and frees the reader (NULL is fine). */
void mt_shard_reader_free(struct mt_shard_reader *r);

/* Opens the shard at `path` (closing any previous one) and checks its file
 * header.  0, or -errno with mt_shard_error() set: -ENODATA for an empty
 * file or one that ends inside the file header, -EINVAL when it is not a
 * shard (bad magic) or not a regular file, -EPROTONOSUPPORT for a newer
 * major version, or open(2)'s and read(2)'s own errors. */
int mt_shard_open(struct mt_shard_reader *r, const char *path);

/* Stores the next record in *rec (NULL at the end of the file).  Corrupt
 * chunks, a torn tail and bad records are skipped and counted in the stats,
 * not returned as errors.  0, or -errno for what stops reading (read(2)
 * errors, -ENOMEM, -EBADF when no file is open); an error repeats on every
 * later call until the next mt_shard_open. */
int mt_shard_next(struct mt_shard_reader *r,
		  const struct mt_shard_record **rec);

/* Closes the file; the stats and the header stay readable. */
void mt_shard_close(struct mt_shard_reader *r);

/* The problem behind the last error, as text without the file name ("" when
 * there was none). */
const char *mt_shard_error(const struct mt_shard_reader *r);

/* The first MT_REC_HEADER of the current file, copied (valid until the next
 * mt_shard_open or mt_shard_reader_free), or NULL before it is read. */
const struct mt_shard_header *mt_shard_header(const struct mt_shard_reader *r);

/* The counters of the current file. */
const struct mt_shard_stats *mt_shard_stats(const struct mt_shard_reader *r);

/* Writes into buf a one-line summary of the damage the stats record
 * ("2 corrupt chunks skipped (310 bytes from offset 40); torn tail ..."),
 * "" when there is none; snprintf's return value and truncation. */
int mt_shard_describe(const struct mt_shard_reader *r, char *buf, size_t size);

/* The number of allocations *a stands for: its own weight when present,
 * else what the header's policy implies (poisson: 1/(1-exp(-size/mean));
 * all: 1).  0, or -ENODATA when neither is known (no weight and no header,
 * another policy, or poisson without a mean), -EDOM for poisson with size
 * 0 (the formula is infinite). */
int mt_shard_alloc_weight(const struct mt_shard_header *h,
			  const struct mt_shard_alloc *a, double *weight);

/* A kind's lower-case name ("alloc", "thread-exit", ...), or NULL. */
const char *mt_shard_kind_name(int kind);

#endif
