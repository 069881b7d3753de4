/* The per-thread shard writer: msgpack records into a preallocated buffer,
 * one framed chunk per write(2). */
#include "config.h"

#include <string.h>
/* The library is built -fno-builtin (for alloc.c), which makes every
 * memcpy a call, and msgpack-c stores each multi-byte field with memcpy.
 * Here memcpy is gcc's builtin, so a field becomes one store.  Defined
 * before msgpack.h is read, so that its inline packers see it. */
#define memcpy(d, s, n) __builtin_memcpy(d, s, n)

#include <msgpack.h>

#include "shard.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"

#define HDR (MT_SHARD_FILE_HEADER + MT_CHUNK_HEADER) /* payload offset */

struct mt_shard_proc mt_shard_proc;

static uint64_t dropped_total; /* records, all writers (atomic) */
static int failure_reported;   /* one stderr line per process (atomic) */
static uint32_t file_counter;  /* shards opened by this process (atomic) */

struct mt_intern {
	uint32_t mask;  /* slots - 1 */
	uint32_t used;  /* occupied slots */
	struct slot {
		uint64_t hash; /* 0 = empty */
		uint32_t id;
	} slot[];
};

/* ---- time (shard.h) ---- */

uint64_t mt_tsc_mult;
__thread struct mt_clock mt_clock_tls;
static bool tsc_ok;              /* the counter is the kernel's clock */
static struct mt_clock tsc_base; /* the first anchor: the ratio's start */

#define TSC_CALIBRATE_NS (20u * 1000 * 1000) /* shortest baseline of the ratio */

static uint64_t tsc_now(void)
{
#if defined(__x86_64__)
	return __builtin_ia32_rdtsc();
#else
	return 0;
#endif
}

void mt_clock_init(void)
{
	char buf[16] = "";
	int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
		      O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		close(fd);
	}
#if defined(__x86_64__)
	if (strcmp(buf, "tsc\n"))
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	tsc_base.tsc = tsc_now();
	tsc_base.ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	tsc_ok = true;
#endif
}

uint64_t mt_now_ns_slow(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	if (!tsc_ok)
		return ns;
	uint64_t tsc = tsc_now();
	mt_clock_tls.tsc = tsc;
	mt_clock_tls.ns = ns;
	/* The ratio, from the longest baseline there is (the anchor taken
	 * at start-up): its error shrinks as the process runs.  Racing
	 * threads store ratios alike. */
	if (ns - tsc_base.ns >= TSC_CALIBRATE_NS && tsc > tsc_base.tsc) {
		unsigned __int128 m = ((unsigned __int128)(ns - tsc_base.ns) << 32) /
				      (tsc - tsc_base.tsc);
		/* Under 16 ns a tick (a counter of 62.5 MHz or more), so
		 * that MT_TSC_SPAN ticks times the ratio stays below 2^63. */
		if (m && m < ((unsigned __int128)1 << 36))
			__atomic_store_n(&mt_tsc_mult, (uint64_t)m, __ATOMIC_RELAXED);
	}
	return ns;
}

/* ---- who holds a writer (shard.h) ---- */

bool mt_shard_asym;

static int membarrier(int cmd)
{
#ifdef SYS_membarrier
	return (int)syscall(SYS_membarrier, cmd, 0, 0);
#else
	(void)cmd;
	errno = ENOSYS;
	return -1;
#endif
}

static bool asym_register(void)
{
#if defined(__SANITIZE_THREAD__) || !defined(SYS_membarrier)
	return false; /* TSan cannot see the barrier: it would see races */
#else
	int cmds = membarrier(MEMBARRIER_CMD_QUERY);

	return cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
	       membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
#endif
}

void mt_shard_sync_init(void)
{
	mt_shard_asym = asym_register();
}

void mt_shard_sync_fork_child(void)
{
	if (mt_shard_asym)
		mt_shard_asym = asym_register();
}

/* One more turn of a wait of at most wait_ns from *start (0: not
 * started): yields and returns true, or false at the deadline. */
static bool wait_more(uint64_t *start, uint64_t wait_ns)
{
	if (!wait_ns)
		return false;
	uint64_t now = mt_now_ns();
	if (!*start)
		*start = now;
	else if (now - *start > wait_ns)
		return false;
	sched_yield();
	return true;
}

