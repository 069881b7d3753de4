/* mtreport: the offline analyser.  The report module reads shards (through
 * libmtshard) and aggregate files, folds them into one mergeable aggregate
 * (struct mt_agg), and renders views of it.
 *
 *   inputs.c    PATH arguments -> the list of files (directories expanded)
 *   ingest.c    shards -> aggregate: per process, a k-way merge of its
 *               shards by event number, fed by decode tasks on the pool
 *   pool.c      the worker pool (one worker per core)
 *   agg.c       the aggregate: interning, alloc/free accounting, merge
 *   aggfile.c   the aggregate file (mtreport merge -o): write and read
 *   view.c      aggregate + options -> the report model the emitters print
 *   symbols.c   the one call site of the symbolizer, cached per frame
 *   emit_text.c, emit_json.c   the renderers
 *   main.c      the command line
 *
 * Everything in an aggregate is exactly mergeable: estimates are kept as
 * integers (fixed point, each term rounded once when it is added), choices
 * between values ("the last TOTALS", "the latest thread name") are made by
 * a total order on the values themselves, so that merging aggregates in any
 * grouping gives identical results.  Indices inside an aggregate depend on
 * the order things were added and never reach the output. */
#ifndef MT_REPORT_H
#define MT_REPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/reader.h"

typedef unsigned __int128 mt_u128;
typedef __int128 mt_i128;

/* ---- utilities (util.c) ------------------------------------------------ */

/* malloc/calloc/realloc/strdup that exit(1) with "mtreport: out of memory". */
void *mt_xmalloc(size_t n);
void *mt_xcalloc(size_t n, size_t size);
void *mt_xrealloc(void *p, size_t n);
char *mt_xstrndup(const char *s, size_t n);
/* Grows *v (of *cap elements of `size` bytes) to hold at least `need`. */
void mt_grow(void *v, size_t *cap, size_t need, size_t size);

/* A 64-bit mix (splitmix64's finaliser) and a byte-string hash. */
uint64_t mt_mix64(uint64_t x);
uint64_t mt_hash_bytes(const void *p, size_t n, uint64_t seed);

/* qsort, for any n (qsort's pointer must not be NULL, even for n = 0). */
static inline void mt_sort(void *v, size_t n, size_t size,
			   int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(v, n, size, cmp);
}

/* Saturating additions. */
static inline uint64_t mt_add64(uint64_t a, uint64_t b)
{
	uint64_t r;
	return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}
static inline mt_u128 mt_add128(mt_u128 a, mt_u128 b)
{
	mt_u128 r = a + b;
	return r < a ? ~(mt_u128)0 : r;
}
static inline uint64_t mt_sub64(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}
static inline mt_u128 mt_sub128(mt_u128 a, mt_u128 b)
{
	return a > b ? a - b : 0;
}

/* u64 key -> u32 value, open addressing (linear probing).  Value
 * UINT32_MAX is reserved (absent). */
struct mt_map {
	uint64_t *keys;
	uint32_t *vals;
	size_t cap;  /* slots, a power of two (0: empty map) */
	size_t n;    /* entries */
};
uint32_t mt_map_get(const struct mt_map *m, uint64_t key);
void mt_map_put(struct mt_map *m, uint64_t key, uint32_t val);
void mt_map_free(struct mt_map *m);

/* A table of fixed-size entries keyed by their first member (a uint64_t),
 * with deletion (backward shift, no tombstones): the live objects and the
 * pending frees.  The _k functions take the entry size as an argument, so
 * that callers passing a constant get the index arithmetic without a
 * division (the hot path: one lookup per sampled event). */
#define MT_OTAB_EMPTY UINT64_MAX /* the one key that cannot be stored */
struct mt_otab {
	uint8_t *slots;  /* cap entries of esize bytes */
	size_t esize;    /* bytes per entry */
	size_t cap;      /* a power of two, or 0 */
	size_t n;        /* entries */
};
void mt_otab_init(struct mt_otab *t, size_t esize);
void *mt_otab_get(const struct mt_otab *t, uint64_t key);
/* Inserts and returns the entry for key (its other bytes zeroed); NULL
 * when the key is there already, or is MT_OTAB_EMPTY. */
void *mt_otab_add(struct mt_otab *t, uint64_t key);
/* Removes the entry (a pointer from get/add, invalid afterwards). */
void mt_otab_del(struct mt_otab *t, void *entry);
/* Iteration: the entry at slot i or NULL, for i < cap. */
void *mt_otab_at(const struct mt_otab *t, size_t i);
void mt_otab_free(struct mt_otab *t);
/* Doubles the table (for mt_otab_add_k). */
void mt_otab_grow(struct mt_otab *t);

