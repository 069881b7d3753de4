/* growth: strings and vectors that grow by realloc, the way string builders,
 * dynamic arrays and read buffers do.
 *
 *   growth [-n REALLOCS] [-b BUILDERS] [-T SECONDS]
 *
 * BUILDERS buffers are built at once, interleaved at random so that a block
 * rarely has free space behind it.  Half are strings: they start at 16 B,
 * get up to a quarter of their capacity (at least 1-64 B) appended at a
 * time and double their capacity when full, up to a final length drawn
 * between 64 B and 16 KiB.  Half are vectors of 24-byte elements: they
 * start at 4 elements, get up to a quarter of their capacity appended at a
 * time and grow by 1.5x, up to 16 to 4,000 elements (96 KiB).  Final
 * lengths are log-uniform: short buffers are common, long ones rare.  The
 * run ends after REALLOCS reallocs (with -T: after SECONDS, at most
 * REALLOCS).  A
 * finished buffer is freed and the builder starts again.  Growth by realloc
 * is where an allocator can extend in place (jemalloc's large extents,
 * glibc's mremap) or must copy, and where a tracker sees one object die and
 * another be born at every step.
 *
 * Fixed seed: runs are repeatable.  Prints:
 *
 *   reallocs=<count done> builders=<count> bytes_appended=<bytes> seconds=<s>
 *   mops=<million reallocs (and the mallocs and frees between) per second>
 *
 * Not linked to mtalloc: the allocator is chosen by LD_PRELOAD. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_BUILDERS 4096
#define ELEM 24 /* bytes per vector element */

struct builder {
	char *buf;
	size_t len;    /* bytes in use */
	size_t cap;    /* bytes allocated */
	size_t target; /* bytes at which the buffer is finished */
	int vector;    /* 1: grows by 1.5x in ELEM steps; 0: string, 2x */
};

/* Draws a final length whose logarithm is uniform: short buffers are
 * common, long ones rare, as in real programs. */
static size_t log_uniform(uint64_t *s, size_t lo, size_t hi)
{
	double u = (double)(bench_next(s) >> 11) / 9007199254740992.0; /* [0,1) */
	double v = (double)lo * pow((double)hi / (double)lo, u);

	return (size_t)v;
}

static int start(struct builder *b, uint64_t *rng)
{
	b->len = 0;
	if (b->vector) {
		b->cap = 4 * ELEM;
		b->target = log_uniform(rng, 16, 4000) * ELEM;
	} else {
		b->cap = 16;
		b->target = log_uniform(rng, 64, 16384);
	}
	b->buf = malloc(b->cap);
	return b->buf ? 0 : -1;
}

int main(int argc, char **argv)
{
	unsigned long nrealloc = 1000000, nb = 64, done = 0;
	static struct builder b[MAX_BUILDERS];
	static const char text[64] =
		"the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGH";
	uint64_t rng = 0x9E3779B97F4A7C15ULL, appended = 0;
	double limit = 0;
	int opt;

	while ((opt = getopt(argc, argv, "n:b:T:")) != -1) {
		if (opt == 'T') {
			if (bench_parse_seconds(optarg, &limit))
				goto usage;
			continue;
		}
		unsigned long *dst = opt == 'n' ? &nrealloc :
				     opt == 'b' ? &nb : NULL;
		if (!dst || bench_parse_ulong(optarg, dst))
			goto usage;
	}
	if (optind != argc || nb < 1 || nb > MAX_BUILDERS)
		goto usage;

	double t0 = bench_now_ns();
	for (unsigned long i = 0; i < nb; i++) {
		b[i].vector = i & 1;
		if (start(&b[i], &rng))
			goto oom;
	}
	while (done < nrealloc) {
		struct builder *x = &b[bench_next(&rng) % nb];
		/* Up to a quarter of the capacity at a time (at least 64 B or
		 * one element): a few appends per realloc, so that the
		 * allocator, not the appending, is what the loop measures. */
		size_t add = x->vector ?
			ELEM * (1 + (size_t)(bench_next(&rng) % (x->cap / ELEM / 4 + 1))) :
			1 + (size_t)(bench_next(&rng) % (x->cap / 4 > 64 ? x->cap / 4 : 64));

		if (x->len + add > x->cap) {
			size_t cap = x->cap;

			while (cap < x->len + add)
				cap = x->vector ? cap + cap / 2 / ELEM * ELEM : 2 * cap;
			char *p = realloc(x->buf, cap);

			if (!p)
				goto oom;
			x->buf = p;
			x->cap = cap;
			done++;
			if (limit > 0 && (done & 255) == 0 &&
			    bench_now_ns() - t0 >= limit)
				break;
		}
		for (size_t off = 0; off < add; off += sizeof(text)) {
			size_t k = add - off < sizeof(text) ? add - off : sizeof(text);

			memcpy(x->buf + x->len + off, text, k);
		}
		x->len += add;
		appended += add;
		if (x->len >= x->target) {
			free(x->buf);
			if (start(x, &rng))
				goto oom;
		}
	}
	for (unsigned long i = 0; i < nb; i++)
		free(b[i].buf);
	double t1 = bench_now_ns();
	printf("reallocs=%lu builders=%lu bytes_appended=%llu seconds=%.3f "
	       "mops=%.3f\n", done, nb, (unsigned long long)appended,
	       (t1 - t0) / 1e9, (double)done / (t1 - t0) * 1e3);
	return 0;
oom:
	fprintf(stderr, "growth: out of memory\n");
	return 1;
usage:
	fprintf(stderr, "usage: growth [-n REALLOCS] [-b BUILDERS] [-T SECONDS]\n");
	return 2;
}