bool mt_shard_lock(struct mt_shard_writer *w, uint64_t wait_ns)
{
	uint64_t start = 0;

	if (!mt_shard_asym || w->shared) {
		while (__atomic_exchange_n(&w->busy, 1, __ATOMIC_ACQUIRE))
			if (!wait_more(&start, wait_ns))
				return false;
		return true;
	}
	while (__atomic_exchange_n(&w->foreign, 1, __ATOMIC_ACQUIRE))
		if (!wait_more(&start, wait_ns))
			return false;
	/* Every thread of the process passes a full barrier: an owner that
	 * marked itself busy before it is seen busy now, one that marks
	 * itself later sees `foreign`. */
	if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) {
		for (;;) {
			if (!__atomic_load_n(&w->busy, __ATOMIC_ACQUIRE))
				return true;
			if (!wait_more(&start, wait_ns))
				break;
		}
	}
	__atomic_store_n(&w->foreign, 0, __ATOMIC_RELEASE);
	return false;
}

void mt_shard_unlock(struct mt_shard_writer *w)
{
	if (!mt_shard_asym || w->shared)
		__atomic_store_n(&w->busy, 0, __ATOMIC_RELEASE);
	else
		__atomic_store_n(&w->foreign, 0, __ATOMIC_RELEASE);
}

bool mt_shard_lock_own_wait(struct mt_shard_writer *w, uint64_t wait_ns)
{
	uint64_t start = 0;

	while (!mt_shard_lock_own(w))
		if (!wait_more(&start, wait_ns))
			return false;
	return true;
}

bool mt_shard_lock_record_slow(struct mt_shard_writer *w)
{
	uint64_t start = 0;

	/* Held by the owner itself (a signal handler sampling inside a
	 * record), or, with the exchange, by either side: never wait. */
	while (mt_shard_asym && !__atomic_load_n(&w->busy, __ATOMIC_RELAXED)) {
		if (!wait_more(&start, MT_SHARD_RECORD_WAIT_NS))
			break;
		if (mt_shard_lock_own(w))
			return true;
	}
	__atomic_add_fetch(&dropped_total, 1, __ATOMIC_RELAXED);
	return false;
}

/* ---- encoding ----
 *
 * Records are encoded by msgpack-c's packer.  Each record has a packer of
 * its own, a local object whose write callback is cursor_put, appending to
 * a cursor into the writer's buffer.  With the packer's callback known at
 * compile time, gcc inlines msgpack-c's static inline pack functions and
 * the callback into the record functions marked FLATTEN, and each field
 * becomes a few stores: no indirect call, no memcpy call.  The room for the
 * whole record is checked once, before it is encoded (begin); the cursor
 * still refuses to write past the buffer, and a record that would have
 * overrun it is dropped whole (commit). */

#define FLATTEN __attribute__((flatten))

struct cursor {
	unsigned char *p;   /* next byte to write */
	unsigned char *end; /* end of the buffer */
	bool over;          /* a piece did not fit: the record is dropped */
};

static inline __attribute__((always_inline)) int
cursor_put(void *data, const char *s, size_t n)
{
	struct cursor *c = data;

	if (MT_UNLIKELY(n > (size_t)(c->end - c->p))) {
		c->over = true;
		return -1;
	}
	/* n is a constant after inlining (1, 2, 3, 5 or 9 for fields):
	 * the builtin becomes a store. */
	__builtin_memcpy(c->p, s, n);
	c->p += n;
	return 0;
}

/* Starts a record at w->len; the caller made room for it. */
static inline __attribute__((always_inline)) void
rec_open(struct mt_shard_writer *w, struct cursor *c)
{
	c->p = w->buf + w->len;
	c->end = w->buf + w->cap;
	c->over = false;
}

/* The packer of one record, writing through cursor `c`.  A separate local
 * object from the cursor, whose address does not escape once msgpack-c's
 * functions are inlined: gcc then knows its callback at every call. */
#define PACKER(pk, c) msgpack_packer pk = { (c), cursor_put }

/* Ends a record: keeps it, or drops it if it overran the buffer (which
 * the room reserved before it makes impossible). */