/* Fibonacci hashing.  A home that kept neighbouring event numbers
 * together made inserts sequential in memory, but the dense window of
 * recent objects made long runs that every delete had to scan (cachegrind,
 * churn under sample:all: 2.69 against 1.54 G instructions for the whole
 * run).  The cache misses of uniform homes are hidden by prefetching the
 * slots of the events a few records ahead (ingest.c). */
static inline size_t mt_otab_home(uint64_t key, size_t mask)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

/* Starts loading the slot where key would be (an event to come). */
static inline void mt_otab_prefetch(const struct mt_otab *t, uint64_t key)
{
	if (t->cap)
		__builtin_prefetch(t->slots + mt_otab_home(key, t->cap - 1) * t->esize);
}

static inline uint64_t mt_otab_key(const struct mt_otab *t, size_t i, size_t esize)
{
	uint64_t k;
	memcpy(&k, t->slots + i * esize, sizeof(k));
	return k;
}

static inline void *mt_otab_get_k(const struct mt_otab *t, uint64_t key, size_t esize)
{
	if (!t->n || key == MT_OTAB_EMPTY)
		return NULL;
	size_t mask = t->cap - 1, i = mt_otab_home(key, mask);
	for (;; i = (i + 1) & mask) {
		uint64_t k = mt_otab_key(t, i, esize);
		if (k == key)
			return t->slots + i * esize;
		if (k == MT_OTAB_EMPTY)
			return NULL;
	}
}

static inline void *mt_otab_add_k(struct mt_otab *t, uint64_t key, size_t esize)
{
	if (key == MT_OTAB_EMPTY)
		return NULL;
	if ((t->n + 1) * 8 > t->cap * 5)
		mt_otab_grow(t);
	size_t mask = t->cap - 1, i = mt_otab_home(key, mask);
	for (;; i = (i + 1) & mask) {
		uint64_t k = mt_otab_key(t, i, esize);
		if (k == MT_OTAB_EMPTY) {
			uint8_t *e = t->slots + i * esize;
			memset(e, 0, esize);
			memcpy(e, &key, sizeof(key));
			t->n++;
			return e;
		}
		if (k == key)
			return NULL;
	}
}

static inline void mt_otab_del_k(struct mt_otab *t, void *entry, size_t esize)
{
	const uint64_t empty = MT_OTAB_EMPTY;
	size_t mask = t->cap - 1;
	size_t i = (size_t)((uint8_t *)entry - t->slots) / esize;

	memcpy(t->slots + i * esize, &empty, sizeof(empty));
	t->n--;
	/* backward shift: move later entries of the run into the hole when
	 * their home slot is not in (hole, their slot] */
	for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
		uint64_t k = mt_otab_key(t, j, esize);
		if (k == MT_OTAB_EMPTY)
			break;
		size_t home = mt_otab_home(k, mask);
		bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (between)
			continue;
		memcpy(t->slots + i * esize, t->slots + j * esize, esize);
		memcpy(t->slots + j * esize, &empty, sizeof(empty));
		i = j;
	}
}

/* ---- estimates ---------------------------------------------------------- */

/* Counts carry MT_FX_BITS fractional bits (weights are real numbers). */
#define MT_FX_BITS 16
#define MT_FX_ONE ((uint64_t)1 << MT_FX_BITS)

/* Horvitz-Thompson sums over sampled records (doc/sampling.md).  Every
 * term is rounded once, when it is added, so sums are exact integers and
 * merging in any order gives the same value. */
struct mt_est {
	uint64_t n;        /* sum of w, count x 2^MT_FX_BITS */
	uint64_t b;        /* sum of w x size, bytes */
	mt_u128 vn;        /* sum of w(w-1) = (1-p)/p^2, count^2 */
	mt_u128 vb;        /* sum of size^2 w(w-1), bytes^2 */
	uint64_t samples;  /* records (count) */
};

/* The terms one record of weight w and size adds to an mt_est. */
struct mt_terms {
	uint64_t n, b;
	mt_u128 vn, vb;
};
void mt_terms_of(double w, uint64_t size, struct mt_terms *t);
static inline void mt_est_add(struct mt_est *e, const struct mt_terms *t)
{
	e->n = mt_add64(e->n, t->n);
	e->b = mt_add64(e->b, t->b);
	if (t->vn | t->vb) { /* weight 1 adds no variance */
		e->vn = mt_add128(e->vn, t->vn);
		e->vb = mt_add128(e->vb, t->vb);
	}
	e->samples++;
}
void mt_est_sub(struct mt_est *e, const struct mt_terms *t);
void mt_est_sum(struct mt_est *e, const struct mt_est *x);
/* e - x, member by member (floored at 0): live = allocated - freed. */
void mt_est_diff(struct mt_est *out, const struct mt_est *e,
		 const struct mt_est *x);
