/* trace: a deterministic multi-threaded workload whose every allocation and
 * free is known, for the tracking tests.  Sizes 1000..1999 are used by this
 * program only, so its records can be told from the C library's own.
 *
 *   trace MODE [ARGS]
 *   all       4 threads; thread i makes 1000 + i allocations of sizes
 *             1000 + 8 * (k % 100), frees half of them itself, hands a
 *             quarter to thread (i + 1) % 4 to free, keeps the rest live
 *             until exit.  Prints the truth: "thread T allocs A frees F
 *             cross C live L" per thread index, in start order.
 *   sites N   site A: N allocations of 256 bytes; site B: N/10 of 4096
 *             bytes; all freed.  (For the estimator bounds.)
 *   running   starts 2 threads that allocate until the process exits, then
 *             exits from main while they run (records still flushed).
 *   fork      allocates, forks; the child allocates 100 blocks of 1500
 *             bytes, frees them and exits 0; the parent waits.
 *   dlopen LIB  loads LIB after start and calls its lib_alloc(n) (which
 *             allocates n blocks of 1700 bytes) and frees them.
 *   loop      allocates and frees forever (for kill -9).
 *   sizes     allocates every size 0..600, then sizes up to 3 MiB, and
 *             aligned blocks (32 B to 4 GiB), each filled over its usable
 *             size with a byte of its own; frees every other one,
 *             allocates the same again, checks every live block's bytes
 *             and frees them all.  Prints "usable SIZE USABLE" for each
 *             allocation, then "intact N" or "corrupt SIZE".
 *   flushing  2 threads make 200,000 allocations each of sizes 1000 +
 *             8 * (k % 100) and free each at once, while main calls
 *             mtalloc_flush (found with dlsym) until they are done:
 *             prints "flushes N".
 *   handoff   main allocates a block, a thread allocates another and
 *             exits, main frees the thread's block, then its own: the
 *             free of a block allocated after the freeing thread's own
 *             last allocation (event numbers, object.c).
 *   clock     one block a millisecond for 400 ms, of sizes from 300001
 *             up, each between two readings of CLOCK_MONOTONIC: prints
 *             "clock SIZE BEFORE AFTER" (ns). */
#include "config.h"

#include <dlfcn.h>
#include <malloc.h>
#include <sched.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define NT 4

struct handoff {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	void *items[1000];
	int n;
	int done; /* producers finished */
};

static struct handoff box[NT];
static pthread_barrier_t barrier;

struct truth {
	int allocs, frees, cross, live;
};
static struct truth truth[NT];

static void *worker(void *arg)
{
	int me = (int)(intptr_t)arg, n = 1000 + me;
	void **mine = calloc((size_t)n, sizeof(void *));
	struct handoff *next = &box[(me + 1) % NT];
	char name[16];

	snprintf(name, sizeof(name), "trace-%d", me);
	pthread_setname_np(pthread_self(), name);
	for (int k = 0; k < n; k++) {
		mine[k] = malloc(1000 + 8 * (k % 100));
		memset(mine[k], me, 16);
	}
	truth[me].allocs = n;
	for (int k = 0; k < n; k++) {
		if (k % 4 < 2) {
			free(mine[k]);
			truth[me].frees++;
		} else if (k % 4 == 2) {
			pthread_mutex_lock(&next->lock);
			next->items[next->n++] = mine[k];
			pthread_mutex_unlock(&next->lock);
		} else {
			truth[me].live++; /* stays allocated until exit */
		}
	}
	pthread_barrier_wait(&barrier); /* every thread has handed over */
	struct handoff *in = &box[me];
	pthread_mutex_lock(&in->lock);
	for (int i = 0; i < in->n; i++) {
		free(in->items[i]); /* allocated by thread me - 1 */
		truth[me].cross++;
	}
	in->n = 0;
	pthread_mutex_unlock(&in->lock);
	free(mine);
	return NULL;
}

static int mode_all(void)
{
	pthread_t th[NT];

	pthread_barrier_init(&barrier, NULL, NT);
	for (int i = 0; i < NT; i++) {
		pthread_mutex_init(&box[i].lock, NULL);
		pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
	}
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NT; i++)
		printf("thread %d allocs %d frees %d cross %d live %d\n", i,
		       truth[i].allocs, truth[i].frees, truth[i].cross,
		       truth[i].live);
	return 0;
}

/* Two call sites the test tells apart by size. */
__attribute__((noinline)) static void *site_a(void)
{
	return malloc(256);
}