static inline __attribute__((always_inline)) void
rec_close(struct mt_shard_writer *w, struct cursor *c)
{
	MT_ASSERT(!c->over);
	if (MT_UNLIKELY(c->over)) {
		w->chunk_records--;
		mt_shard_drop(w, 0);
		return;
	}
	w->len = (size_t)(c->p - w->buf);
}

static void put_str(msgpack_packer *pk, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void put_kv_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
	put_str(pk, k, 64);
	msgpack_pack_uint64(pk, v);
}

static void put_kv_str(msgpack_packer *pk, const char *k, const char *v,
		       size_t max)
{
	put_str(pk, k, 64);
	put_str(pk, v, max);
}

/* The delta of a record's time (ns) from the previous one in the chunk,
 * clamped at 0. */
static inline uint64_t tick(struct mt_shard_writer *w, uint64_t now)
{
	uint64_t d = now > w->time_last ? now - w->time_last : 0;

	if (now > w->time_last)
		w->time_last = now;
	return d;
}

/* The shard's header record (at most ~7 KiB: argv is cut at 2 KiB). */
static void put_header(struct mt_shard_writer *w, msgpack_packer *pk)
{
	const struct mt_shard_proc *p = &mt_shard_proc;
	const struct mt_conf *c = p->conf;
	static const char *policy[] = { "poisson", "tiered", "all", "off" };
	unsigned argc = 0;

	for (size_t i = 0; i < p->cmdline_len; i++)
		argc += p->cmdline[i] == '\0';
	msgpack_pack_array(pk, 2);
	msgpack_pack_uint8(pk, MT_REC_HEADER);
	msgpack_pack_map(pk, p->fork_seq ? 21 : 20);
	put_kv_str(pk, MT_KEY_VERSION, PACKAGE_VERSION, 32);
	put_kv_str(pk, MT_KEY_HOST, p->host, sizeof(p->host));
	put_kv_uint(pk, MT_KEY_PID, p->pid);
	put_kv_uint(pk, MT_KEY_PPID, p->ppid);
	put_kv_uint(pk, MT_KEY_TID, w->tid);
	put_kv_str(pk, MT_KEY_THREAD, w->thread_name, sizeof(w->thread_name));
	put_kv_str(pk, MT_KEY_EXE, p->exe, sizeof(p->exe));
	put_str(pk, MT_KEY_ARGV, 64);
	msgpack_pack_array(pk, argc);
	for (size_t i = 0; i < p->cmdline_len;) {
		size_t n = strnlen(p->cmdline + i, p->cmdline_len - i);
		msgpack_pack_str(pk, n);
		msgpack_pack_str_body(pk, p->cmdline + i, n);
		i += n + 1;
	}
	put_kv_uint(pk, MT_KEY_START_REAL, p->start_real_ns);
	put_kv_uint(pk, MT_KEY_START_MONO, p->start_mono_ns);
	put_kv_str(pk, MT_KEY_CLOCK, "monotonic", 16);
	put_kv_str(pk, MT_KEY_POLICY, policy[c->policy], 16);
	put_kv_uint(pk, MT_KEY_MEAN, c->mean);
	put_str(pk, MT_KEY_TIERS, 64);
	msgpack_pack_map(pk, 6);
	put_kv_uint(pk, MT_KEY_LARGE, c->tiers.large);
	put_kv_uint(pk, MT_KEY_MEDIUM, c->tiers.medium);
	put_str(pk, MT_KEY_MEDIUM_RATE, 64);
	msgpack_pack_double(pk, c->tiers.medium_rate);
	put_str(pk, MT_KEY_SMALL_RATE, 64);
	msgpack_pack_double(pk, c->tiers.small_rate);
	put_kv_uint(pk, MT_KEY_BOOST_THRESHOLD, c->tiers.boost_threshold);
	put_str(pk, MT_KEY_BOOST_MAX, 64);
	msgpack_pack_double(pk, c->tiers.boost_max);
	put_kv_uint(pk, MT_KEY_SEED, c->seed);
	put_kv_uint(pk, MT_KEY_DEPTH, c->stack_depth);
	put_kv_str(pk, MT_KEY_UNWIND, c->unwind == MT_UNWIND_FP ? "fp" : "libunwind", 16);
	put_kv_uint(pk, MT_KEY_SHARD_SEQ, w->shard_no);
	put_kv_uint(pk, MT_KEY_ADDR_BASE, p->addr_base);
	put_kv_uint(pk, MT_KEY_BUFFER, w->cap);
	if (p->fork_seq)
		put_kv_uint(pk, MT_KEY_FORK_SEQ, p->fork_seq);
}

