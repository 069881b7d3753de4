/* stress: workloads for the stress suite (tests/unit/test_reliability_stress.c),
 * run with libmtalloc preloaded and MTALLOC=sample:all.  Every allocation
 * the program makes itself has a size in the band [3000, 4000), which the C
 * library's own allocations in these workloads never use, so the test can
 * count the program's records in the shards and compare them with the
 * truth the program prints.  Every object carries a checksum of its
 * contents that is verified before it is freed: a wrong byte exits 3.
 *
 *   stress pass THREADS ITERS   THREADS threads allocate (malloc, calloc,
 *                               realloc, aligned_alloc, posix_memalign),
 *                               pass objects to each other through mutexed
 *                               inboxes (up to 3 hops), free what they get;
 *                               some objects stay live until exit; ITERS
 *                               0: until the file $STRESS_STOP exists
 *   stress churn THREADS ALIVE  THREADS short-lived threads, at most ALIVE
 *                               at once; each allocates 3 objects, frees one,
 *                               hands one to main (freed after the thread
 *                               is gone) and leaks one until exit
 *   stress fork DEPTH WIDTH     a process with 3 busy threads forks WIDTH
 *                               children; each child verifies and frees the
 *                               objects it inherited, starts 2 busy threads
 *                               and, below DEPTH, forks WIDTH children again
 *   stress crash THREADS FILE US  THREADS threads named crash-<i> allocate
 *                               and free until the process dies; thread i
 *                               stores its count of allocations in slot i
 *                               of FILE (shared memory that outlives the
 *                               process) after each one; US > 0: a thread
 *                               dereferences NULL after US microseconds
 *   stress enomem MIB           allocates blocks of 1 MiB and band objects
 *                               until malloc fails (run it under a RLIMIT_AS
 *                               below MIB), then frees half and goes on;
 *                               prints "enomem N" (failed allocations)
 *   stress dlopen ITERS LIB     2 threads dlopen LIB, call its
 *                               lib_stress(n, keep) (which allocates in the
 *                               band), dlclose it, and free what it returned
 *                               after the library is gone
 *
 * Output: one line per process, written with a single write(2) to stdout
 * (O_APPEND or a pipe: lines of forked processes never interleave):
 *   "truth pid P allocs A frees F live L inherited I threads T"
 * A: band allocations this process made; F: band frees it made (of its own
 * or inherited objects); L: its own objects still live at exit; I: the
 * inherited objects among F; T: threads it created. */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define BAND 3000u
#define BAND_WIDTH 1000u

static atomic_ulong n_alloc, n_free, n_live, n_inherited, n_threads;

/* An object: id and size, then bytes derived from the id. */
struct obj {
	uint64_t id;
	uint32_t size;  /* bytes of the whole block */
	uint32_t hops;  /* passes left */
	uint64_t sum;   /* checksum of the bytes after the header */
	unsigned char data[];
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static uint64_t checksum(const struct obj *o)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < o->size - sizeof(*o); i++)
		h = (h ^ o->data[i]) * 0x100000001b3ull;
	return h ^ o->id;
}

static void fill(struct obj *o, uint64_t id, uint32_t size)
{
	uint64_t x = mix(id);
	o->id = id;
	o->size = size;
	o->hops = (uint32_t)(x % 4);
	for (size_t i = 0; i < size - sizeof(*o); i++) {
		o->data[i] = (unsigned char)x;
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	}
	o->sum = checksum(o);
}

static void verify(const struct obj *o)
{
	if (o->size < BAND || o->size >= BAND + BAND_WIDTH || checksum(o) != o->sum) {
		char line[128];
		int n = snprintf(line, sizeof(line), "checksum error: object %llu size %u\n",
				 (unsigned long long)o->id, o->size);
		if (write(2, line, (size_t)n) < 0)
			_exit(4);
		_exit(3);
	}
}

