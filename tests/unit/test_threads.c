/* Threads on mtalloc (linked): objects freed by another thread than the one
 * that allocated them, thread churn recycling arenas, and the process
 * counters across threads that come and go. */
#include "config.h"

#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtalloc.h"

static struct mtalloc_stats stats(void)
{
	struct mtalloc_stats st;

	cr_assert_eq(mtalloc_stats_get(&st, sizeof(st)), 0);
	return st;
}

/* The default cap on per-thread arenas (src/backend/arena.c): 4 per CPU,
 * at least 8. */
static unsigned default_cap(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned cap = ncpu > 0 ? 4 * (unsigned)ncpu : 4;

	return cap < 8 ? 8 : cap;
}

/* ---- cross-thread frees ------------------------------------------------- */

#define NTHREADS 32
#define PER_THREAD 3000

/* An object in flight from its producer to its consumer.  The payload is a
 * pattern derived from (producer, seq), checked by the consumer. */
struct obj {
	struct obj *next;
	size_t size;     /* bytes, header included */
	uint32_t producer;
	uint32_t seq;
	unsigned char data[];
};

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	struct obj *head, **tail;
};

static struct queue queues[NTHREADS];
static atomic_ulong bad_content, failed_allocs, consumed;

static unsigned char pattern(const struct obj *o, size_t i)
{
	return (unsigned char)(o->producer * 131 + o->seq * 7 + i);
}

static size_t pick_size(uint64_t *rng)
{
	*rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
	unsigned r = (unsigned)(*rng >> 33);
	if (r % 97 == 0)
		return 65536 + r % (1 << 20);    /* large, now and then */
	if (r % 7 == 0)
		return 1024 + r % 31000;         /* medium */
	return sizeof(struct obj) + r % 512; /* small, most of them */
}

static void push(struct queue *q, struct obj *o)
{
	o->next = NULL;
	pthread_mutex_lock(&q->lock);
	*q->tail = o;
	q->tail = &o->next;
	pthread_cond_signal(&q->nonempty);
	pthread_mutex_unlock(&q->lock);
}

static struct obj *pop(struct queue *q, int wait)
{
	struct obj *o;

	pthread_mutex_lock(&q->lock);
	while (wait && !q->head)
		pthread_cond_wait(&q->nonempty, &q->lock);
	o = q->head;
	if (o) {
		q->head = o->next;
		if (!q->head)
			q->tail = &q->head;
	}
	pthread_mutex_unlock(&q->lock);
	return o;
}

static void consume(struct obj *o)
{
	size_t n = o->size - sizeof(*o);

	for (size_t i = 0; i < n; i++)
		if (o->data[i] != pattern(o, i)) {
			atomic_fetch_add(&bad_content, 1);
			break;
		}
	if (o->seq % 5 == 0) {
		/* resize an object another thread allocated */
		size_t m = o->seq % 10 == 0 ? o->size * 3 : o->size / 2 + 32;
		size_t keep = (m < o->size ? m : o->size) - sizeof(*o);
		struct obj *r = realloc(o, m);
		if (!r) {
			atomic_fetch_add(&failed_allocs, 1);
		} else {
			o = r;
			for (size_t i = 0; i < keep; i++)
				if (o->data[i] != pattern(o, i)) {
					atomic_fetch_add(&bad_content, 1);
					break;
				}
		}
	}
	free(o);
	atomic_fetch_add(&consumed, 1);
}

static void *cross_worker(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	struct queue *mine = &queues[id], *next = &queues[(id + 1) % NTHREADS];
	uint64_t rng = id * 0x9e3779b97f4a7c15ull + 1;
	unsigned got = 0;

	for (uint32_t seq = 0; seq < PER_THREAD; seq++) {
		size_t size = pick_size(&rng);
		struct obj *o = malloc(size);
		if (!o) {
			atomic_fetch_add(&failed_allocs, 1);
			continue;
		}
		o->size = size;
		o->producer = id;
		o->seq = seq;
		for (size_t i = 0; i < size - sizeof(*o); i++)
			o->data[i] = pattern(o, i);
		push(next, o);
		for (struct obj *in; (in = pop(mine, 0)); got++)
			consume(in);
	}
	/* every queue gets exactly PER_THREAD objects, from one producer */
	for (; got < PER_THREAD; got++)
		consume(pop(mine, 1));
	return NULL;
}