/* Begins the chunk in an empty buffer: its MT_REC_CHUNK record, then, in a
 * new shard's chunk 0, the header.  `now` (ns) is the time base, or 0 to
 * read the clock.  False if they did not fit (a 16 KiB buffer, the least,
 * holds them with room to spare). */
static bool start_chunk(struct mt_shard_writer *w, uint64_t now)
{
	struct cursor c;
	PACKER(pk, &c);

	w->time_last = now ? now : mt_now_ns();
	rec_open(w, &c);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint8(&pk, MT_REC_CHUNK);
	msgpack_pack_uint64(&pk, w->seq_last);
	msgpack_pack_uint64(&pk, w->time_last);
	if (w->chunk_seq == 0 && !w->created)
		put_header(w, &pk);
	if (c.over)
		return false;
	w->len = (size_t)(c.p - w->buf);
	w->limit = w->cap;
	return true;
}

/* What begin() cannot settle with its one comparison: no buffer, a failed
 * writer, an empty chunk (to be started) or a full one (to be flushed). */
static MT_COLD bool room_slow(struct mt_shard_writer *w, size_t need,
			      uint64_t now)
{
	if (w->failed || !w->buf)
		goto drop;
	if (w->len > HDR && w->len + need > w->cap) {
		mt_shard_flush(w);
		if (w->failed)
			goto drop;
	}
	if (w->len == HDR && !start_chunk(w, now))
		goto drop;
	if (w->len + need > w->cap)
		goto drop; /* larger than a chunk can hold */
	return true;
drop:
	mt_shard_drop(w, need);
	return false;
}

/* Makes room for a record of at most `need` bytes and opens it in c.  `now`
 * (ns) is the record's time, 0 for a record without one.  False when the
 * record is dropped (and counted).  One comparison on the common path:
 * `limit` is 0 whenever the slow path has work to do. */
static inline __attribute__((always_inline)) bool
begin(struct mt_shard_writer *w, size_t need, uint64_t now, struct cursor *c)
{
	if (MT_UNLIKELY(w->len + need > w->limit) && !room_slow(w, need, now))
		return false;
	w->chunk_records++;
	rec_open(w, c);
	return true;
}

void mt_shard_drop(struct mt_shard_writer *w, size_t bytes)
{
	w->dropped_records++;
	w->dropped_bytes += bytes;
	__atomic_add_fetch(&dropped_total, 1, __ATOMIC_RELAXED);
}

uint64_t mt_shard_dropped_total(void)
{
	return __atomic_load_n(&dropped_total, __ATOMIC_RELAXED);
}

bool mt_shard_ready_slow(struct mt_shard_writer *w, uint32_t tid)
{
	if (w->failed)
		return false;
	if (w->buf)
		return true;
	size_t cap = mt_shard_proc.conf->buffer;
	w->buf = mtje_malloc(cap);
	if (!w->buf)
		return false;
	w->cap = cap;
	w->len = HDR;
	w->limit = 0; /* the first record starts the chunk */
	w->tid = tid;
	w->shard_no = __atomic_fetch_add(&file_counter, 1, __ATOMIC_RELAXED);
	w->chunk_seq = 0;
	w->created = false;
	w->modules_written = 0;
	w->next_stack_id = 0;
	return true;
}

/* Writes pending module records; called inside a record's room. */
static void put_modules(struct mt_shard_writer *w)
{
	unsigned n = mt_modules_count();
	struct cursor c;
	PACKER(pk, &c);

	while (w->modules_written < n) {
		const struct mt_module *m = mt_modules_get(w->modules_written);
		size_t plen = strlen(m->path);
		if (!begin(w, 64 + plen + m->build_id_len, 0, &c))
			return;
		msgpack_pack_array(&pk, 6);
		msgpack_pack_uint8(&pk, MT_REC_MODULE);
		msgpack_pack_uint32(&pk, w->modules_written);
		msgpack_pack_str(&pk, plen);
		msgpack_pack_str_body(&pk, m->path, plen);
		msgpack_pack_bin(&pk, m->build_id_len);
		msgpack_pack_bin_body(&pk, m->build_id, m->build_id_len);
		msgpack_pack_uint64(&pk, m->base);
		msgpack_pack_uint64(&pk, m->size);
		rec_close(w, &c);
		w->modules_written++;
	}
}

