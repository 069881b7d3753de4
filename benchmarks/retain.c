/* retain: memory that idle threads keep after freeing everything, i.e. what
 * the allocator's per-thread caches hold (the cost side of a larger cache).
 *
 *   retain [-t THREADS] [-n BLOCKS]
 *
 * Each thread allocates BLOCKS blocks of each of jemalloc's size classes
 * from 16 B to 64 KiB (four per doubling: 16, 32, 48, 64, 80, 96, 112, 128,
 * 160, ...), writes them whole, frees them all and then waits, alive and
 * idle, while the main thread reads VmRSS.  Prints:
 *
 *   threads=<count> base_rss_kib=<before the threads> rss_kib=<after>
 *   held_kib=<rss - base> held_per_thread_kib=<held / threads>
 *
 * Freed pages that the allocator keeps dirty for later reuse count too:
 * run jemalloc-based allocators with MALLOC_CONF=dirty_decay_ms:0 to see
 * the thread caches alone.  Not linked to mtalloc (LD_PRELOAD). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define MAX_THREADS 64
#define KIB 1024

#define MAX_SIZE (64 * KIB)
#define NSIZES 48 /* 16, 32, 48, 64, then 4 per doubling up to 64 KiB */

static size_t sizes[NSIZES];

static void make_sizes(void)
{
	size_t n = 0;

	for (size_t s = 16; s <= 64; s += 16)
		sizes[n++] = s;
	for (size_t base = 64; base < MAX_SIZE; base *= 2)
		for (size_t k = 1; k <= 4; k++)
			sizes[n++] = base + k * base / 4;
}

static pthread_barrier_t freed, done;
static unsigned long nblocks = 100;
static int failed;

static void *work(void *arg)
{
	void **p = calloc(nblocks * NSIZES, sizeof(*p));
	size_t k = 0;

	if (p) {
		for (size_t s = 0; s < NSIZES; s++)
			for (unsigned long i = 0; i < nblocks; i++) {
				p[k] = malloc(sizes[s]);
				if (p[k])
					memset(p[k], 1, sizes[s]);
				else
					__atomic_store_n(&failed, 1,
							 __ATOMIC_RELAXED);
				k++;
			}
		for (size_t i = 0; i < k; i++)
			free(p[i]);
		free(p);
	} else {
		__atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
	}
	pthread_barrier_wait(&freed);
	pthread_barrier_wait(&done); /* stay alive while RSS is read */
	return arg;
}

int main(int argc, char **argv)
{
	unsigned long nthreads = 8;
	pthread_t tids[MAX_THREADS];
	int opt;

	while ((opt = getopt(argc, argv, "t:n:")) != -1) {
		unsigned long *dst = opt == 't' ? &nthreads :
				     opt == 'n' ? &nblocks : NULL;
		if (!dst || bench_parse_ulong(optarg, dst))
			goto usage;
	}
	if (optind != argc || nthreads < 1 || nthreads > MAX_THREADS ||
	    nblocks < 1)
		goto usage;

	make_sizes();
	long base = bench_status_kib("VmRSS");
	pthread_barrier_init(&freed, NULL, (unsigned)nthreads + 1);
	pthread_barrier_init(&done, NULL, (unsigned)nthreads + 1);
	for (unsigned long t = 0; t < nthreads; t++)
		if (pthread_create(&tids[t], NULL, work, NULL)) {
			fprintf(stderr, "retain: cannot create thread\n");
			return 1;
		}
	pthread_barrier_wait(&freed);
	long rss = bench_status_kib("VmRSS");
	pthread_barrier_wait(&done);
	for (unsigned long t = 0; t < nthreads; t++)
		pthread_join(tids[t], NULL);
	if (failed) {
		fprintf(stderr, "retain: malloc failed\n");
		return 1;
	}
	printf("threads=%lu base_rss_kib=%ld rss_kib=%ld held_kib=%ld "
	       "held_per_thread_kib=%ld\n",
	       nthreads, base, rss, rss - base,
	       (rss - base) / (long)nthreads);
	return 0;
usage:
	fprintf(stderr, "usage: retain [-t THREADS] [-n BLOCKS]\n");
	return 2;
}