__attribute__((noinline)) static void *site_b(void)
{
	return malloc(4096);
}

static int mode_sites(long n)
{
	for (long i = 0; i < n; i++) {
		void *a = site_a();
		__asm__ volatile("" ::"r"(a) : "memory");
		free(a);
		if (i % 10 == 0) {
			void *b = site_b();
			__asm__ volatile("" ::"r"(b) : "memory");
			free(b);
		}
	}
	printf("site_a %ld 256\nsite_b %ld 4096\n", n, (n + 9) / 10);
	return 0;
}

static int spinning; /* threads that have allocated (atomic) */

static void *spin(void *arg)
{
	bool counted = false;

	(void)arg;
	for (;;) {
		void *p = malloc(1200);
		__asm__ volatile("" ::"r"(p) : "memory");
		free(p);
		if (!counted) {
			__atomic_add_fetch(&spinning, 1, __ATOMIC_RELAXED);
			counted = true;
		}
	}
	return NULL; /* not reached */
}

static int mode_running(void)
{
	pthread_t th[2];

	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, spin, NULL);
	/* both threads have records by now (not a sleep: a handshake) */
	while (__atomic_load_n(&spinning, __ATOMIC_RELAXED) < 2)
		sched_yield();
	void *p[100];
	for (int i = 0; i < 100; i++) {
		p[i] = malloc(1300);
		__asm__ volatile("" ::"r"(p[i]) : "memory");
	}
	for (int i = 0; i < 100; i++)
		free(p[i]);
	printf("exiting with threads running\n");
	fflush(stdout);
	exit(0);
}