/* The program's bookkeeping: never a size in the band. */
static void *book(size_t n, size_t size)
{
	size_t bytes = n * size;
	if (bytes >= BAND && bytes < BAND + BAND_WIDTH)
		bytes = BAND + BAND_WIDTH;
	void *p = calloc(1, bytes);
	if (!p)
		_exit(5);
	return p;
}

static uint64_t next_id(void)
{
	static atomic_ullong ids;
	return atomic_fetch_add(&ids, 1) + 1;
}

/* A new object by one of the allocation functions (chosen by id). */
static struct obj *new_obj(uint64_t r)
{
	uint64_t id = next_id();
	/* [BAND + 64, BAND + BAND_WIDTH - 64): realloc's first block (32
	 * bytes less) stays in the band too */
	uint32_t size = BAND + 64 + (uint32_t)(mix(id ^ r) % (BAND_WIDTH - 128));
	struct obj *o = NULL;
	void *p = NULL;

	switch (mix(id) % 5) {
	case 0: o = malloc(size); break;
	case 1: o = calloc(1, size); break;
	case 2: o = aligned_alloc(64, size); break;
	case 3: if (posix_memalign(&p, 32, size) == 0) o = p; break;
	case 4:
		/* realloc from one band size to another: an allocation and a
		 * free of the old block (a sampled block always moves) */
		o = malloc(size - 32);
		if (o) {
			atomic_fetch_add(&n_alloc, 1);
			struct obj *q = realloc(o, size);
			if (!q) {
				free(o);
				atomic_fetch_add(&n_free, 1);
				o = NULL;
				break;
			}
			if (q != o)
				atomic_fetch_add(&n_free, 1);
			else
				atomic_fetch_sub(&n_alloc, 1); /* resized in place */
			o = q;
		}
		break;
	}
	if (!o) {
		fprintf(stderr, "allocation of %u bytes failed\n", size);
		_exit(5);
	}
	atomic_fetch_add(&n_alloc, 1);
	fill(o, id, size);
	return o;
}

static void free_obj(struct obj *o)
{
	verify(o);
	memset(o, 0xdd, 16);
	free(o);
	atomic_fetch_add(&n_free, 1);
}

static void print_truth(void)
{
	char line[256];
	int n = snprintf(line, sizeof(line),
			 "truth pid %d allocs %lu frees %lu live %lu inherited %lu threads %lu\n",
			 (int)getpid(), atomic_load(&n_alloc), atomic_load(&n_free),
			 atomic_load(&n_live), atomic_load(&n_inherited),
			 atomic_load(&n_threads));
	if (write(1, line, (size_t)n) != n)
		_exit(6);
}

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
	pthread_t th;
	int err = pthread_create(&th, NULL, fn, arg);
	if (err) {
		fprintf(stderr, "pthread_create: %s\n", strerror(err));
		_exit(7);
	}
	atomic_fetch_add(&n_threads, 1);
	return th;
}

/* ---- pass: objects handed between threads ---- */

#define INBOX 64

struct inbox {
	pthread_mutex_t lock;
	struct obj *item[INBOX];
	int n;
};

static struct inbox *boxes;
static int nboxes;
static long pass_iters;
static pthread_barrier_t pass_barrier;
static struct obj **keep; /* live until exit: one per thread */

static int take(struct inbox *b, struct obj **out, int max)
{
	int n;
	pthread_mutex_lock(&b->lock);
	n = b->n < max ? b->n : max;
	b->n -= n;
	memcpy(out, b->item + b->n, (size_t)n * sizeof(*out));
	pthread_mutex_unlock(&b->lock);
	return n;
}