/* Display values: the count estimate and its 95 % half-width. */
double mt_est_count(const struct mt_est *e);
double mt_est_count_ci(const struct mt_est *e);
double mt_est_bytes(const struct mt_est *e);
double mt_est_bytes_ci(const struct mt_est *e);
double mt_u128_double(mt_u128 v);

/* The size class libmtalloc's jemalloc serves a request from (4 classes
 * per power of two above 64 bytes; 16, 32, 48, 64 below: libmtalloc maps
 * requests of 0..8 bytes to the 16-byte class for 16-byte alignment). */
static inline uint64_t mt_size_class(uint64_t s)
{
	if (s <= 16)
		return 16;
	if (s <= 64)
		return (s + 15) & ~(uint64_t)15;
	if (s > ((uint64_t)1 << 62))
		return s; /* beyond any class: itself */
	unsigned lg = 63u - (unsigned)__builtin_clzll(s - 1); /* 2^lg < s */
	uint64_t delta = (uint64_t)1 << (lg - 2);
	return (s + delta - 1) & ~(delta - 1);
}

/* Lifetime buckets: < 1 us, < 10 us, ..., < 100 s, >= 100 s. */
#define MT_LIFE_BUCKETS 10
unsigned mt_life_bucket(uint64_t ns);
/* Upper bound of bucket i in ns (UINT64_MAX for the last). */
uint64_t mt_life_bound(unsigned i);

/* ---- the aggregate (agg.c) ---------------------------------------------- */

/* A loaded object, identified by build-id, else by path. */
struct mt_module {
	char *ident;        /* "b:<hex build-id>" or "p:<path>" */
	char *path;         /* the lexicographically least path seen */
	uint8_t *build_id;  /* NULL when unknown */
	uint32_t build_id_len;
	bool wrapper;       /* an allocation wrapper library (libc, libstdc++) */
	uint64_t hash;      /* of ident */
};

#define MT_NO_MODULE UINT32_MAX

/* One frame of a canonical stack: a return address as an offset from its
 * module's load bias (or an absolute pc when no module held it). */
struct mt_frame {
	uint64_t offset;  /* bytes from the module's base (absolute: no module) */
	uint32_t module;  /* index in agg->modules, or MT_NO_MODULE */
	uint32_t pad_;
};

/* A call site: a canonical stack, innermost first, allocator frames of
 * libmtalloc already dropped by the writer.  Sites are global across
 * processes and hosts. */
struct mt_site {
	struct mt_frame *frames;
	uint32_t depth;   /* frames (0: unknown stack) */
	uint32_t trim;    /* leading frames in wrapper modules (< depth) */
	uint64_t hash;    /* of the frames' (module ident, offset): the id */
};

/* The fundamental cell: what one thread did at one site.  Site and thread
 * totals are sums of these, which is what lets views filter by process or
 * thread. */
struct mt_st {
	uint32_t site;              /* agg->sites */
	uint32_t thread;            /* agg->threads (the allocating thread) */
	struct mt_est alloc;        /* sampled allocations */
	struct mt_est freed;        /* of those, freed (by any thread) */
	struct mt_est xfreed;       /* of those, freed by another thread */
	mt_u128 life_w;             /* sum of lifetime_ns x w over freed */
	uint64_t life[MT_LIFE_BUCKETS]; /* freed objects by lifetime, count FX */
	uint64_t size_min, size_max;    /* bytes requested, over samples */
};

/* Sampled allocations of one (site, thread) in one size class. */
struct mt_stc {
	uint32_t st;        /* agg->st */
	uint64_t cls;       /* bytes: the size class */
	struct mt_est est;
};

/* Objects allocated by one thread and freed by another (or the same). */
struct mt_xm {
	uint32_t from, to;  /* agg->threads */
	struct mt_est est;  /* the objects, weighted */
};

/* A sampled object not yet freed (in this aggregate). */
struct mt_live {
	uint64_t seq;       /* key: the allocation's event number */
	uint64_t time_ns;
	uint64_t size;      /* bytes requested */
	double w;           /* weight */
	uint32_t st;        /* agg->st */
	uint32_t stc;       /* agg->stc */
};

