/* Sampled objects.  Each lives in the tracked arena behind a 32-byte header
 * that says which allocation event made it, so that its free record names
 * that event exactly (alloc_seq) on whichever thread frees it, and so that
 * the live estimate can drop exactly what it added.  Unsampled objects
 * have no header: the header costs only sampled objects. */
#include "config.h"

#include "track.h"

#include <pthread.h>
#include <string.h>

#include "backend/backend.h"

#define OBJ_MAGIC 0x6d746f62u /* "mtob" */

struct obj {
	uint64_t seq;     /* event number of the allocation */
	uint64_t size;    /* bytes requested */
	uint64_t wbytes;  /* bytes: weight x size as added to the live estimate */
	uint32_t magic;   /* OBJ_MAGIC */
	uint8_t lg_align; /* log2 of the alignment asked (4: 16 or less) */
	uint8_t unused[3];
};

_Static_assert(sizeof(struct obj) == 32, "header keeps 16-byte alignment");

/* The process-wide event number (atomic).  Every sampling thread writes
 * it, so it has a line pair to itself: on a line shared with read-mostly
 * data (it shared one with the unwinder's rule for its own frame) each
 * increment made every other thread's next read of that data a miss
 * (perf, churn under sample:all on 2 threads: a quarter of the walk's
 * time on that one load).
 *
 * A sampled allocation takes two numbers with its one increment: its own,
 * and a spare for its thread's next free (mt_tls.seq_spare).  That free
 * uses the spare, with no atomic operation of its own, when the spare is
 * still the latest number its thread took and is above the freed
 * object's allocation number; otherwise it takes a number.  Every object
 * then has alloc seq < free seq < the seq of any later allocation at its
 * address (the spare was taken before the block went back), and each
 * thread's numbers rise, which is what matching needs (doc/format.md,
 * section 6).  A locked increment waits for every store before it (the
 * program's included): one instead of two per sampled pair made churn
 * under sample:all about a tenth faster. */
static struct {
	_Alignas(128) uint64_t n;
	char pad[128 - sizeof(uint64_t)];
} seq_line;
#define seq_counter (seq_line.n)

/* Sampled allocations per size class (count, atomic), indexed by class:
 * 16, 32, 48, 64, then four classes per power of two.  Each thread counts
 * in a table of its own (mt_tls.class_pending) and adds it here every
 * CLASS_BATCH samples, at its own flushes and at its exit: an atomic
 * increment per sample on counters that every sampling thread shares cost
 * a cache-line transfer each. */
#define CLASSES 240
#define CLASS_BATCH 4096
static uint64_t class_req[CLASSES];

/* The estimated live bytes of sampled objects (sum of weight x size), as a
 * signed sum (atomic): what each thread has added (alloc) and removed
 * (free), less what it has not passed on yet (mt_tls.live_pending, less
 * than LIVE_BATCH bytes either way).  Two atomic adds per sampled pair on
 * one line that every sampling thread shares were a tenth of the time of
 * sample:all on two threads (perf, churn). */
#define LIVE_BATCH ((int64_t)64 << 10)
static uint64_t live_estimate;

static unsigned class_index(uint64_t c)
{
	if (c <= 64)
		return c <= 16 ? 0 : (unsigned)(c / 16 - 1);
	unsigned lg = 63u - (unsigned)__builtin_clzll(c - 1); /* 2^lg < c */
	uint64_t k = (c - ((uint64_t)1 << lg)) >> (lg - 2);   /* 1..4 */
	unsigned i = 4 + (lg - 6) * 4 + (unsigned)(k - 1);
	return i < CLASSES ? i : CLASSES - 1;
}

/* Freed sampled blocks kept by the thread that freed them, per size class
 * up to BC_MAX_CLASS, for its next samples of that class: jemalloc's
 * mallocx/sdallocx with an arena and a tcache in the flags have no fast
 * path in 5.3 (about 470 + 310 instructions a sampled pair, callgrind,
 * churn under sample:all); a pop or push here is a few.  Bounded per
 * class and in bytes; drained at thread exit.  A block is linked through
 * its first word (its header's seq, rewritten when it is handed out).
 * jemalloc does not see these frees and reallocations, so the thread's
 * byte counts add what the cache served and took (cache_*_bytes). */
#define BC_MAX_CLASS 4096
#define BC_CLASSES 28 /* class_index(BC_MAX_CLASS) + 1 */
#define BC_PER_CLASS 16
#define BC_MAX_BYTES ((size_t)256 << 10)

struct mt_block_cache {
	void *head[BC_CLASSES];
	uint8_t n[BC_CLASSES];
	size_t bytes;
};

static unsigned class_index(uint64_t c);

/* A block of class cls from t's cache, or NULL. */
static void *cache_pop(struct mt_tls *t, size_t cls)
{
	struct mt_block_cache *c = t->blocks;
	unsigned i = class_index(cls);

	if (!c || !c->head[i])
		return NULL;
	void *b = c->head[i];
	c->head[i] = *(void **)b;
	c->n[i]--;
	c->bytes -= cls;
	t->cache_alloc_bytes += cls;
	return b;
}

