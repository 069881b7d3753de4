/* common: helpers shared by every part of libmtalloc (and by mtreport where
 * noted).  Nothing here allocates through the public malloc, uses stdio or
 * takes a lock. */
#ifndef MT_COMMON_H
#define MT_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_LIKELY(x) __builtin_expect(!!(x), 1)
#define MT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MT_HIDDEN __attribute__((visibility("hidden")))
#define MT_COLD __attribute__((noinline, cold))
#define MT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#ifdef MT_DEBUG
/* Cheap check that never allocates: reports file:line and aborts. */
#define MT_ASSERT(x) ((x) ? (void)0 : mt_assert_fail(#x, __FILE__, __LINE__))
#else
#define MT_ASSERT(x) ((void)0)
#endif

/* Formats like snprintf for %s %.*s %c %d %u %x %p %% with the l, ll and
 * z modifiers; never allocates; always NUL-terminates; returns bytes written. */
size_t mt_vfmt(char *buf, size_t size, const char *fmt, va_list ap);
size_t mt_fmt(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes one line "mtalloc: <message>\n" to standard error with write(2). */
void mt_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports a failed MT_ASSERT and aborts (debug builds only). */
void mt_assert_fail(const char *what, const char *file, int line)
	__attribute__((noreturn));

/* Arena policy chosen with MTALLOC=arenas:... */
enum mt_arena_mode {
	MT_ARENAS_PER_THREAD, /* one arena per live thread, up to a cap */
	MT_ARENAS_SHARED,     /* jemalloc's automatic arenas */
};

/* Sampling policy chosen with MTALLOC=sample:... (doc/sampling.md). */
enum mt_policy {
	MT_SAMPLE_POISSON, /* byte-based Poisson process, mean `mean` bytes */
	MT_SAMPLE_TIERED,  /* size tiers with a frequency boost */
	MT_SAMPLE_ALL,     /* every allocation */
	MT_SAMPLE_OFF,     /* no records, only exact totals */
};

/* Stack unwinder chosen with MTALLOC=unwind:... */
enum mt_unwind {
	MT_UNWIND_LIBUNWIND, /* unw_backtrace: works without frame pointers */
	MT_UNWIND_FP,        /* frame-pointer walk: cheaper, needs -fno-omit-fp */
};

/* Parameters of the tiered policy. */
struct mt_tiers {
	uint64_t large;           /* bytes: at least this is always sampled */
	uint64_t medium;          /* bytes: at least this uses medium_rate */
	double medium_rate;       /* probability */
	double small_rate;        /* probability */
	uint32_t boost_threshold; /* allocations of a class per boost step */
	double boost_max;         /* largest rate multiplier */
};

#define MT_PATH_MAX 1024

/* Everything MTALLOC / mtalloc_conf can set.  Defaults in mt_conf_default. */
struct mt_conf {
	bool off;                     /* track nothing beyond the counters */
	enum mt_arena_mode arenas;
	unsigned arena_cap;           /* count; 0 = default (from CPU count) */
	enum mt_policy policy;
	uint64_t mean;                /* bytes: poisson mean interval */
	struct mt_tiers tiers;
	uint64_t seed;                /* sampling seed; 0 = from time and tid */
	unsigned stack_depth;         /* frames at most */
	enum mt_unwind unwind;
	uint64_t buffer;              /* bytes: per-thread record buffer */
	uint64_t timeline_ms;         /* ms between timeline points; 0 = flushes only */
	char dir[MT_PATH_MAX];        /* output directory */
};

/* Fills *c with the defaults. */
void mt_conf_default(struct mt_conf *c);

/* Parses "key:value,key,..." into *c, option by option.  A malformed option
 * is reported with one line on stderr (naming `origin`, the option and the
 * expected form) and leaves that setting as it was.  Returns the number of
 * options rejected. */
int mt_conf_parse(struct mt_conf *c, const char *s, const char *origin);

/* Parses the value of a sample: option ("poisson:512k", "tiered", "all",
 * "off", ...) into *c; 0 or -EINVAL (c unchanged on error). */
int mt_conf_parse_sample(struct mt_conf *c, const char *v, size_t len);

/* Parses a size such as "512k", "4M", "1g" or "4096" into bytes; 0 on
 * success, -EINVAL on malformed or overflowing input. */
int mt_parse_size(const char *s, size_t len, uint64_t *out);

#endif