/* A sampled free whose allocation is not (yet) in this aggregate. */
struct mt_pend {
	uint64_t alloc_seq; /* key */
	uint64_t seq;
	uint64_t time_ns;
	uint32_t thread;    /* agg->threads: the freeing thread */
	uint32_t pad_;
};

/* Time-bucketed values with a resolution that adapts to the span: bucket
 * i covers [ (lo + i) << k, (lo + i + 1) << k ) ns, k the least that fits
 * every time seen into MT_SERIES_N buckets, so that the result depends only
 * on the data, not on the order it arrived in. */
#define MT_SERIES_N 128
struct mt_series {
	unsigned k;         /* bucket width 2^k ns */
	uint64_t lo;        /* first bucket (time >> k) */
	uint64_t tmin, tmax;
	mt_i128 d[MT_SERIES_N]; /* sampled live bytes: the change in the bucket */
};

/* A TIMELINE point. */
struct mt_tpoint {
	uint64_t time_ns;
	uint64_t allocated, active, resident, mapped;  /* bytes */
	double live_estimate;                          /* bytes */
};

#define MT_TL_N 256
struct mt_tslot {
	struct mt_tpoint max;  /* the point with most allocated */
	struct mt_tpoint last; /* the latest point */
	bool used;
};
/* The timeline: per bucket (adaptive as for mt_series) the peak and the
 * latest point, so that peaks survive and the size stays bounded. */
struct mt_timeline {
	unsigned k;
	uint64_t lo, tmin, tmax;
	uint64_t npoints;                 /* points seen (count) */
	struct mt_tslot s[MT_TL_N];
};

struct mt_mark {
	uint64_t time_ns;
	char *label;
};

/* A thread's exact totals (MT_REC_TOTALS, or MT_REC_THREAD_EXIT). */
struct mt_totals {
	bool have;
	bool from_exit;      /* from a THREAD_EXIT record (no time) */
	bool shared;         /* arena shared: allocs are the arena's */
	uint64_t time_ns;
	uint64_t allocs, frees;                 /* count */
	uint64_t bytes_allocated, bytes_freed;  /* bytes */
};

struct mt_thread {
	uint32_t proc;             /* agg->procs */
	uint64_t tid;
	char *name;                /* latest known name ("" if none) */
	uint64_t name_time;        /* ns: when that name was recorded */
	struct mt_totals totals;   /* the latest MT_REC_TOTALS */
	struct mt_totals exit_totals; /* sum of MT_REC_THREAD_EXIT records
				       * (time_ns: their number) */
	uint64_t shards;           /* shard files of this thread (count) */
	struct mt_est freed_by;    /* sampled objects this thread freed */
	struct mt_series *live;    /* sampled live bytes it allocated, or NULL */
	uint64_t tmin, tmax;       /* ns: first and last event seen */
};

/* Reading statistics (summed over shards). */
struct mt_instats {
	uint64_t shards;            /* shard files read (count) */
	uint64_t bytes;             /* bytes of those files */
	uint64_t records;           /* records decoded */
	uint64_t chunks_read, chunks_corrupt, chunks_missing, seq_backwards;
	uint64_t bytes_skipped;     /* bytes in corrupt regions and torn tails */
	uint64_t torn_tails;        /* files ending inside a chunk */
	uint64_t records_malformed, records_unknown;
	uint64_t bad_weight;        /* allocs without a usable weight */
	uint64_t dup_seq;           /* allocs whose event number was taken */
	uint64_t dropped_records, dropped_bytes; /* MT_REC_DROPPED sums */
	uint64_t no_end;            /* shards without an END record */
};

struct mt_proc {
	char *host;
	uint64_t pid, ppid;
	uint64_t start_real_ns, start_mono_ns;
	uint64_t rank;           /* lowest shard number seen: picks exe/argv */
	char *exe, *version;
	char **argv;
	uint32_t argc;
	struct mt_shard_header policy; /* policy fields only (no strings) */
	char *policy_name;
	char *unwind;
	uint64_t tmin, tmax;     /* ns: earliest and latest record time */
	uint64_t *shard_ids;     /* header "shard" numbers read, sorted */
	size_t nshard_ids;
	struct mt_map threads;   /* tid -> agg->threads */
	struct mt_otab live;     /* struct mt_live by seq */
	struct mt_otab pend;     /* struct mt_pend by alloc_seq */
	struct mt_timeline tl;
	struct mt_mark *marks;
	size_t nmarks, capmarks;
	struct mt_shard_class *classes; /* the latest MT_REC_CLASSES */
	uint32_t nclasses;
	uint64_t classes_time;
	struct mt_instats in;
	char *end_reason;        /* the latest END record's reason */
	uint64_t end_time;
	uint64_t hash;
};

