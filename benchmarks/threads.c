/* threads: many short-lived threads, each allocating a little.
 *
 *   threads [-n THREADS] [-c CONCURRENT] [-a ALLOCS] [-T SECONDS]
 *
 * The main thread starts THREADS threads in all (with -T: for SECONDS, at
 * most THREADS), keeping CONCURRENT alive
 * at once (it joins the oldest before starting another).  Each thread
 * makes ALLOCS allocations of 16-512 B, writes them, frees all but one and
 * returns that one, which the main thread frees after the join: a free of
 * a block whose thread has exited.  This is the pattern of thread-per-task
 * servers, of thread pools that shrink and grow, and of test suites; it
 * costs an allocator whatever it does on a thread's first allocation and
 * at its exit (mtalloc: binding a per-thread arena and recycling it, and
 * setting up and folding the thread's counters).
 *
 * Fixed seeds: runs are repeatable.  Prints:
 *
 *   threads=<count run> concurrent=<count> allocs=<per thread> seconds=<s>
 *   kthreads_per_s=<thousand threads started, run and joined per second>
 *   mops=<million thread lifecycles per second, kthreads_per_s / 1000>
 *
 * Not linked to mtalloc: the allocator is chosen by LD_PRELOAD. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_CONCURRENT 256
#define MAX_ALLOCS 4096

static unsigned long nalloc = 64;

/* The thread's seed is its argument; returns one live block (or NULL if an
 * allocation failed, which the main thread reports). */
static void *work(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ULL | 1;
	char *p[MAX_ALLOCS];

	for (unsigned long i = 0; i < nalloc; i++) {
		size_t n = 16 + (size_t)(bench_next(&rng) % (512 - 16 + 1));

		p[i] = malloc(n);
		if (!p[i]) {
			for (unsigned long k = 0; k < i; k++)
				free(p[k]);
			return NULL;
		}
		memset(p[i], (int)i, n);
	}
	for (unsigned long i = 1; i < nalloc; i++)
		free(p[i]);
	return p[0];
}

int main(int argc, char **argv)
{
	unsigned long nthread = 20000, conc = 4, started = 0, joined = 0;
	pthread_t tids[MAX_CONCURRENT];
	double limit = 0;
	int opt, status = 0;

	while ((opt = getopt(argc, argv, "n:c:a:T:")) != -1) {
		if (opt == 'T') {
			if (bench_parse_seconds(optarg, &limit))
				goto usage;
			continue;
		}
		unsigned long *dst = opt == 'n' ? &nthread :
				     opt == 'c' ? &conc :
				     opt == 'a' ? &nalloc : NULL;
		if (!dst || bench_parse_ulong(optarg, dst))
			goto usage;
	}
	if (optind != argc || conc < 1 || conc > MAX_CONCURRENT ||
	    nalloc < 1 || nalloc > MAX_ALLOCS)
		goto usage;

	double t0 = bench_now_ns();
	while (joined < started || started < nthread) {
		if (started < nthread && started - joined < conc) {
			if (limit > 0 && bench_now_ns() - t0 >= limit) {
				nthread = started; /* start no more */
				continue;
			}
			if (pthread_create(&tids[started % conc], NULL, work,
					   (void *)(uintptr_t)(started + 1))) {
				fprintf(stderr, "threads: cannot create thread\n");
				return 1;
			}
			started++;
			continue;
		}
		void *last;

		pthread_join(tids[joined % conc], &last);
		if (!last)
			status = 1;
		free(last);
		joined++;
	}
	double t1 = bench_now_ns();
	if (status)
		fprintf(stderr, "threads: malloc failed\n");
	printf("threads=%lu concurrent=%lu allocs=%lu seconds=%.3f "
	       "kthreads_per_s=%.2f mops=%.5f\n", nthread, conc, nalloc,
	       (t1 - t0) / 1e9, (double)nthread / (t1 - t0) * 1e6,
	       (double)nthread / (t1 - t0) * 1e3);
	return status;
usage:
	fprintf(stderr, "usage: threads [-n THREADS] [-c CONCURRENT (1..%d)] "
		"[-a ALLOCS (1..%d)] [-T SECONDS]\n", MAX_CONCURRENT, MAX_ALLOCS);
	return 2;
}