Test(threads, objects_freed_by_other_threads_keep_contents, .timeout = 120)
{
	pthread_t th[NTHREADS];
	struct mtalloc_stats a, b;
	const uint64_t total = (uint64_t)NTHREADS * PER_THREAD;

	free(malloc(1));
	for (int i = 0; i < NTHREADS; i++) {
		pthread_mutex_init(&queues[i].lock, NULL);
		pthread_cond_init(&queues[i].nonempty, NULL);
		queues[i].head = NULL;
		queues[i].tail = &queues[i].head;
	}
	a = stats();
	for (int i = 0; i < NTHREADS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, cross_worker,
					    (void *)(uintptr_t)i), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	b = stats();
	cr_assert_eq(atomic_load(&failed_allocs), 0);
	cr_assert_eq(atomic_load(&consumed), total);
	cr_assert_eq(atomic_load(&bad_content), 0,
		     "%lu objects arrived damaged", atomic_load(&bad_content));
	cr_assert_eq(b.threads_alive, a.threads_alive);
	cr_assert_eq(b.arenas_in_use, a.arenas_in_use);
	cr_assert_leq(b.arenas_created, default_cap());
	cr_assert_geq(b.process.frees - a.process.frees, total,
		      "process.frees grew by %llu for %llu frees",
		      (unsigned long long)(b.process.frees - a.process.frees),
		      (unsigned long long)total);
	/* Every worker has exited, so its thread cache has been merged. */
	cr_assert_geq(b.process.allocs - a.process.allocs, total,
		      "process.allocs grew by %llu for %llu allocations",
		      (unsigned long long)(b.process.allocs - a.process.allocs),
		      (unsigned long long)total);
}

/* ---- thread churn --------------------------------------------------------- */

#define CHURN 10000

static void *short_lived(void *arg)
{
	(void)arg;
	void *p = malloc(32), *q = calloc(3, 200), *r = malloc(70000);

	if (p && q && r) {
		memset(p, 1, 32);
		memset(r, 2, 70000);
	}
	free(p);
	free(q);
	free(r);
	return p && q && r ? NULL : (void *)1;
}

Test(threads, ten_thousand_short_lived_threads_recycle_a_few_arenas,
     .timeout = 120)
{
	struct mtalloc_stats a, b;
	int failed = 0;

	free(malloc(1));
	a = stats();
	for (int i = 0; i < CHURN; i++) {
		pthread_t t;
		void *r;
		cr_assert_eq(pthread_create(&t, NULL, short_lived, NULL), 0,
			     "thread %d", i);
		pthread_join(t, &r);
		failed += r != NULL;
	}
	b = stats();
	cr_assert_eq(failed, 0, "%d threads failed to allocate", failed);
	cr_assert_eq(b.threads_alive, a.threads_alive,
		     "threads_alive=%u after all joined, %u before",
		     b.threads_alive, a.threads_alive);
	cr_assert_leq(b.arenas_created, default_cap());
	cr_assert_leq(b.arenas_created, a.arenas_created + 1,
		      "%u arenas made for one thread at a time (%u before)",
		      b.arenas_created, a.arenas_created);
	cr_assert_leq(b.arenas_created, 4, "arenas_created=%u", b.arenas_created);
	cr_assert_eq(b.arenas_in_use, a.arenas_in_use, "arenas_in_use=%u, %u before",
		     b.arenas_in_use, a.arenas_in_use);
	cr_assert_geq(b.process.frees - a.process.frees, 3ull * CHURN);
	cr_assert_geq(b.process.allocs - a.process.allocs, 3ull * CHURN);
	cr_assert_leq(b.process.frees, b.process.allocs,
		      "more frees (%llu) than allocations (%llu)",
		      (unsigned long long)b.process.frees,
		      (unsigned long long)b.process.allocs);
}

/* ---- threads alive at once ----------------------------------------------- */

#define ALIVE 24

static pthread_barrier_t allocated, release;

static void *holder(void *arg)
{
	void *p = malloc(100 + (uintptr_t)arg);

	pthread_barrier_wait(&allocated);
	pthread_barrier_wait(&release);
	free(p);
	return p ? NULL : (void *)1;
}