/* A problem met while reading: "mtreport: FILE: problem". */
struct mt_problem {
	char *file;
	char *text;
};

struct mt_agg {
	struct mt_module *modules;  size_t nmodules, capmodules;
	struct mt_site *sites;      size_t nsites, capsites;
	struct mt_st *st;           size_t nst, capst;
	struct mt_stc *stc;         size_t nstc, capstc;
	struct mt_xm *xm;           size_t nxm, capxm;
	struct mt_thread *threads;  size_t nthreads, capthreads;
	struct mt_proc *procs;      size_t nprocs, capprocs;
	struct mt_problem *problems; size_t nproblems, capproblems;
	uint64_t problems_dropped;  /* beyond MT_MAX_PROBLEMS */
	struct mt_map module_idx;   /* ident hash -> modules (chained by probe) */
	struct mt_map site_idx;     /* frames hash -> sites */
	struct mt_map st_idx;       /* site << 32 | thread -> st */
	struct mt_map stc_idx;      /* hash(st, cls) -> stc */
	struct mt_map xm_idx;       /* from << 32 | to -> xm */
	struct mt_map proc_idx;     /* process key hash -> procs */
	uint64_t aggregates;        /* aggregate files merged in (count) */
	uint64_t xm_key;            /* cache: the last matrix cell looked up */
	uint32_t xm_last;
};

#define MT_MAX_PROBLEMS 1000

void mt_agg_init(struct mt_agg *a);
void mt_agg_destroy(struct mt_agg *a);

/* Interning.  Each returns the index of the existing or new entry. */
uint32_t mt_agg_module(struct mt_agg *a, const char *path, size_t pathlen,
		       const uint8_t *bid, uint32_t bidlen);
uint32_t mt_agg_site(struct mt_agg *a, const struct mt_frame *f, uint32_t depth);
uint32_t mt_agg_proc(struct mt_agg *a, const char *host, uint64_t pid,
		     uint64_t start_real_ns);
uint32_t mt_agg_thread(struct mt_agg *a, uint32_t proc, uint64_t tid);
uint32_t mt_agg_st(struct mt_agg *a, uint32_t site, uint32_t thread);
uint32_t mt_agg_stc(struct mt_agg *a, uint32_t st, uint64_t cls);
uint32_t mt_agg_xm(struct mt_agg *a, uint32_t from, uint32_t to);

/* A process's header fields, from the shard with header "shard" = rank
 * (the lowest rank wins). */
void mt_agg_proc_header(struct mt_agg *a, uint32_t proc,
			const struct mt_shard_header *h, uint64_t rank);
/* Records that shard `id` of the process was read.  false if it was
 * already (a duplicate). */
bool mt_agg_proc_shard(struct mt_agg *a, uint32_t proc, uint64_t id);

/* A sampled allocation at (st, stc) by st's thread. */
void mt_agg_alloc(struct mt_agg *a, uint32_t proc, uint64_t seq,
		  uint64_t time_ns, uint64_t size, double w, uint32_t st,
		  uint32_t stc);
/* A sampled free by `thread` (of process proc). */
void mt_agg_free(struct mt_agg *a, uint32_t proc, uint64_t seq,
		 uint64_t time_ns, uint64_t alloc_seq, uint32_t thread);

void mt_agg_totals(struct mt_agg *a, uint32_t thread, const struct mt_totals *t);
void mt_agg_thread_name(struct mt_agg *a, uint32_t thread, const char *name,
			size_t len, uint64_t time_ns);
void mt_agg_timeline(struct mt_agg *a, uint32_t proc, const struct mt_tpoint *p);
void mt_agg_mark(struct mt_agg *a, uint32_t proc, uint64_t time_ns,
		 const char *label, size_t len);
void mt_agg_classes(struct mt_agg *a, uint32_t proc, uint64_t time_ns,
		    const struct mt_shard_class *v, uint32_t n);
void mt_agg_end(struct mt_agg *a, uint32_t proc, uint64_t time_ns,
		const char *reason, size_t len);
void mt_agg_time(struct mt_agg *a, uint32_t proc, uint32_t thread, uint64_t t);
void mt_agg_problem(struct mt_agg *a, const char *file, const char *text);

/* Folds x into a (x is left in an unspecified state; destroy it).  The
 * caller checks mt_agg_overlaps first: a shard counted twice would be. */
void mt_agg_merge(struct mt_agg *a, struct mt_agg *x);
/* Whether some shard of x is in a already; what names it. */
bool mt_agg_overlaps(const struct mt_agg *a, const struct mt_agg *x,
		     char *what, size_t len);