/* Frees or passes on what came in. */
static void handle(int me, struct obj *o)
{
	verify(o);
	if (o->hops == 0) {
		free_obj(o);
		return;
	}
	o->hops--;
	o->sum = checksum(o);
	struct inbox *to = &boxes[(me + 1 + (int)(mix(o->id + o->hops) % (uint64_t)(nboxes - 1 ? nboxes - 1 : 1))) % nboxes];
	pthread_mutex_lock(&to->lock);
	if (to->n < INBOX) {
		to->item[to->n++] = o;
		o = NULL;
	}
	pthread_mutex_unlock(&to->lock);
	if (o)
		free_obj(o);
}

static const char *stop_file;

static bool pass_go_on(long i)
{
	if (pass_iters > 0)
		return i < pass_iters;
	return i % 64 || access(stop_file, F_OK) != 0;
}

static void *pass_worker(void *arg)
{
	int me = (int)(intptr_t)arg;
	struct obj *got[INBOX];

	keep[me] = new_obj((uint64_t)me);
	for (long i = 0; pass_go_on(i); i++) {
		handle(me, new_obj((uint64_t)i));
		if (i % 4 == 0) {
			struct obj *mine = new_obj((uint64_t)i * 7);
			free_obj(mine);
		}
		int n = take(&boxes[me], got, INBOX);
		for (int k = 0; k < n; k++)
			handle(me, got[k]);
	}
	pthread_barrier_wait(&pass_barrier);
	/* nobody passes any more: empty the own inbox */
	int n = take(&boxes[me], got, INBOX);
	for (int k = 0; k < n; k++)
		free_obj(got[k]);
	pthread_barrier_wait(&pass_barrier);
	atomic_fetch_add(&n_live, 1);
	return NULL;
}

static int mode_pass(int threads, long iters)
{
	pthread_t *th = book((size_t)threads, sizeof(*th));

	nboxes = threads;
	pass_iters = iters;
	stop_file = getenv("STRESS_STOP");
	if (iters <= 0 && !stop_file)
		return 2;
	boxes = book((size_t)threads, sizeof(*boxes));
	keep = book((size_t)threads, sizeof(*keep));
	for (int i = 0; i < threads; i++)
		pthread_mutex_init(&boxes[i].lock, NULL);
	pthread_barrier_init(&pass_barrier, NULL, (unsigned)threads);
	for (int i = 0; i < threads; i++)
		th[i] = spawn(pass_worker, (void *)(intptr_t)i);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < threads; i++)
		verify(keep[i]); /* live until exit: never freed */
	print_truth();
	return 0;
}

/* ---- churn: many short-lived threads ---- */

static pthread_mutex_t handed_lock = PTHREAD_MUTEX_INITIALIZER;
static struct obj **handed;
static long nhanded;

static void *churn_worker(void *arg)
{
	struct obj *a = new_obj(1), *b = new_obj(2), *c = new_obj(3);

	(void)arg;
	free_obj(a);
	pthread_mutex_lock(&handed_lock);
	handed[nhanded++] = b;
	pthread_mutex_unlock(&handed_lock);
	verify(c); /* leaked until exit */
	atomic_fetch_add(&n_live, 1);
	return NULL;
}

static int mode_churn(long threads, int alive)
{
	pthread_t *th = book((size_t)alive, sizeof(*th));

	handed = book((size_t)threads, sizeof(*handed));
	for (long done = 0; done < threads;) {
		int n = threads - done < alive ? (int)(threads - done) : alive;
		for (int i = 0; i < n; i++)
			th[i] = spawn(churn_worker, NULL);
		for (int i = 0; i < n; i++)
			pthread_join(th[i], NULL);
		done += n;
		/* free what the dead threads handed over */
		pthread_mutex_lock(&handed_lock);
		for (long i = 0; i < nhanded; i++)
			free_obj(handed[i]);
		nhanded = 0;
		pthread_mutex_unlock(&handed_lock);
	}
	print_truth();
	return 0;
}

/* ---- fork: storms from multi-threaded processes ---- */

static atomic_int busy_stop;

