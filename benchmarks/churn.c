/* churn: a mixed-size replacement workload, the shape of a long-running
 * server's heap.
 *
 *   churn [-t THREADS] [-n OPS] [-s SLOTS] [-r SEED] [-T SECONDS]
 *
 * Each thread owns an array of SLOTS live blocks.  It fills the array, then
 * OPS times (with -T: for SECONDS, at most OPS times) frees a random slot
 * and puts a new block of a random size in it.
 * Sizes: 95 % uniform in 16..512 bytes, 5 % uniform in 4..64 KiB.  Every new
 * block has one byte written in each of its pages, so that resident memory
 * follows what the allocator really hands out and reuses (a block that is
 * never touched costs no RSS and hides page faults after a purge).
 *
 * One "op" is one replacement: a free and a malloc.  Prints one line:
 *
 *   threads=<count> ops=<count per thread (mean)> slots=<count> seconds=<s>
 *   mops=<million ops per second, all threads> peak_rss_kib=<VmHWM>
 *
 * The allocator is chosen by LD_PRELOAD; this program is not linked to
 * mtalloc.  Every thread uses its own fixed seed: runs are repeatable. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_THREADS 64
#define PAGE 4096 /* stride of the writes into each block (bytes) */

struct worker {
	unsigned long ops;   /* replacements to make; with -T, made (count) */
	double limit;        /* -T: replace for this long (ns), or 0 */
	unsigned long nslot; /* live blocks (count) */
	uint64_t rng;        /* xorshift64* state */
	double ns;           /* result: time of the replacement loop */
	int failed;          /* malloc returned NULL */
};

/* 95 % in 16..512 B, 5 % in 4..64 KiB, both uniform. */
static inline size_t pick_size(uint64_t *s)
{
	uint64_t r = bench_next(s);

	if (r % 100 < 95)
		return 16 + (size_t)((r >> 8) % (512 - 16 + 1));
	return 4096 + (size_t)((r >> 8) % (65536 - 4096 + 1));
}

/* Writes one byte per page of a new block. */
static inline void touch(char *p, size_t n)
{
	for (size_t off = 0; off < n; off += PAGE)
		((volatile char *)p)[off] = (char)off;
	((volatile char *)p)[n - 1] = 1;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	void **slot = calloc(w->nslot, sizeof(*slot));

	if (!slot) {
		w->failed = 1;
		bench_start_line();
		return NULL;
	}
	for (unsigned long i = 0; i < w->nslot; i++) {
		size_t n = pick_size(&w->rng);

		slot[i] = malloc(n);
		if (!slot[i]) {
			w->failed = 1;
			break;
		}
		touch(slot[i], n);
	}
	bench_start_line();
	double t0 = bench_now_ns();
	unsigned long done;

	for (done = 0; done < w->ops && !w->failed; done++) {
		unsigned long k = (unsigned long)(bench_next(&w->rng) % w->nslot);
		size_t n = pick_size(&w->rng);

		free(slot[k]);
		slot[k] = malloc(n);
		if (!slot[k]) {
			w->failed = 1;
			break;
		}
		touch(slot[k], n);
		if (w->limit > 0 && (done & 1023) == 1023 &&
		    bench_now_ns() - t0 >= w->limit) {
			done++;
			break;
		}
	}
	w->ns = bench_now_ns() - t0;
	w->ops = done;
	for (unsigned long i = 0; i < w->nslot; i++)
		free(slot[i]);
	free(slot);
	return NULL;
}

/* Peak resident set size in KiB: VmHWM, or ru_maxrss where /proc is
 * missing. */
static long peak_rss_kib(void)
{
	long kib = bench_status_kib("VmHWM");

	if (kib < 0) {
		struct rusage ru;

		if (getrusage(RUSAGE_SELF, &ru) == 0)
			kib = ru.ru_maxrss;
	}
	return kib;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: churn [-t THREADS] [-n OPS] [-s SLOTS] [-r SEED] "
		"[-T SECONDS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	unsigned long nthreads = 1, ops = 2000000, nslot = 10000, seed = 1;
	struct worker w[MAX_THREADS];
	int opt, status = 0;
	double worst = 0, limit = 0;
	unsigned long total = 0;

	while ((opt = getopt(argc, argv, "t:n:s:r:T:")) != -1) {
		if (opt == 'T') {
			if (bench_parse_seconds(optarg, &limit))
				return usage();
			continue;
		}
		unsigned long *dst = opt == 't' ? &nthreads :
				     opt == 'n' ? &ops :
				     opt == 's' ? &nslot :
				     opt == 'r' ? &seed : NULL;
		if (!dst || bench_parse_ulong(optarg, dst))
			return usage();
	}
	if (optind != argc || nthreads < 1 || nthreads > MAX_THREADS ||
	    nslot < 1)
		return usage();

	memset(w, 0, sizeof(w));
	for (unsigned long t = 0; t < nthreads; t++) {
		w[t].ops = ops;
		w[t].limit = limit;
		w[t].nslot = nslot;
		w[t].rng = (seed + t) * 0x9E3779B97F4A7C15ULL | 1;
	}
	if (bench_run_workers("churn", nthreads, work, w, sizeof(w[0])))
		return 1;
	for (unsigned long t = 0; t < nthreads; t++) {
		if (w[t].ns > worst)
			worst = w[t].ns;
		total += w[t].ops;
		if (w[t].failed) {
			fprintf(stderr, "churn: malloc failed\n");
			status = 1;
		}
	}
	/* Throughput of the whole process: all threads' ops over the time
	 * of the slowest thread. */
	printf("threads=%lu ops=%lu slots=%lu seconds=%.3f mops=%.2f "
	       "peak_rss_kib=%ld\n",
	       nthreads, total / nthreads, nslot, worst / 1e9,
	       worst > 0 ? (double)total / worst * 1e3 : 0.0,
	       peak_rss_kib());
	return status;
}