static int mode_fork(void)
{
	void *keep = malloc(1400);
	__asm__ volatile("" ::"r"(keep) : "memory");
	pid_t pid = fork();

	if (pid == 0) {
		void *p[100];
		for (int i = 0; i < 100; i++) {
			p[i] = malloc(1500);
			__asm__ volatile("" ::"r"(p[i]) : "memory");
		}
		for (int i = 0; i < 100; i++)
			free(p[i]);
		exit(0); /* normal exit: the child flushes its shards */
	}
	int st = 0;
	waitpid(pid, &st, 0);
	free(keep);
	printf("child %d status %d\n", (int)pid, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static int mode_dlopen(const char *lib)
{
	void *h = dlopen(lib, RTLD_NOW);
	if (!h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	void **(*alloc_n)(int) = (void **(*)(int))dlsym(h, "lib_alloc");
	if (!alloc_n)
		return 1;
	void **v = alloc_n(50);
	for (int i = 0; i < 50; i++)
		free(v[i]);
	free(v);
	return 0;
}

static int mode_loop(void)
{
	printf("looping\n");
	for (unsigned long i = 0;; i++) {
		void *p = malloc(1000 + (i % 100) * 8);
		__asm__ volatile("" ::"r"(p) : "memory");
		free(p);
	}
	return 0; /* not reached */
}

/* One block of mode_sizes. */
struct block {
	unsigned char *p;
	size_t size, usable;
	unsigned char fill;
};

/* Allocates block *n (and counts it) of `size` bytes, aligned to `align`
 * if not 0, and fills it over its usable size; -1 if malloc failed. */
static int sizes_alloc(struct block *blocks, size_t *n, size_t size, size_t align)
{
	struct block *b = &blocks[*n];
	unsigned char fill = (unsigned char)(*n * 7 + 1);
	void *p = NULL;

	++*n;
	if (align)
		posix_memalign(&p, align, size);
	else
		p = malloc(size);
	b->p = p;
	b->size = size;
	b->fill = fill;
	if (!p)
		return align ? 0 : -1; /* a huge alignment may not fit: skipped */
	b->usable = malloc_usable_size(p);
	memset(p, fill, b->usable);
	printf("usable %zu %zu\n", size, b->usable);
	return 0;
}

static int mode_sizes(void)
{
	static const size_t aligns[] = { 32, 64, 256, 4096, 65536, (size_t)1 << 20 };
	static const size_t asizes[] = { 0, 1, 100, 1000, 5000, 70000 };
	enum { MAXB = 2 * (601 + 800 + 2 + 6 * 6 + 1) };
	struct block *b = calloc(MAXB, sizeof(*b));
	size_t n = 0;

	for (int round = 0; round < 2; round++) {
		for (size_t s = 0; s <= 600; s++)
			if (sizes_alloc(b, &n, s, 0))
				return 1;
		for (size_t s = 601; s < 70000; s += 97)
			if (sizes_alloc(b, &n, s, 0))
				return 1;
		if (sizes_alloc(b, &n, 1 << 20, 0) ||
		    sizes_alloc(b, &n, (3 << 20) + 1, 0))
			return 1;
		for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++)
			for (size_t k = 0; k < sizeof(asizes) / sizeof(asizes[0]); k++)
				if (sizes_alloc(b, &n, asizes[k], aligns[a]))
					return 1;
		/* One block only: each takes 5 GiB of the 64 GiB range. */
		if (sizes_alloc(b, &n, 100, (size_t)1 << 32))
			return 1;
		if (round == 0)
			for (size_t i = 0; i < n; i += 2) {
				free(b[i].p); /* reused by the second round */
				b[i].p = NULL;
			}
	}
	size_t live = 0;
	for (size_t i = 0; i < n; i++) {
		if (!b[i].p)
			continue;
		for (size_t k = 0; k < b[i].usable; k++)
			if (b[i].p[k] != b[i].fill) {
				printf("corrupt %zu\n", b[i].size);
				return 1;
			}
		free(b[i].p);
		live++;
	}
	printf("intact %zu\n", live);
	free(b);
	return 0;
}

#define FLUSHING_OPS 200000

static int flushing_done;

static void *flushing_work(void *arg)
{
	(void)arg;
	for (int k = 0; k < FLUSHING_OPS; k++) {
		void *p = malloc(1000 + 8 * (size_t)(k % 100));
		__asm__ volatile("" ::"r"(p) : "memory");
		free(p);
	}
	__atomic_add_fetch(&flushing_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int mode_flushing(void)
{
	int (*flush)(void) = (int (*)(void))(uintptr_t)dlsym(RTLD_DEFAULT, "mtalloc_flush");
	pthread_t th[2];
	unsigned long flushes = 0;

	if (!flush)
		return 1;
	for (int i = 0; i < 2; i++)
		if (pthread_create(&th[i], NULL, flushing_work, NULL))
			return 1;
	while (__atomic_load_n(&flushing_done, __ATOMIC_ACQUIRE) < 2) {
		flush();
		flushes++;
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	printf("flushes %lu\n", flushes);
	return 0;
}

static void *handoff_alloc(void *arg)
{
	(void)arg;
	return malloc(1500);
}

static int mode_handoff(void)
{
	void *mine = malloc(1400), *theirs = NULL;
	pthread_t t;

	if (!mine || pthread_create(&t, NULL, handoff_alloc, NULL) ||
	    pthread_join(t, &theirs) || !theirs)
		return 1;
	free(theirs);
	free(mine);
	return 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* clock: blocks of sizes of their own, each allocated between two
 * readings of CLOCK_MONOTONIC, one a millisecond for 400 ms (past the
 * calibration of libmtalloc's clock and across renewals of its anchors);
 * prints "clock SIZE BEFORE AFTER" (ns) for each. */
static int mode_clock(void)
{
	uint64_t end = mono_ns() + 400000000u;

	for (size_t size = 300001; mono_ns() < end; size++) {
		uint64_t before = mono_ns();
		void *p = malloc(size);
		uint64_t after = mono_ns();
		if (!p)
			return 1;
		printf("clock %zu %llu %llu\n", size, (unsigned long long)before,
		       (unsigned long long)after);
		free(p);
		while (mono_ns() < after + 1000000u)
			; /* spreads the blocks over time */
	}
	return 0;
}

int main(int argc, char **argv)
{
	/* No stdio buffer from malloc: only the workload allocates. */
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc < 2)
		return 2;
	if (!strcmp(argv[1], "all"))
		return mode_all();
	if (!strcmp(argv[1], "sites"))
		return mode_sites(argc > 2 ? atol(argv[2]) : 200000);
	if (!strcmp(argv[1], "running"))
		return mode_running();
	if (!strcmp(argv[1], "fork"))
		return mode_fork();
	if (!strcmp(argv[1], "dlopen") && argc > 2)
		return mode_dlopen(argv[2]);
	if (!strcmp(argv[1], "loop"))
		return mode_loop();
	if (!strcmp(argv[1], "sizes"))
		return mode_sizes();
	if (!strcmp(argv[1], "flushing"))
		return mode_flushing();
	if (!strcmp(argv[1], "handoff"))
		return mode_handoff();
	if (!strcmp(argv[1], "clock"))
		return mode_clock();
	return 2;
}