static void *busy(void *arg)
{
	(void)arg;
	struct obj *ring[8] = { 0 };
	for (unsigned long i = 0; !atomic_load(&busy_stop); i++) {
		if (ring[i % 8])
			free_obj(ring[i % 8]);
		ring[i % 8] = new_obj(i);
	}
	for (int i = 0; i < 8; i++)
		if (ring[i])
			free_obj(ring[i]);
	return NULL;
}

#define INHERIT 16

static int fork_level(int depth, int width, int nbusy, struct obj **inherited)
{
	pthread_t th[4];
	struct obj *mine[INHERIT];
	pid_t kids[64];
	int bad = 0;

	atomic_store(&busy_stop, 0);
	for (int i = 0; i < nbusy; i++)
		th[i] = spawn(busy, NULL);
	/* objects every child inherits and frees */
	for (int i = 0; i < INHERIT; i++)
		mine[i] = new_obj((uint64_t)i);
	if (inherited) {
		for (int i = 0; i < INHERIT; i++) {
			free_obj(inherited[i]);
			atomic_fetch_add(&n_inherited, 1);
		}
	}
	for (int k = 0; depth > 0 && k < width; k++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			bad = 1;
			break;
		}
		if (pid == 0) {
			/* the child: only this thread lives on; start afresh */
			atomic_store(&n_alloc, 0);
			atomic_store(&n_free, 0);
			atomic_store(&n_live, 0);
			atomic_store(&n_inherited, 0);
			atomic_store(&n_threads, 0);
			exit(fork_level(depth - 1, width, 2, mine));
		}
		kids[k] = pid;
	}
	for (int k = 0; depth > 0 && k < width && !bad; k++) {
		int st;
		if (waitpid(kids[k], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "child %d: status 0x%x\n", (int)kids[k], st);
			bad = 1;
		}
	}
	atomic_store(&busy_stop, 1);
	for (int i = 0; i < nbusy; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < INHERIT; i++)
		free_obj(mine[i]);
	print_truth();
	return bad;
}

static int mode_fork(int depth, int width)
{
	if (width > 64)
		return 2;
	return fork_level(depth, width, 3, NULL);
}

/* ---- crash: killed or faulting at a given moment ---- */

static atomic_ulong *crash_counts; /* in the shared file */

static void *crash_worker(void *arg)
{
	int me = (int)(intptr_t)arg;
	char name[16];
	struct obj *ring[16] = { 0 };

	snprintf(name, sizeof(name), "crash-%d", me);
	pthread_setname_np(pthread_self(), name); /* before the first record */
	for (unsigned long i = 0;; i++) {
		if (ring[i % 16])
			free_obj(ring[i % 16]);
		/* one malloc per count */
		uint32_t size = BAND + (uint32_t)(i % (BAND_WIDTH - 64));
		ring[i % 16] = malloc(size);
		if (!ring[i % 16])
			_exit(5);
		fill(ring[i % 16], next_id(), size);
		atomic_store_explicit(&crash_counts[me], i + 1, memory_order_relaxed);
	}
	return NULL;
}

static int mode_crash(int threads, const char *file, long delay_us)
{
	FILE *f = fopen(file, "r+");
	if (!f || threads > 64)
		return 2;
	crash_counts = mmap(NULL, 64 * sizeof(*crash_counts), PROT_READ | PROT_WRITE,
			    MAP_SHARED, fileno(f), 0);
	if (crash_counts == MAP_FAILED)
		return 2;
	for (int i = 0; i < threads; i++)
		spawn(crash_worker, (void *)(intptr_t)i);
	if (delay_us > 0) {
		usleep((useconds_t)delay_us);
		*(volatile int *)(uintptr_t)atoi("0") = 1; /* SIGSEGV */
	}
	for (;;)
		pause();
}

/* ---- enomem: allocations fail, the program goes on ---- */