FLATTEN void mt_shard_put_alloc(struct mt_shard_writer *w, uint64_t seq,
				uint64_t now, uintptr_t addr, uint64_t size,
				uint64_t slack, uint32_t stack_id, double weight)
{
	struct cursor c;
	PACKER(pk, &c);

	/* 8 elements: 2 fixints, 5 uints of at most 9 bytes, a uint32, a
	 * float32 */
	if (!begin(w, 1 + 2 + 5 * 9 + 5 + 5, now, &c))
		return;
	msgpack_pack_array(&pk, weight < 0 ? 7 : 8);
	msgpack_pack_uint8(&pk, MT_REC_ALLOC);
	msgpack_pack_uint64(&pk, seq - w->seq_last);
	w->seq_last = seq;
	msgpack_pack_uint64(&pk, tick(w, now));
	msgpack_pack_uint64(&pk, (addr - mt_shard_proc.addr_base) >> MT_ADDR_SHIFT);
	msgpack_pack_uint64(&pk, size);
	msgpack_pack_uint64(&pk, slack);
	msgpack_pack_uint32(&pk, stack_id);
	if (weight >= 0)
		msgpack_pack_float(&pk, (float)weight);
	rec_close(w, &c);
}

FLATTEN void mt_shard_put_free(struct mt_shard_writer *w, uint64_t seq,
			       uint64_t now, uintptr_t addr, uint64_t alloc_seq)
{
	struct cursor c;
	PACKER(pk, &c);

	if (!begin(w, 1 + 1 + 4 * 9, now, &c))
		return;
	msgpack_pack_array(&pk, 5);
	msgpack_pack_uint8(&pk, MT_REC_FREE);
	msgpack_pack_uint64(&pk, seq - w->seq_last);
	w->seq_last = seq;
	msgpack_pack_uint64(&pk, tick(w, now));
	msgpack_pack_uint64(&pk, (addr - mt_shard_proc.addr_base) >> MT_ADDR_SHIFT);
	msgpack_pack_uint64(&pk, alloc_seq);
	rec_close(w, &c);
}

void mt_shard_put_totals(struct mt_shard_writer *w, uint64_t allocs,
			 uint64_t frees, uint64_t bytes_allocated,
			 uint64_t bytes_freed, bool shared)
{
	uint64_t now = mt_now_ns();
	struct cursor c;
	PACKER(pk, &c);

	if (!begin(w, 64, now, &c))
		return;
	msgpack_pack_array(&pk, 7);
	msgpack_pack_uint8(&pk, MT_REC_TOTALS);
	msgpack_pack_uint64(&pk, tick(w, now));
	msgpack_pack_uint64(&pk, allocs);
	msgpack_pack_uint64(&pk, frees);
	msgpack_pack_uint64(&pk, bytes_allocated);
	msgpack_pack_uint64(&pk, bytes_freed);
	if (shared)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
	rec_close(w, &c);
}

void mt_shard_put_classes(struct mt_shard_writer *w, const uint64_t *sizes,
			  const uint64_t *requests, unsigned n)
{
	uint64_t now = mt_now_ns();
	struct cursor c;
	PACKER(pk, &c);

	if (!begin(w, 32 + 20 * (size_t)n, now, &c))
		return;
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint8(&pk, MT_REC_CLASSES);
	msgpack_pack_uint64(&pk, tick(w, now));
	msgpack_pack_array(&pk, n);
	for (unsigned i = 0; i < n; i++) {
		msgpack_pack_array(&pk, 2);
		msgpack_pack_uint64(&pk, sizes[i]);
		msgpack_pack_uint64(&pk, requests[i]);
	}
	rec_close(w, &c);
}

