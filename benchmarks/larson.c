/* larson: a server-like workload after Larson and Krishnan's benchmark
 * ("Memory allocation for long-running server applications", ISMM 1998),
 * as mimalloc-bench and the Hoard papers run it.
 *
 *   larson [-t CHAINS] [-g GENERATIONS] [-n OPS] [-s SLOTS] [-T SECONDS]
 *
 * CHAINS chains run at once.  A chain owns SLOTS blocks (8-1000 B, uniform).
 * A thread of the chain makes OPS replacements (free a random block,
 * allocate a new one of a random size, write it), then starts the next
 * thread of its chain, hands it the slots and exits; GENERATIONS threads
 * per chain in all (with -T: until SECONDS have passed, at most
 * GENERATIONS).  So most frees are of blocks that another, often dead,
 * thread allocated, threads come and go all the time, and the live set
 * stays constant: the pattern of a server whose worker threads serve
 * requests on objects that outlive them.  For mtalloc this exercises
 * arena recycling at thread exit and frees into arenas of exited threads.
 *
 * Every chain uses its own fixed seed: runs are repeatable.  Prints:
 *
 *   chains=<count> generations=<per chain (mean)> ops=<per generation>
 *   slots=<count>
 *   seconds=<s> mops=<million replacements per second, all chains>
 *
 * Not linked to mtalloc: the allocator is chosen by LD_PRELOAD. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_CHAINS 64
#define MIN_SIZE 8     /* bytes */
#define MAX_SIZE 1000  /* bytes */

struct chain {
	char **slot;             /* the live blocks */
	unsigned long nslot;     /* blocks (count) */
	unsigned long ops;       /* replacements per generation (count) */
	unsigned long left;      /* generations still to run (count) */
	unsigned long gens;      /* generations run (count) */
	uint64_t rng;            /* xorshift64* state */
	int failed;              /* malloc or pthread_create failed */
};

static sem_t done;             /* posted once per finished chain */
static double t_start, limit;  /* -T: start and length of the run (ns) */

static inline size_t pick_size(uint64_t *s)
{
	return MIN_SIZE + (size_t)(bench_next(s) % (MAX_SIZE - MIN_SIZE + 1));
}

static void *generation(void *arg)
{
	struct chain *c = arg;
	pthread_t tid;

	for (unsigned long i = 0; i < c->ops; i++) {
		unsigned long k = (unsigned long)(bench_next(&c->rng) % c->nslot);
		size_t n = pick_size(&c->rng);

		free(c->slot[k]);
		c->slot[k] = malloc(n);
		if (!c->slot[k]) {
			c->failed = 1;
			break;
		}
		c->slot[k][0] = (char)i;
		c->slot[k][n - 1] = (char)i;
	}
	c->gens++;
	if (--c->left == 0 || c->failed ||
	    (limit > 0 && bench_now_ns() - t_start >= limit)) {
		sem_post(&done);
		return NULL;
	}
	/* Hand the slots to a new thread of the chain and exit. */
	if (pthread_create(&tid, NULL, generation, c)) {
		c->failed = 1;
		sem_post(&done);
		return NULL;
	}
	pthread_detach(tid);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long nchain = 2, ngen = 100, ops = 20000, nslot = 1000;
	static struct chain chains[MAX_CHAINS];
	int opt, status = 0;

	while ((opt = getopt(argc, argv, "t:g:n:s:T:")) != -1) {
		if (opt == 'T') {
			if (bench_parse_seconds(optarg, &limit))
				goto usage;
			continue;
		}
		unsigned long *dst = opt == 't' ? &nchain :
				     opt == 'g' ? &ngen :
				     opt == 'n' ? &ops :
				     opt == 's' ? &nslot : NULL;
		if (!dst || bench_parse_ulong(optarg, dst))
			goto usage;
	}
	if (optind != argc || nchain < 1 || nchain > MAX_CHAINS || ngen < 1 ||
	    nslot < 1)
		goto usage;

	sem_init(&done, 0, 0);
	/* The main thread allocates every chain's first blocks: the first
	 * generation already frees blocks of another thread. */
	for (unsigned long i = 0; i < nchain; i++) {
		struct chain *c = &chains[i];

		c->slot = calloc(nslot, sizeof(*c->slot));
		if (!c->slot)
			goto oom;
		c->nslot = nslot;
		c->ops = ops;
		c->left = ngen;
		c->rng = (i + 1) * 0x9E3779B97F4A7C15ULL | 1;
		for (unsigned long k = 0; k < nslot; k++) {
			size_t n = pick_size(&c->rng);

			c->slot[k] = malloc(n);
			if (!c->slot[k])
				goto oom;
			memset(c->slot[k], 1, n);
		}
	}
	double t0 = bench_now_ns();
	unsigned long gens = 0;

	t_start = t0;
	for (unsigned long i = 0; i < nchain; i++) {
		pthread_t tid;

		if (pthread_create(&tid, NULL, generation, &chains[i])) {
			fprintf(stderr, "larson: cannot create thread\n");
			return 1;
		}
		pthread_detach(tid);
	}
	for (unsigned long i = 0; i < nchain; i++)
		while (sem_wait(&done) != 0 && errno == EINTR)
			;
	double t1 = bench_now_ns();
	for (unsigned long i = 0; i < nchain; i++) {
		gens += chains[i].gens;
		if (chains[i].failed) {
			fprintf(stderr, "larson: malloc or pthread_create failed\n");
			status = 1;
		}
		for (unsigned long k = 0; k < nslot; k++)
			free(chains[i].slot[k]);
		free(chains[i].slot);
	}
	printf("chains=%lu generations=%lu ops=%lu slots=%lu seconds=%.3f "
	       "mops=%.3f\n", nchain, gens / nchain, ops, nslot,
	       (t1 - t0) / 1e9, (double)(gens * ops) / (t1 - t0) * 1e3);
	return status;
oom:
	fprintf(stderr, "larson: out of memory\n");
	return 1;
usage:
	fprintf(stderr, "usage: larson [-t CHAINS] [-g GENERATIONS] [-n OPS] [-s SLOTS] "
		"[-T SECONDS]\n");
	return 2;
}