static int mode_enomem(long mib)
{
	long cap = 4 * mib + 64, n = 0, failed = 0;
	char **big = book((size_t)cap, sizeof(*big));
	struct obj **small = book((size_t)cap, sizeof(*small));

	for (int round = 0; round < 3; round++) {
		/* fill memory until allocations fail */
		while (n < cap) {
			char *p = malloc(1 << 20);
			if (!p) {
				if (errno != ENOMEM)
					return 9;
				failed++;
				break;
			}
			memset(p, (int)n, 1 << 20);
			struct obj *o = malloc(BAND + 100);
			if (!o) {
				failed++;
				free(p);
				break;
			}
			atomic_fetch_add(&n_alloc, 1);
			fill(o, next_id(), BAND + 100);
			big[n] = p;
			small[n++] = o;
		}
		/* each block still holds what was written */
		for (long i = 0; i < n; i++) {
			if (big[i][0] != (char)i || big[i][(1 << 20) - 1] != (char)i)
				_exit(3);
			verify(small[i]);
		}
		/* free half; later rounds must allocate again */
		long keep_n = n / 2;
		for (long i = keep_n; i < n; i++) {
			free(big[i]);
			free_obj(small[i]);
		}
		n = keep_n;
	}
	for (long i = 0; i < n; i++) {
		free(big[i]);
		free_obj(small[i]);
	}
	printf("enomem %ld\n", failed);
	print_truth();
	return failed ? 0 : 10;
}

/* ---- dlopen: libraries that allocate, loaded and unloaded ---- */

static const char *dl_lib;
static long dl_iters;

static void *dl_worker(void *arg)
{
	(void)arg;
	for (long i = 0; i < dl_iters; i++) {
		void *h = dlopen(dl_lib, RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			fprintf(stderr, "dlopen: %s\n", dlerror());
			_exit(8);
		}
		void **(*fn)(int, int *, long *) =
			(void **(*)(int, int *, long *))dlsym(h, "lib_stress");
		if (!fn) {
			fprintf(stderr, "dlsym: %s\n", dlerror());
			_exit(8);
		}
		int kept = 0;
		long freed = 0;
		void **v = fn(8, &kept, &freed); /* 8 allocations, some kept */
		atomic_fetch_add(&n_alloc, 8);
		atomic_fetch_add(&n_free, (unsigned long)freed);
		dlclose(h);
		/* the library is gone; its objects are freed here */
		for (int k = 0; k < kept; k++) {
			unsigned char *p = v[k];
			for (int j = 0; j < 64; j++)
				if (p[j] != (unsigned char)(k + j)) {
					fprintf(stderr, "checksum error in a library object\n");
					_exit(3);
				}
			free(p);
			atomic_fetch_add(&n_free, 1);
		}
		free(v);
	}
	return NULL;
}

static int mode_dlopen(long iters, const char *lib)
{
	pthread_t th[2];

	dl_lib = lib;
	dl_iters = iters;
	for (int i = 0; i < 2; i++)
		th[i] = spawn(dl_worker, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	print_truth();
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc >= 4 && !strcmp(argv[1], "pass"))
		return mode_pass(atoi(argv[2]), atol(argv[3]));
	if (argc >= 4 && !strcmp(argv[1], "churn"))
		return mode_churn(atol(argv[2]), atoi(argv[3]));
	if (argc >= 4 && !strcmp(argv[1], "fork"))
		return mode_fork(atoi(argv[2]), atoi(argv[3]));
	if (argc >= 5 && !strcmp(argv[1], "crash"))
		return mode_crash(atoi(argv[2]), argv[3], atol(argv[4]));
	if (argc >= 3 && !strcmp(argv[1], "enomem"))
		return mode_enomem(atol(argv[2]));
	if (argc >= 4 && !strcmp(argv[1], "dlopen"))
		return mode_dlopen(atol(argv[2]), argv[3]);
	fprintf(stderr, "usage: stress pass|churn|fork|dlopen ...\n");
	return 2;
}
