/* Allocation in a thread's last moments (linked): thread-key destructors
 * that run after mtalloc's own (keys are created after the library's and
 * re-set their value to run again in later rounds), C++-style
 * thread_local destructors (__cxa_thread_atexit_impl), and threads whose
 * first allocation happens while they exit.
 *
 * glibc runs key destructors in key order for up to
 * PTHREAD_DESTRUCTOR_ITERATIONS (4) rounds; thread_local destructors run
 * before any of them. */
#include "config.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mtalloc.h"

/* glibc's registration function behind C++ thread_local destructors. */
int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso);
extern void *__dso_handle;

#define ROUNDS PTHREAD_DESTRUCTOR_ITERATIONS

static pthread_key_t key;
static atomic_int rounds_run, ops_failed, late_frees, body_frees;
static atomic_uint alive_seen;
static struct mtalloc_stats base; /* before the threads of a test */

static struct mtalloc_stats stats(void)
{
	struct mtalloc_stats st;

	cr_assert_eq(mtalloc_stats_get(&st, sizeof(st)), 0);
	return st;
}

/* A little of everything: malloc, calloc, realloc, aligned_alloc, with
 * content checks.  Returns the number of frees mtalloc should count (a
 * realloc that moves counts as one). */
static int churn(int seed)
{
	unsigned char *p = malloc(100), *q = calloc(10, 100), *a, *r;
	int frees = 0;

	if (!p || !q) {
		atomic_fetch_add(&ops_failed, 1);
		free(p);
		free(q);
		return (p != NULL) + (q != NULL);
	}
	memset(p, seed, 100);
	for (int i = 0; i < 1000; i++)
		if (q[i])
			atomic_fetch_add(&ops_failed, 1);
	r = realloc(p, 100000);
	if (!r) {
		atomic_fetch_add(&ops_failed, 1);
	} else {
		frees += r != p;
		p = r;
		for (int i = 0; i < 100; i++)
			if (p[i] != (unsigned char)seed) {
				atomic_fetch_add(&ops_failed, 1);
				break;
			}
		memset(p, seed, 100000);
	}
	a = aligned_alloc(256, 1000);
	if (!a || ((uintptr_t)a & 255))
		atomic_fetch_add(&ops_failed, 1);
	frees += (a != NULL) + 2;
	free(a);
	free(p);
	free(q);
	return frees;
}

static void late_dtor(void *value)
{
	intptr_t round = (intptr_t)value;
	struct mtalloc_stats st;

	atomic_fetch_add(&rounds_run, 1);
	atomic_fetch_add(&late_frees, churn((int)round));
	if (mtalloc_stats_get(&st, sizeof(st)) == 0)
		atomic_store(&alive_seen, st.threads_alive);
	if (round < ROUNDS)
		pthread_setspecific(key, (void *)(round + 1));
}

static void *allocates_then_exits(void *arg)
{
	(void)arg;
	/* sets the thread up: mtalloc's key now has a value */
	atomic_store(&body_frees, churn(1));
	pthread_setspecific(key, (void *)(intptr_t)1);
	return NULL;
}

static void reset(void (*dtor)(void *))
{
	free(malloc(1));
	base = stats();
	atomic_store(&rounds_run, 0);
	atomic_store(&ops_failed, 0);
	atomic_store(&late_frees, 0);
	atomic_store(&alive_seen, UINT_MAX);
	cr_assert_eq(pthread_key_create(&key, dtor), 0);
}

Test(tls_dtor, key_destructors_after_mtallocs_can_allocate_and_free,
     .timeout = 60)
{
	struct mtalloc_stats st, first;

	free(malloc(1));
	first = stats();
	for (int i = 0; i < 50; i++) {
		pthread_t t;
		reset(late_dtor);
		cr_assert_eq(pthread_create(&t, NULL, allocates_then_exits, NULL), 0);
		pthread_join(t, NULL);
		cr_assert_eq(atomic_load(&rounds_run), ROUNDS,
			     "the destructor ran %d rounds", atomic_load(&rounds_run));
		cr_assert_eq(atomic_load(&ops_failed), 0,
			     "%d allocations failed or came back wrong",
			     atomic_load(&ops_failed));
		/* mtalloc's destructor had run: the thread was no longer counted */
		cr_assert_eq(atomic_load(&alive_seen), base.threads_alive,
			     "threads_alive=%u seen from the late destructor, "
			     "%u before the thread started",
			     atomic_load(&alive_seen), base.threads_alive);
		pthread_key_delete(key);
	}
	st = stats();
	cr_assert_eq(st.threads_alive, first.threads_alive);
	cr_assert_eq(st.arenas_in_use, first.arenas_in_use);
	cr_assert_leq(st.arenas_created, first.arenas_created + 1,
		      "arenas_created=%u after 50 threads in sequence",
		      st.arenas_created);
	void *p = malloc(12345);
	cr_assert_not_null(p);
	free(p);
}

Test(tls_dtor, frees_in_late_destructors_are_counted, .timeout = 60)
{
	struct mtalloc_stats a, b;
	pthread_t t;

	free(malloc(1));
	reset(late_dtor);
	a = stats();
	cr_assert_eq(pthread_create(&t, NULL, allocates_then_exits, NULL), 0);
	pthread_join(t, NULL);
	b = stats();
	cr_assert_eq(atomic_load(&ops_failed), 0);
	cr_assert_eq(atomic_load(&rounds_run), ROUNDS);
	cr_assert_geq(b.process.frees - a.process.frees,
		      (uint64_t)atomic_load(&body_frees) +
			      (uint64_t)atomic_load(&late_frees),
		      "process.frees grew by %llu; the thread freed %d blocks "
		      "after mtalloc's destructor ran",
		      (unsigned long long)(b.process.frees - a.process.frees),
		      atomic_load(&late_frees));
}

