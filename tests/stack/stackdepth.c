/* stackdepth: malloc(64)+free pairs DEPTH calls deep, for the cost of
 * stack capture on sampled allocations (run it preloaded with
 * MTALLOC=sample:all,timeline:0,seed:1 under callgrind; doc/design.md,
 * "Stacks", gives the figures and the command).
 *
 *   stackdepth [-a] DEPTH ITERS
 *
 * Without -a every pair has the same stack, the case libmtalloc proves
 * from its last walk.  With -a the depth alternates between DEPTH and
 * DEPTH + 1 from one pair to the next through the same function, so that
 * only the outermost frames (below the recursion) are where they were in
 * the last walk: the rest goes through the table of rules.
 *
 * Like fastpath: not linked to mtalloc; (count at 2N - count at N) / N is
 * the cost of one pair. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static __attribute__((noinline)) void pair(void)
{
	void *p = malloc(64);

	__asm__ volatile("" : : "r"(p) : "memory");
	free(p);
}

/* d more frames, then a pair; the asm keeps the calls calls. */
static __attribute__((noinline)) void nest(int d)
{
	if (d > 0)
		nest(d - 1);
	else
		pair();
	__asm__ volatile("" : : : "memory");
}

int main(int argc, char **argv)
{
	int alternate = argc > 1 && !strcmp(argv[1], "-a");
	char *end;

	if (argc != 3 + alternate)
		goto usage;
	long depth = strtol(argv[1 + alternate], &end, 10);
	if (*end || depth < 0 || depth > 1000)
		goto usage;
	long iters = strtol(argv[2 + alternate], &end, 10);
	if (*end || iters < 0)
		goto usage;
	for (long i = 0; i < 1000; i++) /* warm-up: a fixed count */
		nest((int)depth + (alternate && (i & 1)));
	for (long i = 0; i < iters; i++)
		nest((int)depth + (alternate && (i & 1)));
	return 0;
usage:
	fprintf(stderr, "usage: stackdepth [-a] DEPTH ITERS\n");
	return 2;
}