void mt_shard_put_timeline(struct mt_shard_writer *w, uint64_t now,
			   uint64_t allocated, uint64_t active,
			   uint64_t resident, uint64_t mapped,
			   uint64_t live_estimate)
{
	struct cursor c;
	PACKER(pk, &c);

	if (!begin(w, 64, now, &c))
		return;
	msgpack_pack_array(&pk, 7);
	msgpack_pack_uint8(&pk, MT_REC_TIMELINE);
	msgpack_pack_uint64(&pk, tick(w, now));
	msgpack_pack_uint64(&pk, allocated);
	msgpack_pack_uint64(&pk, active);
	msgpack_pack_uint64(&pk, resident);
	msgpack_pack_uint64(&pk, mapped);
	msgpack_pack_uint64(&pk, live_estimate);
	rec_close(w, &c);
}

static void put_timed_str(struct mt_shard_writer *w, enum mt_rec_kind kind,
			  const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	uint64_t now = mt_now_ns();
	struct cursor c;
	PACKER(pk, &c);

	if (!begin(w, 32 + n, now, &c))
		return;
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint8(&pk, kind);
	msgpack_pack_uint64(&pk, tick(w, now));
	msgpack_pack_str(&pk, n);
	msgpack_pack_str_body(&pk, s, n);
	rec_close(w, &c);
}

void mt_shard_put_mark(struct mt_shard_writer *w, const char *label)
{
	put_timed_str(w, MT_REC_MARK, label, 1024);
}

void mt_shard_put_thread_name(struct mt_shard_writer *w, const char *name)
{
	put_timed_str(w, MT_REC_THREAD_NAME, name, 16);
}

void mt_shard_put_end(struct mt_shard_writer *w, const char *reason)
{
	struct cursor c;
	PACKER(pk, &c);

	if (w->dropped_records && begin(w, 32, 0, &c)) {
		msgpack_pack_array(&pk, 3);
		msgpack_pack_uint8(&pk, MT_REC_DROPPED);
		msgpack_pack_uint64(&pk, w->dropped_records);
		msgpack_pack_uint64(&pk, w->dropped_bytes);
		rec_close(w, &c);
		w->dropped_records = w->dropped_bytes = 0;
	}
	put_timed_str(w, MT_REC_END, reason, 32);
}

void mt_shard_put_thread_exit(struct mt_shard_writer *w, uint32_t tid,
			      const char *name, uint64_t allocs, uint64_t frees,
			      uint64_t bytes_allocated, uint64_t bytes_freed)
{
	struct cursor c;
	PACKER(pk, &c);

	if (!begin(w, 96, 0, &c))
		return;
	msgpack_pack_array(&pk, 7);
	msgpack_pack_uint8(&pk, MT_REC_THREAD_EXIT);
	msgpack_pack_uint32(&pk, tid);
	put_str(&pk, name, 16);
	msgpack_pack_uint64(&pk, allocs);
	msgpack_pack_uint64(&pk, frees);
	msgpack_pack_uint64(&pk, bytes_allocated);
	msgpack_pack_uint64(&pk, bytes_freed);
	rec_close(w, &c);
}

/* ---- stacks ---- */

