/* prodcons: objects allocated on one thread and freed on another.
 *
 *   prodcons [-t PAIRS] [-n OBJECTS] [-q RING] [-T SECONDS]
 *
 * PAIRS producer/consumer pairs (2 x PAIRS threads).  Each producer
 * allocates OBJECTS objects (with -T: for SECONDS, at most OBJECTS)
 * (95 % 16-256 B, 5 % 1-8 KiB, sizes from a fixed
 * seed), writes a header into each and hands it over through a
 * single-producer single-consumer ring of RING slots to its consumer, which
 * checks the header and frees the object.  Every free is thus a remote
 * free: the block returns to an arena (or heap, or page) that another
 * thread owns, the pattern of message queues, pipelines and work stealing.
 * It is where per-thread arenas pay for their speed with cross-thread
 * traffic, and where a tracker that keeps per-thread state must match a
 * free with an allocation made elsewhere.
 *
 * A full or empty ring yields the processor (sched_yield) rather than
 * spinning, so that more threads than cores still make progress.  Prints:
 *
 *   pairs=<count> objects=<per producer (mean)> seconds=<s>
 *   mops=<million objects handed over and freed per second, all pairs>
 *
 * Not linked to mtalloc: the allocator is chosen by LD_PRELOAD. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_PAIRS 64
#define CACHELINE 64

struct obj {
	uint64_t seq;  /* producer's sequence number (count) */
	uint64_t size; /* bytes allocated */
};

struct ring {
	_Alignas(CACHELINE) uint64_t head; /* next slot to write (count) */
	_Alignas(CACHELINE) uint64_t tail; /* next slot to read (count) */
	_Alignas(CACHELINE) struct obj **slot;
	unsigned long mask;                /* slots - 1 */
};

struct pair {
	struct ring ring;
	unsigned long nobj;  /* objects to hand over, at most (count) */
	unsigned long done;  /* objects handed over and freed (count) */
	double limit;        /* -T: produce for this long (ns), or 0 */
	uint64_t rng;        /* producer's xorshift64* state */
	double t0, t1;       /* first produced, last freed (ns) */
	int failed;          /* malloc failed or an object was corrupt */
};

/* One end of a pair: a worker of bench_run_workers. */
struct end {
	struct pair *pair;
	int consumer;        /* 0: the producer */
};

/* Pushed after the last object: tells the consumer to stop. */
static struct obj end_marker;

static inline size_t pick_size(uint64_t *s)
{
	uint64_t r = bench_next(s);

	if (r % 100 < 95)
		return 16 + (size_t)((r >> 8) % (256 - 16 + 1));
	return 1024 + (size_t)((r >> 8) % (8192 - 1024 + 1));
}

static void push(struct ring *r, struct obj *o)
{
	uint64_t h = __atomic_load_n(&r->head, __ATOMIC_RELAXED);

	while (h - __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) > r->mask)
		sched_yield();
	r->slot[h & r->mask] = o;
	__atomic_store_n(&r->head, h + 1, __ATOMIC_RELEASE);
}

static void *produce(void *arg)
{
	struct pair *p = arg;

	bench_start_line();
	p->t0 = bench_now_ns();
	for (unsigned long i = 0; i < p->nobj; i++) {
		size_t n = pick_size(&p->rng);
		struct obj *o = malloc(n);

		if (!o) {
			p->failed = 1;
			break;
		}
		o->seq = i;
		o->size = n;
		((volatile char *)o)[n - 1] = 1;
		push(&p->ring, o);
		if (p->limit > 0 && (i & 1023) == 1023 &&
		    bench_now_ns() - p->t0 >= p->limit)
			break;
	}
	push(&p->ring, &end_marker);
	return NULL;
}

static void *consume(void *arg)
{
	struct pair *p = arg;
	struct ring *r = &p->ring;

	bench_start_line();
	for (unsigned long i = 0;; i++) {
		uint64_t t = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
		while (__atomic_load_n(&r->head, __ATOMIC_ACQUIRE) == t)
			sched_yield();
		struct obj *o = r->slot[t & r->mask];

		__atomic_store_n(&r->tail, t + 1, __ATOMIC_RELEASE);
		if (o == &end_marker) {
			p->done = i;
			break;
		}
		if (o->seq != i)
			p->failed = 1;
		free(o);
	}
	p->t1 = bench_now_ns();
	return NULL;
}

static void *play(void *arg)
{
	struct end *e = arg;

	return e->consumer ? consume(e->pair) : produce(e->pair);
}

int main(int argc, char **argv)
{
	unsigned long npairs = 1, nobj = 1000000, nring = 1024;
	static struct pair pairs[MAX_PAIRS];
	struct end ends[2 * MAX_PAIRS];
	double t0 = 0, t1 = 0, limit = 0;
	unsigned long total = 0;
	int opt, status = 0;

	while ((opt = getopt(argc, argv, "t:n:q:T:")) != -1) {
		if (opt == 'T') {
			if (bench_parse_seconds(optarg, &limit))
				goto usage;
			continue;
		}
		unsigned long *dst = opt == 't' ? &npairs :
				     opt == 'n' ? &nobj :
				     opt == 'q' ? &nring : NULL;
		if (!dst || bench_parse_ulong(optarg, dst))
			goto usage;
	}
	if (optind != argc || npairs < 1 || npairs > MAX_PAIRS || nring < 2 ||
	    (nring & (nring - 1)))
		goto usage;

	for (unsigned long i = 0; i < npairs; i++) {
		struct pair *p = &pairs[i];

		p->ring.slot = calloc(nring, sizeof(*p->ring.slot));
		if (!p->ring.slot) {
			fprintf(stderr, "prodcons: out of memory\n");
			return 1;
		}
		p->ring.mask = nring - 1;
		p->nobj = nobj;
		p->limit = limit;
		p->rng = (i + 1) * 0x9E3779B97F4A7C15ULL | 1;
		ends[2 * i] = (struct end){ p, 0 };
		ends[2 * i + 1] = (struct end){ p, 1 };
	}
	if (bench_run_workers("prodcons", 2 * npairs, play, ends,
			      sizeof(ends[0])))
		return 1;
	for (unsigned long i = 0; i < npairs; i++) {
		if (i == 0 || pairs[i].t0 < t0)
			t0 = pairs[i].t0;
		if (pairs[i].t1 > t1)
			t1 = pairs[i].t1;
		total += pairs[i].done;
		if (pairs[i].failed) {
			fprintf(stderr, "prodcons: malloc failed or object corrupt\n");
			status = 1;
		}
		free(pairs[i].ring.slot);
	}
	printf("pairs=%lu objects=%lu seconds=%.3f mops=%.3f\n", npairs,
	       total / npairs, (t1 - t0) / 1e9,
	       t1 > t0 ? (double)total / (t1 - t0) * 1e3 : 0.0);
	return status;
usage:
	fprintf(stderr, "usage: prodcons [-t PAIRS] [-n OBJECTS] [-q RING (a power of 2)] "
		"[-T SECONDS]\n");
	return 2;
}
