/* The thread lifecycle: lazy process initialisation, thread set-up on the
 * first allocation, thread exit, fork and process exit, the exact counters,
 * and the flushes that write them. */
#include "config.h"

#include "track.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "mtalloc.h"

#define EXIT_FLUSH_WAIT_NS (1000u * 1000 * 1000) /* per busy writer */

__thread struct mt_tls mt_tls __attribute__((tls_model("initial-exec"))) = {
	.flim = MT_FLIM_UNSET,
};

/* A program may compile options in: const char *mtalloc_conf = "...". */
extern const char *mtalloc_conf __attribute__((weak));

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static bool have_key;
static struct mt_conf conf;
static bool tracking;      /* shards are written (not MTALLOC=off) */
static bool exiting;       /* the process-exit flush ran */

/* Registry of the live threads' state, for process-wide figures.  Entries
 * are allocated apart from the threads' TLS: a thread whose key destructor
 * never runs (its first allocation came in the last destructor round)
 * leaves an entry behind, which retire_dead() recognises by the thread's
 * death and by the stamp, and retires without touching freed memory. */
struct mt_reg {
	struct mt_tls *t;
	uint64_t stamp;   /* t->stamp at registration */
	pid_t tid;        /* kernel thread id */
	const char *pd;   /* the thread's pthread_t (glibc's descriptor) */
	struct mt_reg *next, *prev;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mt_reg *reg_head;
static uint32_t reg_count;             /* live threads (count) */
static uint64_t stamp_counter;         /* last stamp given (under reg_lock) */
static struct mtalloc_counts exited;   /* counts of threads gone */
/* Allocations and frees made by threads not set up (mtalloc's own start-up)
 * or after their thread-exit destructor ran; atomic. */
static struct mtalloc_counts late;

/* Shard of the process itself: totals of threads that exited without a
 * shard of their own, and frees made after a thread's own shard closed. */
static struct mt_shard_writer collector;

static uint64_t timeline_last; /* ns of the last timeline point (atomic) */

static void thread_exit(void *arg);
static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

/* Offset of the kernel tid inside glibc's thread descriptor, which the
 * kernel clears when the thread has exited (CLONE_CHILD_CLEARTID: that is
 * what pthread_join waits for); -1 if not found.  Found by looking for the
 * calling thread's tid in its descriptor, and checked again in every
 * thread that registers. */
static long tid_offset = -1;

static void find_tid_offset(void)
{
	const char *pd = (const char *)pthread_self();
	pid_t me = gettid();

	for (long off = 0; off < 2048; off += sizeof(pid_t)) {
		pid_t v;
		memcpy(&v, pd + off, sizeof(v));
		if (v == me) {
			tid_offset = off;
			return;
		}
	}
}

static void read_file(const char *path, char *buf, size_t size, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;

	if (fd >= 0) {
		ssize_t r;
		while (n < size && (r = read(fd, buf + n, size - n)) > 0)
			n += (size_t)r;
		close(fd);
	}
	*len = n;
}

/* Expands %p (pid) and %% in the configured directory; false (and an
 * empty result) when the expansion does not fit: a cut path could end in
 * "..", or anywhere else the user did not ask for. */
static bool expand_dir(char *out, size_t size, const char *in, uint32_t pid)
{
	size_t n = 0;

	for (const char *s = in; *s; s++) {
		char num[16];
		const char *piece = s;
		size_t len = 1;
		if (s[0] == '%' && s[1] == 'p') {
			len = mt_fmt(num, sizeof(num), "%u", pid);
			piece = num;
			s++;
		} else if (s[0] == '%' && s[1] == '%') {
			s++;
		}
		if (n + len >= size) {
			out[0] = '\0';
			return false;
		}
		memcpy(out + n, piece, len);
		n += len;
	}
	out[n] = '\0';
	return true;
}

static void fill_process(void)
{
	struct mt_shard_proc *p = &mt_shard_proc;
	struct timespec real, mono;
	struct utsname u;
	ssize_t n;

	p->pid = (uint32_t)getpid();
	p->ppid = (uint32_t)getppid();
	p->conf = &conf;
	if (uname(&u) == 0)
		mt_fmt(p->host, sizeof(p->host), "%s", u.nodename);
	n = readlink("/proc/self/exe", p->exe, sizeof(p->exe) - 1);
	p->exe[n > 0 ? n : 0] = '\0';
	const char *slash = strrchr(p->exe, '/');
	p->exe_base = slash ? slash + 1 : p->exe[0] ? p->exe : "prog";
	read_file("/proc/self/cmdline", p->cmdline, sizeof(p->cmdline) - 1,
		  &p->cmdline_len);
	if (p->cmdline_len && p->cmdline[p->cmdline_len - 1] != '\0')
		p->cmdline[p->cmdline_len++] = '\0'; /* truncated: close it */
	clock_gettime(CLOCK_REALTIME, &real);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	p->start_real_ns = (uint64_t)real.tv_sec * 1000000000u + (uint64_t)real.tv_nsec;
	p->start_mono_ns = (uint64_t)mono.tv_sec * 1000000000u + (uint64_t)mono.tv_nsec;
	if (!expand_dir(p->dir, sizeof(p->dir), conf.dir, p->pid) && tracking) {
		mt_log("dir:%s is too long once %%p is expanded; tracking is off",
		       conf.dir);
		tracking = false;
	}
}

static void process_init(void)
{
	/* jemalloc must register its fork handlers before ours, so that ours
	 * run first in the parent and last in the child. */
	mtje_free(mtje_malloc(1));
	bool aligned = mt_backend_align16();
	mt_conf_default(&conf);
	if (&mtalloc_conf && mtalloc_conf)
		mt_conf_parse(&conf, mtalloc_conf, "mtalloc_conf");
	mt_conf_parse(&conf, secure_getenv("MTALLOC"), "MTALLOC");
	/* A set-user-ID or set-group-ID program writes no shards (they would
	 * be its owner's, in a directory its caller chose) unless the program
	 * itself compiled options in. */
	if (getauxval(AT_SECURE) && !(&mtalloc_conf && mtalloc_conf))
		conf.off = true;
	mt_backend_init(&conf);
	find_tid_offset();
	if (!aligned)
		mt_log("this jemalloc's size classes are not the expected ones: "
		       "blocks of 8 bytes or less are aligned to 8 only");
	tracking = !conf.off;
	if (tracking) {
		/* Reserved even for sample:off, so that mtalloc_sample_set can
		 * turn sampling on later; the reservation costs no memory. */
		int err = mt_backend_tracked_init();
		if (err) {
			mt_log("cannot reserve the tracked address range (%s); "
			       "no allocation will be sampled", strerrordesc_np(-err));
			conf.policy = MT_SAMPLE_OFF;
		}
	}
	fill_process();
	collector.shared = true;
	if (tracking) {
		mt_shard_sync_init();
		mt_clock_init();
	}
	mt_shard_proc.addr_base = mt_backend_tracked_base();
	mt_sample_init(&conf);
	mt_stack_init(&conf);
	if (tracking)
		mt_modules_refresh();
	have_key = pthread_key_create(&key, thread_exit) == 0;
	if (!have_key)
		mt_log("no thread key left: thread exits will not be seen");
	if (pthread_atfork(fork_prepare, fork_parent, fork_child))
		mt_log("pthread_atfork failed: fork may lose arena slots");
}

static uint64_t frees_of(const struct mt_tls *t)
{
	return t->nfree;
}

/* Adds the counts of thread t. */
static void add_counts(struct mtalloc_counts *sum, const struct mt_tls *t)
{
	sum->allocs += t->nalloc;
	sum->frees += frees_of(t);
	if (t->je_allocated) {
		sum->bytes_allocated += *t->je_allocated + t->cache_alloc_bytes;
		sum->bytes_freed += *t->je_deallocated + t->cache_free_bytes;
	}
}

/* The counts of thread t alone. */
static void own_counts(struct mt_tls *t, struct mtalloc_counts *c, bool *shared)
{
	memset(c, 0, sizeof(*c));
	add_counts(c, t);
	*shared = t->slot < 0;
}

static void add_late(struct mtalloc_counts *sum)
{
	sum->allocs += __atomic_load_n(&late.allocs, __ATOMIC_RELAXED);
	sum->frees += __atomic_load_n(&late.frees, __ATOMIC_RELAXED);
	sum->bytes_allocated += __atomic_load_n(&late.bytes_allocated, __ATOMIC_RELAXED);
	sum->bytes_freed += __atomic_load_n(&late.bytes_freed, __ATOMIC_RELAXED);
}

void mt_thread_count_alloc(struct mt_tls *t, const void *p)
{
	if (t->state == MT_THREAD_READY) {
		t->nalloc++;
		return;
	}
	__atomic_add_fetch(&late.allocs, 1, __ATOMIC_RELAXED);
	if (p)
		__atomic_add_fetch(&late.bytes_allocated,
				   mtje_malloc_usable_size(p), __ATOMIC_RELAXED);
	if (t->state == MT_THREAD_FINISHED)
		t->left = 0; /* keep coming here */
}

void mt_thread_count_free(struct mt_tls *t, const void *p)
{
	if (t->state == MT_THREAD_READY) {
		t->nfree++;
		return;
	}
	__atomic_add_fetch(&late.frees, 1, __ATOMIC_RELAXED);
	if (p && !mt_backend_tracked(p))
		__atomic_add_fetch(&late.bytes_freed, mtje_malloc_usable_size(p),
				   __ATOMIC_RELAXED);
	t->flim = MT_FLIM_UNSET; /* keep coming here */
}

/* Registers t (guard set); a thread that cannot get an entry is counted
 * only through its shard. */
static void reg_insert(struct mt_tls *t)
{
	struct mt_reg *r = mtje_malloc(sizeof(*r));

	t->reg = r;
	if (!r)
		return;
	r->t = t;
	r->tid = (pid_t)t->tid;
	r->pd = (const char *)pthread_self();
	if (tid_offset >= 0) {
		pid_t v;
		memcpy(&v, r->pd + tid_offset, sizeof(v));
		if (v != r->tid)
			tid_offset = -1; /* not glibc's layout after all */
	}
	pthread_mutex_lock(&reg_lock);
	t->stamp = r->stamp = ++stamp_counter;
	r->prev = NULL;
	r->next = reg_head;
	if (reg_head)
		reg_head->prev = r;
	reg_head = r;
	reg_count++;
	pthread_mutex_unlock(&reg_lock);
}

/* Unlinks and frees entry r (reg_lock held). */
static void reg_unlink(struct mt_reg *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		reg_head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	reg_count--;
	if (r->t == &mt_tls)
		mt_tls.reg = NULL;
	mtje_free(r);
}

/* Copies n bytes that may no longer be mapped; false if they are not. */
static bool safe_copy(void *dst, const void *src, size_t n)
{
	struct iovec local = { dst, n }, remote = { (void *)src, n };

	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n;
}

/* Retires the entries of threads that died without our destructor running
 * (reg_lock held): their counts are folded in if their TLS is still theirs,
 * their arena is given back.  Costs one tgkill(2) per other thread. */
static void retire_dead(void)
{
	pid_t pid = getpid();

	for (struct mt_reg *r = reg_head, *next; r; r = next) {
		struct mt_tls copy;
		next = r->next;
		pid_t v = 0;
		bool gone = tid_offset >= 0 &&
			    (!safe_copy(&v, r->pd + tid_offset, sizeof(v)) || v != r->tid);
		if (r->t == &mt_tls)
			continue;
		if (!gone && (syscall(SYS_tgkill, pid, r->tid, 0) == 0 || errno != ESRCH))
			continue;
		if (safe_copy(&copy, r->t, sizeof(copy)) && copy.stamp == r->stamp) {
			copy.je_allocated = copy.je_deallocated = NULL; /* gone */
			add_counts(&exited, &copy);
			mt_track_fold(&copy, true); /* its table is on our heap */
			mt_backend_thread_release(copy.slot);
		}
		reg_unlink(r);
	}
}

static void thread_setup(struct mt_tls *t)
{
	t->slot = mt_backend_thread_bind();
	mt_backend_thread_counters(&t->je_allocated, &t->je_deallocated);
	t->tid = (uint32_t)gettid();
	t->sampling = tracking && !exiting;
	mt_sample_thread_init(t);
	if (have_key)
		pthread_setspecific(key, t); /* may calloc: guard is set */
	reg_insert(t);
	t->nfree = 0;
	t->flim = mt_backend_tracked_bound();
	t->state = MT_THREAD_READY;
}

void mt_thread_slow(struct mt_tls *t)
{
	t->guard++;
	if (t->state == MT_THREAD_NEW) {
		pthread_once(&once, process_init);
		thread_setup(t);
	}
	t->guard--;
}

/* ---- writing totals ---- */

static void put_name_if_changed(struct mt_shard_writer *w)
{
	char name[16] = "";

	if (w != &mt_tls.w)
		return; /* only a thread can ask its own name cheaply */
	pthread_getname_np(pthread_self(), name, sizeof(name));
	if (strncmp(name, w->thread_name, sizeof(name)) != 0) {
		memcpy(w->thread_name, name, sizeof(name));
		if (w->buf)
			mt_shard_put_thread_name(w, name);
	}
}

static void put_timeline(struct mt_shard_writer *w)
{
	uint64_t a = 0, act = 0, res = 0, map = 0;

	mt_backend_process_bytes(&a, &act, &res, &map);
	uint64_t now = mt_now_ns();
	__atomic_store_n(&timeline_last, now, __ATOMIC_RELAXED);
	mt_shard_put_timeline(w, now, a, act, res, map,
			      mt_track_live_estimate(&mt_tls));
}

void mt_thread_timeline_tick(struct mt_shard_writer *w, uint64_t now)
{
	uint64_t last = __atomic_load_n(&timeline_last, __ATOMIC_RELAXED);

	/* Signed: another thread may have set a later point since `now`. */
	if (!conf.timeline_ms ||
	    (int64_t)(now - last) < (int64_t)(conf.timeline_ms * 1000000u))
		return;
	if (__atomic_compare_exchange_n(&timeline_last, &last, now, false,
					__ATOMIC_RELAXED, __ATOMIC_RELAXED))
		put_timeline(w);
}

/* Requests of one jemalloc size class; -1 if it cannot be read. */
static int64_t class_requests(unsigned arena, bool bin, unsigned j)
{
	char name[96];
	uint64_t req = 0;
	size_t len = sizeof(req);

	mt_fmt(name, sizeof(name),
	       bin ? "stats.arenas.%u.bins.%u.nrequests"
		   : "stats.arenas.%u.lextents.%u.nrequests", arena, j);
	return mtje_mallctl(name, &req, &len, NULL, 0) ? -1 : (int64_t)req;
}

/* Per-size-class request counts of the whole process: jemalloc's, less
 * what its tracked arena served (sampled objects sit behind a header, one
 * class up), plus the sampled allocations by the class their size asks
 * for.  The calling thread's cache is flushed first; other threads'
 * requests reach jemalloc's counters at their own cache flushes and exits. */
static void put_classes(struct mt_shard_writer *w)
{
	uint64_t sizes[256], reqs[256];
	unsigned nbins = 0, nlextents = 0, n = 0;
	int tracked = mt_backend_tracked_arena();
	size_t len = sizeof(unsigned);
	uint64_t epoch = 1;
	size_t elen = sizeof(epoch);
	char name[96];

	mtje_mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
	mt_track_fold(&mt_tls, false); /* this thread's sampled requests */
	mtje_mallctl("epoch", &epoch, &elen, &epoch, sizeof(epoch));
	if (mtje_mallctl("arenas.nbins", &nbins, &len, NULL, 0) ||
	    mtje_mallctl("arenas.nlextents", &nlextents, &len, NULL, 0))
		return;
	for (unsigned i = 0; i < nbins + nlextents && n < 256; i++) {
		bool bin = i < nbins;
		unsigned j = bin ? i : i - nbins;
		size_t size = 0, slen = sizeof(size);
		mt_fmt(name, sizeof(name), bin ? "arenas.bin.%u.size" : "arenas.lextent.%u.size", j);
		if (mtje_mallctl(name, &size, &slen, NULL, 0))
			continue;
		int64_t all = class_requests(4096, bin, j); /* MALLCTL_ARENAS_ALL */
		int64_t in_tracked = tracked >= 0 ? class_requests((unsigned)tracked, bin, j) : 0;
		if (all < 0)
			continue;
		/* No request asks for the 8-byte class any more (mt_backend_align16) */
		int64_t sampled = size >= 16 ? (int64_t)mt_track_class_requests(size) : 0;
		int64_t req = all - (in_tracked > 0 ? in_tracked : 0) + sampled;
		if (req <= 0)
			continue;
		sizes[n] = size;
		reqs[n++] = (uint64_t)req;
	}
	mt_shard_put_classes(w, sizes, reqs, n);
}

/* Ends thread t's shard (the caller holds its writer). */
static void close_shard(struct mt_tls *t, const char *reason)
{
	struct mtalloc_counts c;
	bool shared;

	own_counts(t, &c, &shared);
	put_name_if_changed(&t->w);
	mt_shard_put_totals(&t->w, c.allocs, c.frees, c.bytes_allocated,
			    c.bytes_freed, shared);
	mt_shard_put_end(&t->w, reason);
}

/* Hands the totals of thread t, which has no shard, to the collector. */
static void collect_totals(struct mt_tls *t)
{
	struct mtalloc_counts c;
	char name[16] = "";
	bool shared;

	own_counts(t, &c, &shared);
	pthread_getname_np(pthread_self(), name, sizeof(name));
	if (!mt_shard_lock(&collector, EXIT_FLUSH_WAIT_NS))
		return;
	if (mt_shard_ready(&collector, 0))
		mt_shard_put_thread_exit(&collector, t->tid, name, c.allocs,
					 c.frees, c.bytes_allocated, c.bytes_freed);
	mt_shard_unlock(&collector);
}

/* Key destructor: the thread is exiting.  Later allocations (other
 * libraries' TLS destructors) must still work: mark the thread finished so
 * they pass straight through, write its totals, fold its counts into the
 * process totals and give its arena back. */
static void thread_exit(void *arg)
{
	struct mt_tls *t = arg;

	t->guard++;
	if (tracking && mt_shard_lock_own_wait(&t->w, EXIT_FLUSH_WAIT_NS)) {
		if (t->w.buf) {
			close_shard(t, "exit");
			mt_shard_release(&t->w, false);
		} else if (!t->w.failed) {
			collect_totals(t);
		}
		mt_shard_unlock_own(&t->w);
	}
	mt_track_thread_exit(t);
	pthread_mutex_lock(&reg_lock);
	add_counts(&exited, t);
	if (t->reg)
		reg_unlink(t->reg);
	pthread_mutex_unlock(&reg_lock);
	mt_backend_thread_release(t->slot);
	t->slot = -1;
	t->nalloc = 0;
	t->je_allocated = t->je_deallocated = NULL;
	t->sampling = false;
	t->state = MT_THREAD_FINISHED;
	/* Later allocations and frees take the slow path and are counted in
	 * the process's late counters. */
	t->left = 0;
	t->flim = MT_FLIM_UNSET;
	t->nfree = 0;
	t->guard--;
}

/* Flushes every shard: the calling thread's and the collector at once,
 * the others when their owner is not writing (waiting a bounded time). */
static int flush_all(bool at_exit)
{
	struct mt_tls *self = &mt_tls;
	int err = 0;

	if (!tracking || once == PTHREAD_ONCE_INIT)
		return 0;
	self->guard++;
	if (self->state == MT_THREAD_READY &&
	    mt_shard_lock_own_wait(&self->w, EXIT_FLUSH_WAIT_NS)) {
		if (!self->w.failed && mt_shard_ready(&self->w, self->tid)) {
			put_timeline(&self->w);
			put_classes(&self->w);
		}
		mt_shard_unlock_own(&self->w);
	}
	pthread_mutex_lock(&reg_lock);
	retire_dead();
	for (struct mt_reg *r = reg_head; r; r = r->next) {
		struct mt_tls *t = r->t;
		if (!mt_shard_lock(&t->w, EXIT_FLUSH_WAIT_NS))
			continue;
		if (t->w.buf) {
			struct mtalloc_counts c;
			bool shared;
			own_counts(t, &c, &shared);
			if (t == self)
				put_name_if_changed(&t->w);
			mt_shard_put_totals(&t->w, c.allocs, c.frees,
					    c.bytes_allocated, c.bytes_freed, shared);
			if (at_exit)
				mt_shard_put_end(&t->w, "process-exit");
			if (mt_shard_flush(&t->w))
				err = -EIO;
		} else if (at_exit && !t->w.failed && mt_shard_lock(&collector, EXIT_FLUSH_WAIT_NS)) {
			struct mtalloc_counts c;
			bool shared;
			own_counts(t, &c, &shared);
			if (mt_shard_ready(&collector, 0))
				mt_shard_put_thread_exit(&collector, t->tid, "",
							 c.allocs, c.frees,
							 c.bytes_allocated, c.bytes_freed);
			mt_shard_unlock(&collector);
		}
		mt_shard_unlock(&t->w);
	}
	pthread_mutex_unlock(&reg_lock);
	if (mt_shard_lock(&collector, EXIT_FLUSH_WAIT_NS)) {
		if (collector.buf && at_exit)
			mt_shard_put_end(&collector, "process-exit");
		if (mt_shard_flush(&collector))
			err = -EIO;
		mt_shard_unlock(&collector);
	}
	self->guard--;
	return err;
}

int mt_thread_flush_all(void)
{
	return flush_all(false);
}

/* Normal process exit: every thread's pending records, including those of
 * threads still running, reach their shards. */
__attribute__((destructor)) static void process_exit(void)
{
	if (exiting)
		return;
	flush_all(true);
	exiting = true;
	uint64_t dropped = mt_shard_dropped_total();
	if (dropped)
		mt_log("%llu sampled records could not be written",
		       (unsigned long long)dropped);
}

void mt_thread_mark(const char *label)
{
	struct mt_tls *t = &mt_tls;

	if (t->state == MT_THREAD_NEW)
		mt_thread_slow(t);
	if (!tracking || t->state != MT_THREAD_READY || !label)
		return;
	t->guard++;
	if (mt_shard_lock_own(&t->w)) {
		if (mt_shard_ready(&t->w, t->tid)) {
			mt_shard_put_mark(&t->w, label);
			put_timeline(&t->w);
		}
		mt_shard_unlock_own(&t->w);
	}
	t->guard--;
}

int mt_thread_sample_set(const char *spec)
{
	struct mt_conf c;

	if (!spec)
		return -EINVAL;
	if (mt_tls.state == MT_THREAD_NEW)
		mt_thread_slow(&mt_tls);
	c = conf;
	if (mt_conf_parse_sample(&c, spec, strlen(spec)))
		return -EINVAL;
	if (!tracking || (c.policy != MT_SAMPLE_OFF && !mt_backend_tracked_base()))
		return -ENOTSUP; /* nothing can be sampled */
	mt_tls.guard++;
	pthread_mutex_lock(&reg_lock);
	conf.policy = c.policy;
	conf.mean = c.mean;
	conf.tiers = c.tiers;
	mt_sample_replace(&c);
	/* Ask every thread to re-read the policy on its next allocation.  A
	 * racing fast path may undo `left = 0`; the thread then notices at
	 * its next natural visit (at most MT_REARM_MAX bytes later). */
	retire_dead();
	for (struct mt_reg *r = reg_head; r; r = r->next) {
		__atomic_store_n(&r->t->pending, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&r->t->left, 0, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&reg_lock);
	mt_tls.guard--;
	return 0;
}

/* ---- fork ---- */

static void fork_prepare(void)
{
	struct mt_tls *t = &mt_tls;

	/* The parent's pending records go out now: the child forgets them. */
	if (tracking && t->state == MT_THREAD_READY && mt_shard_lock_own(&t->w)) {
		t->guard++;
		mt_shard_flush(&t->w);
		t->guard--;
		mt_shard_unlock_own(&t->w);
	}
	pthread_mutex_lock(&reg_lock);
	mt_backend_fork_prepare();
}

static void fork_parent(void)
{
	mt_backend_fork_parent();
	pthread_mutex_unlock(&reg_lock);
}

static void fork_child(void)
{
	struct mt_tls *self = &mt_tls;

	pthread_mutex_init(&reg_lock, NULL);
	mt_shard_sync_fork_child();
	mt_modules_fork_child();
	mt_backend_tracked_fork_child();
	mt_backend_fork_child(self->state == MT_THREAD_READY ? self->slot : -1);
	self->guard++;
	/* The other threads do not exist in the child; their counts are part
	 * of the history the child inherits, their records the parent's. */
	for (struct mt_reg *r = reg_head, *next; r; r = next) {
		struct mt_tls *t = r->t;
		next = r->next;
		if (t != self) {
			add_counts(&exited, t);
			mt_track_fold(t, true);
			reg_unlink(r);
			t->w.busy = t->w.foreign = 0;
			mt_shard_release(&t->w, true);
		}
	}
	collector.busy = 0;
	mt_shard_release(&collector, true);
	/* The child writes shards of its own, with its own pid. */
	self->w.busy = self->w.foreign = 0;
	mt_shard_release(&self->w, true);
	self->tid = (uint32_t)gettid();
	mt_shard_proc.pid = (uint32_t)getpid();
	mt_shard_proc.ppid = (uint32_t)getppid();
	mt_shard_proc.fork_seq = mt_track_seq_now();
	self->seq_spare = 0; /* the child's own events come after fork_seq */
	{
		/* The child's own life starts at the fork. */
		struct timespec real, mono;
		clock_gettime(CLOCK_REALTIME, &real);
		clock_gettime(CLOCK_MONOTONIC, &mono);
		mt_shard_proc.start_real_ns = (uint64_t)real.tv_sec * 1000000000u + (uint64_t)real.tv_nsec;
		mt_shard_proc.start_mono_ns = (uint64_t)mono.tv_sec * 1000000000u + (uint64_t)mono.tv_nsec;
	}
	if (!expand_dir(mt_shard_proc.dir, sizeof(mt_shard_proc.dir), conf.dir,
			mt_shard_proc.pid))
		tracking = false;
	self->guard--;
}

/* ---- statistics ---- */

void mt_thread_stats(struct mtalloc_stats *st)
{
	struct mt_tls *self = &mt_tls;
	unsigned created, in_use;

	memset(st, 0, sizeof(*st));
	self->guard++;
	if (self->state == MT_THREAD_READY) {
		bool shared;
		own_counts(self, &st->thread, &shared);
	}
	pthread_mutex_lock(&reg_lock);
	retire_dead();
	st->process = exited;
	for (struct mt_reg *r = reg_head; r; r = r->next)
		add_counts(&st->process, r->t);
	st->threads_alive = reg_count;
	pthread_mutex_unlock(&reg_lock);
	add_late(&st->process);
	mt_backend_process_bytes(&st->live_bytes, &st->active_bytes,
				 &st->resident_bytes, &st->mapped_bytes);
	mt_backend_arena_counts(&created, &in_use);
	st->arenas_created = created;
	st->arenas_in_use = in_use;
	self->guard--;
}