/* ---- thread_local destructors (C++ style) --------------------------------- */

static atomic_int tl_ran;

static void thread_local_dtor(void *obj)
{
	(void)obj;
	churn(3);
	atomic_fetch_add(&tl_ran, 1);
}

static void *registers_thread_local_dtor(void *arg)
{
	(void)arg;
	churn(2);
	__cxa_thread_atexit_impl(thread_local_dtor, NULL, &__dso_handle);
	return NULL;
}

Test(tls_dtor, thread_local_destructors_can_allocate_and_free, .timeout = 60)
{
	free(malloc(1));
	base = stats();
	atomic_store(&ops_failed, 0);
	atomic_store(&tl_ran, 0);
	for (int i = 0; i < 50; i++) {
		pthread_t t;
		cr_assert_eq(pthread_create(&t, NULL, registers_thread_local_dtor,
					    NULL), 0);
		pthread_join(t, NULL);
	}
	cr_assert_eq(atomic_load(&tl_ran), 50);
	cr_assert_eq(atomic_load(&ops_failed), 0);
	struct mtalloc_stats st = stats();
	cr_assert_eq(st.threads_alive, base.threads_alive);
	cr_assert_eq(st.arenas_in_use, base.arenas_in_use);
}

/* ---- threads whose first allocation is made while they exit ---------------- */

static atomic_int alloc_round; /* the round in which the destructor allocates */

static void first_alloc_dtor(void *value)
{
	intptr_t round = (intptr_t)value;

	atomic_fetch_add(&rounds_run, 1);
	if (round == atomic_load(&alloc_round))
		churn(4);
	if (round < ROUNDS)
		pthread_setspecific(key, (void *)(round + 1));
}

static void *never_allocates(void *arg)
{
	(void)arg;
	pthread_setspecific(key, (void *)(intptr_t)1);
	return NULL;
}

static void first_alloc_while_exiting(int round)
{
	struct mtalloc_stats st;

	reset(first_alloc_dtor);
	atomic_store(&alloc_round, round);
	for (int i = 0; i < 20; i++) {
		pthread_t t;
		atomic_store(&rounds_run, 0);
		cr_assert_eq(pthread_create(&t, NULL, never_allocates, NULL), 0);
		pthread_join(t, NULL);
		cr_assert_eq(atomic_load(&rounds_run), ROUNDS);
		cr_assert_eq(atomic_load(&ops_failed), 0);
		st = stats();
		cr_assert_eq(st.threads_alive, base.threads_alive,
			     "thread %d set up in destructor round %d is still "
			     "counted alive after it exited (threads_alive=%u, "
			     "%u before)", i, round, st.threads_alive,
			     base.threads_alive);
		cr_assert_eq(st.arenas_in_use, base.arenas_in_use,
			     "thread %d set up in destructor round %d kept its "
			     "arena (arenas_in_use=%u, %u before)", i, round,
			     st.arenas_in_use, base.arenas_in_use);
	}
}

Test(tls_dtor, first_allocation_in_first_destructor_round_is_cleaned_up,
     .timeout = 60)
{
	first_alloc_while_exiting(1);
}

Test(tls_dtor, first_allocation_in_last_destructor_round_is_cleaned_up,
     .timeout = 60)
{
	first_alloc_while_exiting(ROUNDS);
}

static void *allocates_and_exits(void *arg)
{
	(void)arg;
	free(malloc(100));
	return NULL;
}

/* The thread set up in the last round leaves mtalloc's registry pointing
 * into its static TLS; the next thread reuses that TLS block.  The counts
 * of the threads still alive must not be lost. */
Test(tls_dtor, thread_set_up_in_last_round_does_not_lose_other_threads_counts,
     .timeout = 60)
{
	struct mtalloc_stats a, b;
	pthread_t t;

	reset(first_alloc_dtor);
	atomic_store(&alloc_round, ROUNDS);
	a = stats();
	cr_assert_eq(pthread_create(&t, NULL, never_allocates, NULL), 0);
	pthread_join(t, NULL);
	cr_assert_eq(atomic_load(&rounds_run), ROUNDS);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(pthread_create(&t, NULL, allocates_and_exits, NULL), 0);
		pthread_join(t, NULL);
	}
	for (int i = 0; i < 100; i++)
		free(malloc(16));
	b = stats();
	cr_assert_geq(b.process.frees, a.process.frees + 100,
		      "process.frees went from %llu to %llu while this thread "
		      "alone freed 100 blocks",
		      (unsigned long long)a.process.frees,
		      (unsigned long long)b.process.frees);
}

static atomic_int stats_returned;

static void *allocates_and_reads_stats(void *arg)
{
	struct mtalloc_stats st;

	(void)arg;
	free(malloc(100));
	if (mtalloc_stats_get(&st, sizeof(st)) == 0)
		atomic_store(&stats_returned, 1);
	return NULL;
}

/* As above, but the next thread (which reuses the dead thread's TLS block,
 * still linked in the registry) reads the figures while it is alive. */
Test(tls_dtor, stats_return_after_a_thread_set_up_in_last_round, .timeout = 15)
{
	pthread_t t;

	reset(first_alloc_dtor);
	atomic_store(&alloc_round, ROUNDS);
	atomic_store(&stats_returned, 0);
	cr_assert_eq(pthread_create(&t, NULL, never_allocates, NULL), 0);
	pthread_join(t, NULL);
	cr_assert_eq(pthread_create(&t, NULL, allocates_and_reads_stats, NULL), 0);
	pthread_join(t, NULL); /* a hang here is the failure: the timeout */
	cr_assert_eq(atomic_load(&stats_returned), 1);
}