static uint64_t hash_stack(const uintptr_t *pcs, unsigned n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n;

	for (unsigned i = 0; i < n; i++) {
		h ^= pcs[i];
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	h ^= h >> 29;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 32;
	return h ? h : 1;
}

static struct mt_intern *intern_new(uint32_t slots)
{
	size_t bytes = sizeof(struct mt_intern) + slots * sizeof(struct slot);
	struct mt_intern *t = mtje_calloc(1, bytes);

	if (t)
		t->mask = slots - 1;
	return t;
}

/* Finds the id of hash h, or inserts `id`; returns the slot's id and sets
 * *fresh when inserted. */
static uint32_t intern(struct mt_intern *t, uint64_t h, uint32_t id, bool *fresh)
{
	for (uint32_t i = (uint32_t)h & t->mask;; i = (i + 1) & t->mask) {
		if (t->slot[i].hash == h)
			return t->slot[i].id;
		if (!t->slot[i].hash) {
			t->slot[i].hash = h;
			t->slot[i].id = id;
			t->used++;
			*fresh = true;
			return id;
		}
	}
}

static bool intern_grow(struct mt_shard_writer *w)
{
	struct mt_intern *old = w->intern;
	uint32_t slots = old ? (old->mask + 1) * 2 : 1024;

	if (slots > (1u << 20)) {
		/* A million distinct stacks in one shard: start over; stacks
		 * seen again get new ids and are written again. */
		memset(old->slot, 0, (old->mask + 1) * sizeof(struct slot));
		old->used = 0;
		w->last_depth = UINT32_MAX;
		return true;
	}
	struct mt_intern *t = intern_new(slots);
	if (!t)
		return old != NULL;
	for (uint32_t i = 0; old && i <= old->mask; i++)
		if (old->slot[i].hash) {
			bool f = false;
			intern(t, old->slot[i].hash, old->slot[i].id, &f);
		}
	mtje_free(old);
	w->intern = t;
	return true;
}

/* True when pcs[0..n) is the stack interned last (innermost frames, which
 * differ most, compared first). */
static bool same_as_last(const struct mt_shard_writer *w, const uintptr_t *pcs,
			 unsigned n)
{
	if (n != w->last_depth)
		return false;
	for (unsigned i = 0; i < n; i++)
		if (pcs[i] != w->last_pcs[i])
			return false;
	return true;
}

/* Remembers pcs[0..n) as the last stack, of id `id`. */
static void remember(struct mt_shard_writer *w, const uintptr_t *pcs,
		     unsigned n, uint32_t id)
{
	if (!w->last_pcs) {
		w->last_pcs = mtje_malloc(MT_STACK_MAX * sizeof(uintptr_t));
		if (!w->last_pcs)
			return;
	}
	for (unsigned i = 0; i < n; i++)
		w->last_pcs[i] = pcs[i];
	w->last_depth = n;
	w->last_id = id;
}

uint32_t mt_shard_stack(struct mt_shard_writer *w, const uintptr_t *pcs,
			unsigned n)
{
	bool fresh = false;
	struct cursor c;
	PACKER(pk, &c);

	/* Samples often come from the same site in a row (a loop): comparing
	 * with the last stack is cheaper than hashing and probing
	 * (callgrind, 6 frames: about 40 instructions against 117). */
	if (w->last_pcs && same_as_last(w, pcs, n))
		return w->last_id;
	if ((!w->intern || w->intern->used * 2 >= w->intern->mask) &&
	    !intern_grow(w))
		return UINT32_MAX;
	uint32_t id = intern(w->intern, hash_stack(pcs, n), w->next_stack_id,
			     &fresh);
	remember(w, pcs, n, id);
	if (!fresh)
		return id;
	w->next_stack_id++;
	for (unsigned i = 0; i < n; i++)
		if (!mt_modules_contain(pcs[i])) {
			mt_modules_refresh();
			break;
		}
	put_modules(w);
	if (!begin(w, 32 + 9 * (size_t)n, 0, &c))
		return id;
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint8(&pk, MT_REC_STACK);
	msgpack_pack_uint32(&pk, id);
	msgpack_pack_array(&pk, n);
	for (unsigned i = 0; i < n; i++)
		msgpack_pack_uint64(&pk, pcs[i]);
	rec_close(w, &c);
	return id;
}

/* ---- files ---- */

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* mkdir -p with mode 0700 for what we create. */
static int make_dir(const char *dir)
{
	char path[MT_PATH_MAX];
	size_t n = strnlen(dir, sizeof(path) - 1);

	memcpy(path, dir, n);
	path[n] = '\0';
	for (size_t i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char c = path[i];
		path[i] = '\0';
		if (mkdir(path, 0700) && errno != EEXIST)
			return -errno;
		path[i] = c;
	}
	return 0;
}

static int open_shard(struct mt_shard_writer *w)
{
	const struct mt_shard_proc *p = &mt_shard_proc;
	int dfd, fd = -1, err;

	/* The directory itself is not followed if it is a link (one planted
	 * under the name the user gave, say): ELOOP, and nothing is written.
	 * It is made (mkdir -p) only when a new shard does not find it: one
	 * mkdir per path component for every shard was most of the system
	 * calls of a program with many short sampling threads. */
	dfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 && errno == ENOENT && !w->created) {
		err = make_dir(p->dir);
		if (err)
			return err;
		dfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (dfd < 0)
		return -errno;
	if (w->created) {
		fd = openat(dfd, w->name, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
		err = fd < 0 ? -errno : 0;
		goto out_close;
	}
	for (int tries = 0; tries < 1000; tries++) {
		/* <exe>.<pid>.<tid>.<shard>.mts; a stale file of an earlier
		 * process with the same pid gets a -N suffix after ours. */
		if (tries == 0)
			mt_fmt(w->name, sizeof(w->name), "%s.%u.%u.%u%s",
			       p->exe_base, p->pid, w->tid, w->shard_no,
			       MT_SHARD_SUFFIX);
		else
			mt_fmt(w->name, sizeof(w->name), "%s.%u.%u.%u-%d%s",
			       p->exe_base, p->pid, w->tid, w->shard_no, tries,
			       MT_SHARD_SUFFIX);
		/* Never follow a link, never reuse a file: a name planted in
		 * the directory is skipped, not written through. */
		fd = openat(dfd, w->name,
			    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	err = fd < 0 ? -errno : 0;
out_close:
	close(dfd);
	return err ? err : fd;
}

static void report_failure(struct mt_shard_writer *w, int err)
{
	if (__atomic_exchange_n(&failure_reported, 1, __ATOMIC_RELAXED))
		return;
	mt_log("cannot write shard %s/%s: %s; records of this thread are "
	       "dropped from now on (the program is not affected)",
	       mt_shard_proc.dir, w->name[0] ? w->name : "(new)",
	       strerrordesc_np(-err));
}

int mt_shard_flush(struct mt_shard_writer *w)
{
	unsigned char *ch = w->buf + MT_SHARD_FILE_HEADER;
	size_t start = w->created ? MT_SHARD_FILE_HEADER : 0;
	int fd, err = 0;

	if (!w->buf || w->failed || w->len <= HDR)
		return w->failed ? -EIO : 0;
	uint32_t plen = (uint32_t)(w->len - HDR);
	put_le32(ch, MT_CHUNK_MAGIC);
	put_le32(ch + 4, plen);
	put_le32(ch + 8, w->chunk_seq);
	put_le32(ch + 12, mt_crc32c(0, w->buf + HDR, plen));
	put_le32(ch + 16, 0);
	put_le32(ch + 20, mt_crc32c(0, ch, 20));
	if (!w->created) {
		memcpy(w->buf, MT_SHARD_MAGIC, 8);
		w->buf[8] = MT_SHARD_MAJOR;
		w->buf[9] = 0;
		w->buf[10] = MT_SHARD_MINOR;
		w->buf[11] = 0;
		put_le32(w->buf + 12, 0);
	}
	fd = open_shard(w);
	if (fd < 0) {
		err = fd;
		goto out_fail;
	}
	for (size_t off = start; off < w->len;) {
		ssize_t n = write(fd, w->buf + off, w->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			close(fd);
			goto out_fail;
		}
		off += (size_t)n;
	}
	close(fd);
	w->created = true;
	w->chunk_seq++;
	w->chunk_records = 0;
	w->len = HDR;
	w->limit = 0;
	return 0;
out_fail:
	/* The chunk's records are lost; count them as dropped. */
	w->dropped_records += w->chunk_records;
	w->dropped_bytes += w->len - HDR;
	__atomic_add_fetch(&dropped_total, w->chunk_records, __ATOMIC_RELAXED);
	w->chunk_records = 0;
	w->failed = true;
	w->len = HDR;
	w->limit = 0;
	report_failure(w, err);
	return err;
}

void mt_shard_release(struct mt_shard_writer *w, bool forget)
{
	if (!forget)
		mt_shard_flush(w);
	if (w->buf)
		mtje_free(w->buf);
	if (w->intern)
		mtje_free(w->intern);
	if (w->last_pcs)
		mtje_free(w->last_pcs);
	w->buf = NULL;
	w->intern = NULL;
	w->last_pcs = NULL;
	w->last_depth = UINT32_MAX;
	w->len = w->cap = w->limit = 0;
	w->created = false;
	w->failed = false;
	w->seq_last = 0;
	w->dropped_records = w->dropped_bytes = 0;
}
