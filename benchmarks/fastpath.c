/* fastpath: the cost of one malloc(n)+free pair on an allocator's fast path.
 *
 *   fastpath [-t THREADS] [-d DEPTH] [-T SECONDS] ITERS SIZE...
 *
 * For each SIZE in turn, every thread runs WARMUP untimed pairs and then
 * ITERS timed pairs (with -T: batches of ITERS pairs until SECONDS have
 * passed, so that a slow allocator costs no more time than a fast one),
 * and the program prints one line per size:
 *
 *   size=<bytes> threads=<count> iters=<timed pairs per thread>
 *   ns_per_pair=<mean of threads>
 *
 * The allocator is chosen by LD_PRELOAD: this program is deliberately not
 * linked to mtalloc.  The pointer escapes through an empty asm statement, so
 * gcc (at -O2) can neither elide the pair nor fold it into nothing.
 *
 * -d DEPTH runs the loop DEPTH function calls deeper than usual (default
 * 0: about 6 frames from the loop to _start), for the cost of stack
 * capture on sampled allocations, which grows with the depth.
 *
 * Instruction counts: the work outside the timed loops does not depend on
 * ITERS (the warm-up is a fixed count), so (count at 2N - count at N) / N
 * under callgrind is the cost of one pair, start-up cancelled. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define WARMUP 1000    /* untimed pairs before each timed loop (count) */
#define MAX_SIZES 16
#define MAX_THREADS 64

struct job {
	size_t size;            /* bytes per allocation */
	unsigned long iters;    /* timed pairs, or pairs per batch (count) */
	double limit;           /* -T: run batches for this long (ns), or 0 */
	double ns;              /* result: ns per pair */
	unsigned long done;     /* result: timed pairs (count) */
	int failed;             /* malloc returned NULL */
};

/* The measured loop: nothing but the pair and the loop itself (no NULL
 * test: free(NULL) is harmless, and run() checks that the size can be
 * allocated at all).  noinline keeps it the same for every caller. */
static __attribute__((noinline)) void pairs(size_t size, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		void *p = malloc(size);

		/* The pointer escapes: gcc must call malloc and free. */
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
	}
}

static int depth; /* extra frames between run() and the loop (count) */

/* Calls pairs() DEPTH frames down; the asm after the call keeps gcc from
 * turning the recursion into a loop or a tail call. */
static __attribute__((noinline)) void nest(size_t size, unsigned long n,
					     int d)
{
	if (d > 0)
		nest(size, n, d - 1);
	else
		pairs(size, n);
	__asm__ volatile("" : : : "memory");
}

static void *run(void *arg)
{
	struct job *j = arg;
	void *p = malloc(j->size);

	j->failed = p == NULL;
	free(p);
	nest(j->size, WARMUP, depth);
	bench_start_line();
	double t0 = bench_now_ns(), t1;
	unsigned long done = 0;

	do {
		nest(j->size, j->iters, depth);
		done += j->iters;
		t1 = bench_now_ns();
	} while (t1 - t0 < j->limit);
	j->ns = (t1 - t0) / (double)(done ? done : 1);
	j->done = done;
	return NULL;
}

static int usage(void)
{
	fprintf(stderr, "usage: fastpath [-t THREADS] [-d DEPTH] [-T SECONDS] "
		"ITERS SIZE...\n");
	return 2;
}

int main(int argc, char **argv)
{
	unsigned long nthreads = 1, iters, v;
	double limit = 0;
	size_t sizes[MAX_SIZES];
	int nsizes = 0, opt, status = 0;

	while ((opt = getopt(argc, argv, "t:d:T:")) != -1) {
		if (opt == 'T') {
			if (bench_parse_seconds(optarg, &limit))
				return usage();
		} else if (opt == 'd') {
			if (bench_parse_ulong(optarg, &v) || v > 1000)
				return usage();
			depth = (int)v;
		} else if (opt != 't' || bench_parse_ulong(optarg, &nthreads) ||
			   nthreads < 1 || nthreads > MAX_THREADS) {
			return usage();
		}
	}
	if (argc - optind < 2 || bench_parse_ulong(argv[optind], &iters))
		return usage();
	for (int i = optind + 1; i < argc; i++) {
		if (nsizes == MAX_SIZES || bench_parse_ulong(argv[i], &v) || v == 0)
			return usage();
		sizes[nsizes++] = v;
	}

	for (int s = 0; s < nsizes; s++) {
		struct job jobs[MAX_THREADS];
		double sum = 0;
		unsigned long done = 0;

		memset(jobs, 0, sizeof(jobs));
		for (unsigned long t = 0; t < nthreads; t++) {
			jobs[t].size = sizes[s];
			jobs[t].iters = iters;
			jobs[t].limit = limit;
		}
		/* one thread: the main thread, no thread set-up */
		if (bench_run_workers("fastpath", nthreads, run, jobs,
				      sizeof(jobs[0])))
			return 1;
		for (unsigned long t = 0; t < nthreads; t++) {
			sum += jobs[t].ns;
			done += jobs[t].done;
			if (jobs[t].failed) {
				fprintf(stderr, "fastpath: malloc(%zu) failed\n",
					sizes[s]);
				status = 1;
			}
		}
		printf("size=%zu threads=%lu iters=%lu ns_per_pair=%.2f\n",
		       sizes[s], nthreads, done / nthreads, sum / (double)nthreads);
	}
	return status;
}