Test(threads, threads_alive_at_once_share_arenas_past_the_cap, .timeout = 60)
{
	pthread_t th[ALIVE];
	struct mtalloc_stats before, during, after;

	free(malloc(1));
	before = stats();
	pthread_barrier_init(&allocated, NULL, ALIVE + 1);
	pthread_barrier_init(&release, NULL, ALIVE + 1);
	for (int i = 0; i < ALIVE; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, holder,
					    (void *)(uintptr_t)i), 0);
	pthread_barrier_wait(&allocated);
	during = stats();
	pthread_barrier_wait(&release);
	for (int i = 0; i < ALIVE; i++)
		pthread_join(th[i], NULL);
	after = stats();
	unsigned want = before.threads_alive + ALIVE;
	cr_assert_eq(during.threads_alive, want);
	cr_assert_eq(during.arenas_created, want < default_cap() ? want
								 : default_cap(),
		     "arenas_created=%u for %u threads, cap %u",
		     during.arenas_created, want, default_cap());
	cr_assert_eq(during.arenas_in_use, during.arenas_created);
	cr_assert_eq(after.threads_alive, before.threads_alive);
	cr_assert_eq(after.arenas_in_use, before.arenas_in_use);
	cr_assert_eq(after.arenas_created, during.arenas_created);
}

Test(threads, mallopt_arena_max_stops_new_arenas, .timeout = 60)
{
	pthread_t th[ALIVE];
	struct mtalloc_stats before, during;

	free(malloc(1));
	before = stats();
	cr_assert_eq(mallopt(M_ARENA_MAX, (int)before.arenas_created), 1);
	pthread_barrier_init(&allocated, NULL, ALIVE + 1);
	pthread_barrier_init(&release, NULL, ALIVE + 1);
	for (int i = 0; i < ALIVE; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, holder,
					    (void *)(uintptr_t)i), 0);
	pthread_barrier_wait(&allocated);
	during = stats();
	pthread_barrier_wait(&release);
	for (int i = 0; i < ALIVE; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(during.threads_alive, before.threads_alive + ALIVE);
	cr_assert_eq(during.arenas_created, before.arenas_created,
		     "M_ARENA_MAX=%u, yet %u arenas with %u threads alive",
		     before.arenas_created, during.arenas_created,
		     during.threads_alive);
}

/* ---- counters of threads that only free ---------------------------------- */

#define ONLY_FREES 1000

static void *only_frees(void *arg)
{
	void **v = arg;

	for (int i = 0; i < ONLY_FREES; i++)
		free(v[i]);
	return NULL;
}

Test(threads, frees_by_a_thread_that_never_allocates_are_counted,
     .timeout = 30)
{
	static void *v[ONLY_FREES];
	struct mtalloc_stats a, b;
	pthread_t t;

	for (int i = 0; i < ONLY_FREES; i++)
		cr_assert_not_null(v[i] = malloc(48));
	a = stats();
	cr_assert_eq(pthread_create(&t, NULL, only_frees, v), 0);
	pthread_join(t, NULL);
	b = stats();
	cr_assert_geq(b.process.frees - a.process.frees, ONLY_FREES,
		      "process.frees grew by %llu after another thread freed "
		      "%d blocks",
		      (unsigned long long)(b.process.frees - a.process.frees),
		      ONLY_FREES);
}

static void *frees_then_allocates(void *arg)
{
	void **v = arg;

	for (int i = 0; i < ONLY_FREES; i++)
		free(v[i]);
	free(malloc(16)); /* sets the thread up */
	return NULL;
}

Test(threads, frees_made_before_a_threads_first_allocation_are_counted,
     .timeout = 30)
{
	static void *v[ONLY_FREES];
	struct mtalloc_stats a, b;
	pthread_t t;

	for (int i = 0; i < ONLY_FREES; i++)
		cr_assert_not_null(v[i] = malloc(48));
	a = stats();
	cr_assert_eq(pthread_create(&t, NULL, frees_then_allocates, v), 0);
	pthread_join(t, NULL);
	b = stats();
	cr_assert_geq(b.process.frees - a.process.frees, ONLY_FREES + 1,
		      "process.frees grew by %llu",
		      (unsigned long long)(b.process.frees - a.process.frees));
}
