/* What the benchmark programs share: the clock, the random numbers, option
 * parsing, /proc/self/status, and starting N workers that begin their timed
 * loops together.
 *
 * Header-only (static functions): each benchmark is one source file, built
 * at -O2 and never linked to mtalloc, and the inline xorshift and clock
 * compile into the measured loops exactly as a local copy would. */
#ifndef MT_BENCH_COMMON_H
#define MT_BENCH_COMMON_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* The monotonic clock (ns). */
static inline double bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* xorshift64*: the next number of the sequence in *s (never 0: seed with
 * an odd number). */
static inline uint64_t bench_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* A whole decimal number, nothing after it, not negative: 0, else -1. */
static inline int bench_parse_ulong(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno || end == s || *end != '\0' || s[0] == '-' ? -1 : 0;
}

/* -T SECONDS: a number of seconds, not negative, into *ns: 0, else -1. */
static inline int bench_parse_seconds(const char *s, double *ns)
{
	char *end;

	*ns = strtod(s, &end) * 1e9;
	return end == s || *end || *ns < 0 ? -1 : 0;
}

/* The value of a "Name:   N kB" line of /proc/self/status (KiB; key is
 * "VmRSS", "VmHWM", ...), or -1. */
static inline long bench_status_kib(const char *key)
{
	char line[256], fmt[64];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	snprintf(fmt, sizeof(fmt), "%s: %%ld kB", key);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, fmt, &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* ---- workers that start together ------------------------------------------ */

static pthread_barrier_t bench_barrier;
static int bench_barrier_on;

/* A worker calls this when its set-up is done and its timed loop is to
 * begin: with several workers it waits until all are there; alone, it
 * returns at once. */
static inline void bench_start_line(void)
{
	if (bench_barrier_on)
		pthread_barrier_wait(&bench_barrier);
}

#define BENCH_MAX_WORKERS 128

/* Runs fn on each of n arguments (arg, arg + size, ...): one worker on the
 * calling thread (no thread set-up, no barrier), more on threads of their
 * own, created in order, that meet at bench_start_line.  Returns when all
 * have returned: 0, or -1 after "PROG: cannot create thread" on stderr
 * (the threads already started are left to the process's exit). */
static inline int bench_run_workers(const char *prog, unsigned long n,
				    void *(*fn)(void *), void *arg,
				    size_t size)
{
	pthread_t tids[BENCH_MAX_WORKERS];

	if (n == 1) {
		fn(arg);
		return 0;
	}
	if (n > BENCH_MAX_WORKERS) {
		fprintf(stderr, "%s: more than %d threads\n", prog,
			BENCH_MAX_WORKERS);
		return -1;
	}
	pthread_barrier_init(&bench_barrier, NULL, (unsigned)n);
	bench_barrier_on = 1;
	for (unsigned long i = 0; i < n; i++)
		if (pthread_create(&tids[i], NULL, fn, (char *)arg + i * size)) {
			fprintf(stderr, "%s: cannot create thread\n", prog);
			return -1;
		}
	for (unsigned long i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
	bench_barrier_on = 0;
	pthread_barrier_destroy(&bench_barrier);
	return 0;
}

#endif