/* Keeps block b (class cls) in t's cache; false when it has no room.  The
 * block's first two words: the next block, its class. */
static bool cache_push(struct mt_tls *t, void *b, size_t cls)
{
	struct mt_block_cache *c = t->blocks;

	if (MT_UNLIKELY(!c)) {
		if (t->state != MT_THREAD_READY)
			return false;
		c = t->blocks = mtje_calloc(1, sizeof(*c));
		if (!c)
			return false;
	}
	unsigned i = class_index(cls);
	if (c->n[i] >= BC_PER_CLASS || c->bytes + cls > BC_MAX_BYTES)
		return false;
	((void **)b)[0] = c->head[i];
	((size_t *)b)[1] = cls;
	c->head[i] = b;
	c->n[i]++;
	c->bytes += cls;
	t->cache_free_bytes += cls;
	return true;
}

/* Gives every cached block back to jemalloc (which now counts the frees)
 * and the cache itself: at thread exit, before the tcache goes. */
static void cache_drain(struct mt_tls *t)
{
	struct mt_block_cache *c = t->blocks;

	if (!c)
		return;
	t->blocks = NULL;
	for (unsigned i = 0; i < BC_CLASSES; i++) {
		for (void *b = c->head[i], *next; b; b = next) {
			next = *(void **)b;
			size_t cls = ((size_t *)b)[1];
			t->cache_free_bytes -= cls;
			/* the thread's tcache if it has one: none is made
			 * at exit only to be destroyed */
			mt_backend_tracked_free(b, cls, 16,
						t->tcache > 0 ? t->tcache - 1 : -1);
		}
	}
	mtje_free(c);
}

uint64_t mt_track_class_requests(uint64_t class_size)
{
	return __atomic_load_n(&class_req[class_index(class_size)], __ATOMIC_RELAXED);
}

/* Counts a sampled allocation of n bytes by the class it asks for. */
static void count_class(struct mt_tls *t, size_t n)
{
	unsigned i = class_index(mt_backend_size_class(n));

	if (MT_UNLIKELY(!t->class_pending)) {
		t->class_pending = mtje_calloc(CLASSES, sizeof(uint32_t));
		if (!t->class_pending) {
			__atomic_add_fetch(&class_req[i], 1, __ATOMIC_RELAXED);
			return;
		}
	}
	t->class_pending[i]++;
	if (MT_UNLIKELY(++t->class_pending_n >= CLASS_BATCH))
		mt_track_fold(t, false);
}

/* Changes the live estimate by `bytes` (up: an allocation) through thread
 * t's pending sum when t is set up. */
static inline void live_change(struct mt_tls *t, uint64_t bytes, bool up)
{
	if (MT_LIKELY(t->state == MT_THREAD_READY && bytes < (uint64_t)LIVE_BATCH)) {
		int64_t v = t->live_pending + (up ? (int64_t)bytes : -(int64_t)bytes);
		if (MT_LIKELY(v < LIVE_BATCH && v > -LIVE_BATCH)) {
			t->live_pending = v;
			return;
		}
		t->live_pending = 0;
		__atomic_add_fetch(&live_estimate, (uint64_t)v, __ATOMIC_RELAXED);
	} else if (up) {
		__atomic_add_fetch(&live_estimate, bytes, __ATOMIC_RELAXED);
	} else {
		__atomic_sub_fetch(&live_estimate, bytes, __ATOMIC_RELAXED);
	}
}

void mt_track_fold(struct mt_tls *t, bool release)
{
	if (t->live_pending) {
		__atomic_add_fetch(&live_estimate, (uint64_t)t->live_pending,
				   __ATOMIC_RELAXED);
		t->live_pending = 0;
	}
	if (t->class_pending && t->class_pending_n) {
		for (unsigned i = 0; i < CLASSES; i++)
			if (t->class_pending[i]) {
				__atomic_add_fetch(&class_req[i], t->class_pending[i],
						   __ATOMIC_RELAXED);
				t->class_pending[i] = 0;
			}
	}
	t->class_pending_n = 0;
	if (release && t->class_pending) {
		mtje_free(t->class_pending);
		t->class_pending = NULL;
	}
}

/* The calling thread's explicit tcache for sampled objects, or -1. */
static int tcache_of(struct mt_tls *t)
{
	if (t->state != MT_THREAD_READY)
		return -1;
	if (!t->tcache) {
		int id = mt_backend_tracked_tcache();
		t->tcache = id >= 0 ? id + 1 : -1;
	}
	return t->tcache > 0 ? t->tcache - 1 : -1;
}

void mt_track_thread_exit(struct mt_tls *t)
{
	mt_track_fold(t, true);
	cache_drain(t);
	if (t->tcache > 0)
		mt_backend_tracked_tcache_destroy(t->tcache - 1);
	t->tcache = -1; /* later frees (TLS destructors) use none */
}