/* Timeline and series primitives (exposed for the aggregate file). */
void mt_series_add(struct mt_series *s, uint64_t t, mt_i128 d);
void mt_series_merge(struct mt_series *s, const struct mt_series *x);
/* The largest running sum at a bucket end (0 at least). */
mt_i128 mt_series_peak(const struct mt_series *s);
void mt_timeline_add(struct mt_timeline *tl, const struct mt_tpoint *p);
void mt_timeline_merge(struct mt_timeline *tl, const struct mt_timeline *x);
void mt_instats_add(struct mt_instats *s, const struct mt_instats *x);

/* Marks a module as an allocation wrapper from its path. */
bool mt_module_is_wrapper(const char *path);

/* ---- the worker pool (pool.c) ------------------------------------------ */

struct mt_pool;
typedef void (*mt_task_fn)(void *arg);
/* Starts `workers` threads (0: tasks run only in mt_pool_help/wait). */
struct mt_pool *mt_pool_new(unsigned workers);
/* Queues fn(arg): `urgent` tasks (decoding) before the others. */
void mt_pool_submit(struct mt_pool *p, mt_task_fn fn, void *arg, bool urgent);
/* Runs one queued urgent task in the calling thread.  true if it did. */
bool mt_pool_help(struct mt_pool *p);
/* Runs tasks in the calling thread too, until every task has finished. */
void mt_pool_wait(struct mt_pool *p);
void mt_pool_free(struct mt_pool *p);

/* ---- inputs (inputs.c) ------------------------------------------------- */

enum mt_input_kind { MT_IN_SHARD, MT_IN_AGG, MT_IN_OTHER };

struct mt_input {
	char *path;
	enum mt_input_kind kind;
	uint64_t size;        /* bytes */
	unsigned order;       /* position in the command line expansion */
};

struct mt_inputs {
	struct mt_input *v;
	size_t n, cap;
	uint64_t bytes;       /* total */
};

/* Expands the PATH arguments: a file is taken whatever its name; a
 * directory is searched recursively for *.mts and *.mta files (sorted by
 * name).  Problems go to a (unreadable paths).  Files seen twice (same
 * device and inode) are taken once. */
struct mt_ingest_ctx;
void mt_inputs_collect(struct mt_inputs *in, char *const *paths, int n,
		       struct mt_ingest_ctx *ctx);
void mt_inputs_free(struct mt_inputs *in);

/* ---- options ------------------------------------------------------------ */

enum mt_sort { MT_SORT_BYTES, MT_SORT_COUNT, MT_SORT_LIVE, MT_SORT_LEAKED };
enum mt_format { MT_FMT_TEXT, MT_FMT_JSON, MT_FMT_COLLAPSED, MT_FMT_PPROF,
		 MT_FMT_HTML };
/* What a stack's value is (--value, collapsed stacks). */
enum mt_value { MT_VALUE_BYTES, MT_VALUE_COUNT, MT_VALUE_LIVE,
		MT_VALUE_LIVE_COUNT };

struct mt_options {
	enum mt_format format;
	enum mt_value value;    /* --value (collapsed) */
	unsigned top;           /* rows per table */
	bool top_given;
	enum mt_sort sort;
	bool sort_given;
	uint64_t *pids;  size_t npids;     /* filter (none: all) */
	char **threads;  size_t nthreads;  /* tids or names (none: all) */
	bool per_process;       /* a section set per process */
	bool symbols;           /* symbolize */
	bool strict;
	bool by_function;       /* group sites by their first frame */
	uint64_t size_min, size_max;   /* bytes: only these allocations */
	unsigned jobs;          /* workers */
	int progress;           /* -1 auto, 0 off, 1 on */
	const char *debug_path; /* for the symbolizer */
};

/* ---- ingest (ingest.c) --------------------------------------------------- */

/* Problem callback: called (under a lock) for every problem; returns false
 * to stop everything (--strict). */
struct mt_ingest_ctx {
	struct mt_agg *agg;            /* the result */
	const struct mt_options *opt;
	bool strict;
	volatile bool stop;            /* a --strict problem happened */
	uint64_t skipped;              /* inputs (or parts) skipped (count) */
	uint64_t readable;             /* inputs that gave anything (count) */
	volatile uint64_t done_bytes;  /* for the progress indicator */
	bool progress;                 /* a progress line may be on stderr */
	pthread_mutex_t lock;
};

/* Reads every input into ctx->agg with `jobs` workers.  Problems are
 * recorded in ctx->agg and printed as "mtreport: FILE: problem". */
