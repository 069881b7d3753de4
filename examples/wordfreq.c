/* wordfreq: the bundled example.  Four threads each generate a stream of
 * pseudo-random words, count them in a hash table of malloc'd nodes, and
 * hand their tables to the main thread, which merges them, frees every node
 * (objects allocated by other threads) and prints the most frequent words.
 * Linked with -lmtalloc, it ends by printing what mtalloc counted. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtalloc.h"

#define NTHREADS 4
#define NBUCKETS 4096

struct node {
	struct node *next;
	unsigned long count;
	char word[];
};

struct table {
	struct node *b[NBUCKETS];
	unsigned long words;
};

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % NBUCKETS;
}

static void add(struct table *t, const char *w, unsigned long n)
{
	struct node **p = &t->b[hash(w)];
	for (; *p; p = &(*p)->next)
		if (strcmp((*p)->word, w) == 0) {
			(*p)->count += n;
			return;
		}
	size_t len = strlen(w) + 1;
	struct node *e = malloc(sizeof(*e) + len);
	if (!e) {
		perror("malloc");
		exit(1);
	}
	e->next = NULL;
	e->count = n;
	memcpy(e->word, w, len);
	*p = e;
}

static void *worker(void *arg)
{
	unsigned long seed = (uintptr_t)arg * 2654435761u + 1;
	struct table *t = calloc(1, sizeof(*t));
	static const char *syl[] = { "ka", "lo", "mi", "nu", "re", "so", "ti", "va" };

	if (!t)
		return NULL;
	for (int i = 0; i < 200000; i++) {
		char w[32] = "";
		seed = seed * 6364136223846793005ul + 1442695040888963407ul;
		int n = 1 + (int)((seed >> 60) % 3);
		for (int k = 0; k < n; k++)
			strcat(w, syl[(seed >> (8 + 3 * k)) & 7]);
		/* a short-lived scratch copy, as real parsers make */
		char *tmp = strdup(w);
		add(t, tmp, 1);
		free(tmp);
		t->words++;
	}
	return t;
}

int main(void)
{
	pthread_t th[NTHREADS];
	struct table *all = calloc(1, sizeof(*all));
	struct mtalloc_stats st;

	for (long i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	for (int i = 0; i < NTHREADS; i++) {
		struct table *t;
		pthread_join(th[i], (void **)&t);
		for (int b = 0; t && b < NBUCKETS; b++)
			for (struct node *e = t->b[b], *next; e; e = next) {
				next = e->next;
				add(all, e->word, e->count);
				free(e); /* allocated by the worker thread */
			}
		if (t)
			all->words += t->words;
		free(t);
	}
	struct node *top[3] = { 0 };
	for (int b = 0; b < NBUCKETS; b++)
		for (struct node *e = all->b[b]; e; e = e->next)
			for (int k = 0; k < 3; k++)
				if (!top[k] || e->count > top[k]->count) {
					memmove(&top[k + 1], &top[k], (2 - k) * sizeof(top[0]));
					top[k] = e;
					break;
				}
	printf("wordfreq: %lu words; most frequent:", all->words);
	for (int k = 0; k < 3 && top[k]; k++)
		printf(" %s (%lu)", top[k]->word, top[k]->count);
	printf("\n");

	if (mtalloc_stats_get(&st, sizeof(st)) == 0) {
		printf("mtalloc %s counted, over the whole process:\n", mtalloc_version());
		printf("  %llu allocations, %llu frees, %llu bytes allocated, %llu bytes freed\n",
		       (unsigned long long)st.process.allocs,
		       (unsigned long long)st.process.frees,
		       (unsigned long long)st.process.bytes_allocated,
		       (unsigned long long)st.process.bytes_freed);
		printf("  live now: %llu bytes in allocations, %llu bytes resident\n",
		       (unsigned long long)st.live_bytes,
		       (unsigned long long)st.resident_bytes);
		printf("  threads alive: %u; per-thread arenas: %u made, %u in use\n",
		       st.threads_alive, st.arenas_created, st.arenas_in_use);
	}
	return 0;
}