static struct obj *header(const void *p)
{
	return (struct obj *)((uintptr_t)p - sizeof(struct obj));
}

/* Bytes from the jemalloc block to the object: the header, or the
 * alignment when that is larger (the object stays aligned). */
static size_t room_for(size_t align)
{
	return align > sizeof(struct obj) ? align : sizeof(struct obj);
}

uint64_t mt_track_seq_now(void)
{
	return __atomic_load_n(&seq_counter, __ATOMIC_RELAXED);
}

uint64_t mt_track_live_estimate(struct mt_tls *self)
{
	mt_track_fold(self, false);
	/* A free's pending sum may reach the total before its allocation's. */
	int64_t v = (int64_t)__atomic_load_n(&live_estimate, __ATOMIC_RELAXED);
	return v > 0 ? (uint64_t)v : 0;
}

void *mt_track_alloc(struct mt_tls *t, size_t n, size_t align, bool zero,
		     double weight, bool omit_weight, const void *frame)
{
	uintptr_t pcs[MT_STACK_MAX];
	size_t room = room_for(align);
	size_t total, usable;

	if (__builtin_add_overflow(n, room, &total))
		return NULL;
	t->guard++;
	char *base = NULL;
	if (align <= 16 && total <= BC_MAX_CLASS) {
		usable = mt_backend_size_class(total);
		base = cache_pop(t, usable);
		if (base && zero)
			memset(base + room, 0, usable - room);
	}
	if (!base)
		base = mt_backend_tracked_alloc(total, align, zero, tcache_of(t),
						&usable);
	if (!base) {
		t->guard--;
		return NULL;
	}
	char *p = base + room;
	struct obj *o = header(p);
	o->seq = __atomic_add_fetch(&seq_counter, 2, __ATOMIC_RELAXED) - 1;
	t->seq_spare = o->seq + 1;
	o->size = n;
	o->wbytes = (uint64_t)(weight * (double)n + 0.5);
	o->magic = OBJ_MAGIC;
	o->lg_align = (uint8_t)__builtin_ctzl(align);
	live_change(t, o->wbytes, true);
	count_class(t, n);

	unsigned depth = mt_stack_capture(t, pcs, mt_shard_proc.conf->stack_depth,
					  frame);
	if (mt_shard_lock_record(&t->w)) {
		if (!t->w.buf) /* a new shard: its header names the thread */
			pthread_getname_np(pthread_self(), t->w.thread_name,
					   sizeof(t->w.thread_name));
		if (mt_shard_ready(&t->w, t->tid)) {
			uint64_t now = mt_now_ns();
			uint32_t id = mt_shard_stack(&t->w, pcs, depth);
			mt_shard_put_alloc(&t->w, o->seq, now, (uintptr_t)p, n,
					   usable - room - n, id,
					   omit_weight ? -1.0 : weight);
			mt_thread_timeline_tick(&t->w, now);
		} else {
			mt_shard_drop(&t->w, 24);
		}
		mt_shard_unlock_own(&t->w);
	}
	if (t->w.failed)
		mt_sample_stop(t);
	t->guard--;
	return p;
}

void mt_track_free(struct mt_tls *t, void *p)
{
	struct obj *o = header(p);
	uint64_t seq = 0, now = 0;
	bool record;

	/* A block freed long after its allocation has its header out of the
	 * cache: start loading it, and read the clock, take the writer and
	 * the event number before anything needs it (perf, churn under
	 * sample:all: that miss was two thirds of this function's time; the
	 * clock first, as the locked instructions wait for it). */
	__builtin_prefetch(o, 1);
	t->guard++;
	record = t->state == MT_THREAD_READY && !t->w.failed;
	if (record)
		now = mt_now_ns();
	record = record && mt_shard_lock_record(&t->w);
	MT_ASSERT(o->magic == OBJ_MAGIC);
	if (record) {
		seq = t->seq_spare;
		if (seq <= o->seq)
			seq = __atomic_add_fetch(&seq_counter, 1, __ATOMIC_RELAXED);
	}
	t->seq_spare = 0;
	live_change(t, o->wbytes, false);
	size_t align = (size_t)1 << o->lg_align, room = room_for(align);
	size_t total = o->size + room;
	if (record) {
		if (mt_shard_ready(&t->w, t->tid))
			mt_shard_put_free(&t->w, seq, now, (uintptr_t)p, o->seq);
		else
			mt_shard_drop(&t->w, 16);
		mt_shard_unlock_own(&t->w);
	}
	o->magic = 0;
	if (align <= 16 && total <= BC_MAX_CLASS &&
	    cache_push(t, (char *)p - room, mt_backend_size_class(total))) {
		t->guard--;
		return;
	}
	mt_backend_tracked_free((char *)p - room, total, align, tcache_of(t));
	t->guard--;
}

size_t mt_track_usable(const void *p)
{
	size_t room = room_for((size_t)1 << header(p)->lg_align);

	return mt_backend_tracked_usable((const char *)p - room) - room;
}

size_t mt_track_size(const void *p)
{
	return header(p)->size;
}