void mt_ingest(struct mt_ingest_ctx *ctx, const struct mt_inputs *in,
	       unsigned jobs);
/* Reports one problem (prints it, records it, counts it as skipped). */
void mt_ingest_problem(struct mt_ingest_ctx *ctx, const char *file,
		       const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- the aggregate file (aggfile.c) ------------------------------------- */

#define MT_AGG_MAGIC "MTAGGR\0\0"
#define MT_AGG_MAJOR 1
#define MT_AGG_MINOR 0
#define MT_AGG_SUFFIX ".mta"

/* Writes a to path (atomically: a temporary file renamed).  0, or -errno
 * with *err set to a message. */
int mt_aggfile_write(const struct mt_agg *a, const char *path, const char **err);
/* Reads path into the empty aggregate *out.  0, or -errno with the
 * problem in errbuf; *out is then to be destroyed unused. */
int mt_aggfile_read(struct mt_agg *out, const char *path, char *errbuf,
		    size_t errlen);

/* ---- symbols (symbols.c) ------------------------------------------------- */

/* One source-level frame of a stack frame. */
struct mt_symframe {
	const char *function;  /* NULL if unknown */
	const char *file;      /* NULL if unknown */
	unsigned line;         /* 0 if unknown */
	bool inlined;
};

struct mt_symbols;
/* NULL when symbols are off. */
struct mt_symbols *mt_symbols_new(const struct mt_agg *a, bool enabled,
				  const char *debug_path);
/* The source frames of f (innermost first), at most max; 0 when unknown
 * (the caller prints module+offset). */
int mt_symbols_lookup(struct mt_symbols *s, const struct mt_frame *f,
		      struct mt_symframe *out, int max);
/* Modules without a binary or debug info, after the lookups done. */
bool mt_symbols_module_found(struct mt_symbols *s, uint32_t module);
void mt_symbols_free(struct mt_symbols *s);

/* ---- the report model (view.c) ------------------------------------------ */

/* A site as the views see it: sums over the selected threads' cells. */
struct mt_vsite {
	uint32_t site;               /* agg->sites */
	struct mt_est alloc;         /* sampled allocations */
	struct mt_est freed;         /* of those, freed */
	struct mt_est xfreed;        /* of those, freed by another thread */
	struct mt_est live;          /* alloc - freed: not freed at the end */
	mt_u128 life_w;              /* sum of lifetime_ns x w */
	uint64_t life[MT_LIFE_BUCKETS]; /* freed objects by lifetime, count FX */
	uint64_t size_min, size_max; /* bytes */
	uint32_t first_st, nst;      /* its cells: view->st[first_st ..]; in a
				      * group, nst counts the sites */
	char *label;                 /* the first frame after the wrappers */
	char *group;                 /* --by-function key (the label) */
};

struct mt_vthread {
	uint32_t thread;                  /* agg->threads */
	struct mt_est alloc;              /* its sampled allocations */
	struct mt_est freed;              /* of those, freed by anyone */
	struct mt_est xfreed_by_others;   /* of those, freed by other threads */
	struct mt_est freed_for_others;   /* other threads' objects it freed */
	struct mt_est freed_by;           /* objects it freed (any thread's) */
	struct mt_est live;               /* alloc - freed */
	double peak_live;                 /* bytes: sampled, at bucket ends */
};

struct mt_vclass {
	uint64_t cls;              /* bytes */
	uint64_t exact;            /* requests, from MT_REC_CLASSES */
	struct mt_est est;         /* sampled */
	uint32_t sites[3];         /* view sites filling it, top by count */
	uint64_t site_n[3];        /* count FX */
	unsigned nsites;
};

struct mt_vproc {
	uint32_t proc;             /* agg->procs */
	int parent;                /* index in view->procs, or -1 */
	unsigned depth;            /* in the fork tree */
	uint64_t nthreads;         /* selected threads */
	struct mt_est alloc, freed;
	struct mt_totals exact;    /* sums over its selected threads */
	bool have_tl;
	struct mt_tpoint first, peak, final;
	uint64_t peak_resident;    /* bytes */
	uint64_t tl_points;        /* count */
	uint64_t t0;               /* ns: the process's time origin */
	uint64_t duration_ns;
	uint64_t unmatched_frees;  /* frees whose allocation is not there */
	uint64_t live_records;     /* sampled objects not freed */
};

struct mt_finding {
	char *kind;      /* stable key: "small-short-lived", ... */
	char *text;      /* one sentence with the figures */
	char *evidence;  /* a JSON object with the figures */
};

struct mt_view {
	const struct mt_agg *agg;
	const struct mt_options *opt;
	struct mt_symbols *sym;
	long only_proc;                /* --process-per-section: agg->procs, or -1 */
	bool *proc_on;                 /* agg->nprocs: selected */
	bool *thread_on;               /* agg->nthreads: selected */
	uint32_t *proc_rank;           /* agg->procs -> index in procs */
	struct mt_vproc *procs; size_t nprocs;   /* display order */
	struct mt_vsite *sites; size_t nsites;
	uint32_t *st;                  /* cells of the selection, by site */
	struct mt_vthread *threads; size_t nthreads;  /* by process, tid */
	struct mt_vclass *classes; size_t nclasses;   /* by size */
	struct mt_est total_alloc, total_freed, total_live, total_xfreed;
	uint64_t life[MT_LIFE_BUCKETS];     /* freed objects, count FX */
	struct mt_totals exact;        /* sums over the selected threads */
	bool exact_shared;             /* some arena was shared */
	uint64_t exact_threads;        /* threads with exact totals */
	struct mt_instats in;
	uint64_t unmatched_frees;
	struct mt_finding *findings; size_t nfindings, capfindings;
	const char *policy;            /* the common policy, or "mixed" */
	bool exact_weights;            /* policy all everywhere: weights 1 */
	/* orderings (indices into sites) */
	uint32_t *by_bytes, *by_count, *by_live, *by_leaked, *by_xfree;
	size_t nleaks;                 /* sites with live objects */
	size_t nxsites;                /* sites with cross-thread frees */
	struct mt_vsite *groups; size_t ngroups; /* --by-function */
	uint32_t *group_order;
};

/* Builds the model of the selected processes (all: only = -1); symbols
 * may be NULL. */
void mt_view_build_proc(struct mt_view *v, const struct mt_agg *a,
			const struct mt_options *opt, struct mt_symbols *sym,
			long only);
void mt_view_build(struct mt_view *v, const struct mt_agg *a,
		   const struct mt_options *opt, struct mt_symbols *sym);
void mt_view_free(struct mt_view *v);
/* "func (file:line)" or "module+0xoffset" for a frame. */
void mt_view_frame(const struct mt_view *v, const struct mt_frame *f,
		   char *buf, size_t len);
/* Leading frames of s in wrapper modules (always < depth). */
uint32_t mt_site_trim(const struct mt_agg *a, const struct mt_site *s);
const char *mt_basename(const char *path);
const char *mt_module_name(const struct mt_agg *a, uint32_t module);
/* An estimate resting on one or two samples. */
static inline bool mt_few(const struct mt_est *e)
{
	return e->samples > 0 && e->samples <= 2;
}
/* The lifetime bucket of the median freed object, or -1; its label. */
int mt_life_median(const uint64_t *life);
const char *mt_life_label(int bucket);
/* Human figures: "1.25 MiB", "1,234,567", "12.3 ms". */
void mt_fmt_bytes(char *buf, size_t len, double bytes);
void mt_fmt_count(char *buf, size_t len, double n);
void mt_fmt_ns(char *buf, size_t len, double ns);

/* The matrix cells (from != to) of the selection, most objects first
 * (to free). */
const struct mt_xm **mt_view_xm(const struct mt_view *v, size_t *n);

/* ---- emitters ------------------------------------------------------------ */

void mt_emit_text(FILE *out, struct mt_view *const *views, size_t n);
void mt_emit_json(FILE *out, struct mt_view *const *views, size_t n);
/* Collapsed stacks (emit_collapsed.c): "root;...;leaf VALUE" lines. */
void mt_emit_collapsed(FILE *out, struct mt_view *const *views, size_t n);
/* A site's frames root first, ';'-separated, functions only where known
 * (malloc'd into *out). */
void mt_collapsed_stack(const struct mt_view *v, uint32_t site, char **out);
/* A gzipped pprof profile.proto (emit_pprof.c). */
void mt_emit_pprof(FILE *out, struct mt_view *const *views, size_t n);
/* mtreport diff (diff.c): per stack and in total, what grew or shrank
 * from base to new, as text or JSON (new->opt->format).  true when a total
 * (bytes, allocations, live bytes) grew by more than fail_pct percent
 * (fail_pct < 0: never). */
bool mt_diff(FILE *out, const struct mt_view *base, const struct mt_view *new_,
	     const char *base_name, const char *new_name, double fail_pct);
/* The HTML report (emit_html.c): one self-contained file. */
void mt_emit_html(FILE *out, struct mt_view *const *views, size_t n);
/* A site's figure for `what`, rounded to an integer. */
uint64_t mt_site_value(const struct mt_vsite *s, enum mt_value what);

#endif
