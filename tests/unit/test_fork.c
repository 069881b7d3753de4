/* fork(2) while other threads allocate (linked): the child must be able to
 * allocate, start a thread that allocates, and exit, and only the forking
 * thread's arena may still count as in use there.
 *
 * Each child arms alarm(2) first, so a child that deadlocks dies of SIGALRM
 * and the parent reports it instead of hanging; the test's own timeout
 * covers the parent. */
#include "config.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mtalloc.h"

#define BUSY 4
#define FORKS 20
#define CHILD_ALARM_S 20

/* Exit codes of the child. */
enum {
	CHILD_OK = 0,
	CHILD_MALLOC_FAILED = 10,
	CHILD_THREAD_FAILED,
	CHILD_THREAD_MALLOC_FAILED,
	CHILD_STATS_FAILED,
	CHILD_TOO_MANY_ARENAS_IN_USE, /* while its own thread lives */
	CHILD_ARENA_NOT_RELEASED,     /* after joining it */
	CHILD_TOO_MANY_THREADS_ALIVE,
};

static atomic_int stop;
static pthread_barrier_t started;

static void *busy(void *arg)
{
	uint64_t rng = (uintptr_t)arg + 1;
	void *keep[64] = { 0 };
	unsigned long i = 0;

	free(malloc(1));
	pthread_barrier_wait(&started);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		size_t n = (size_t)(rng >> 40) % (i % 50 == 0 ? 200000 : 2000) + 1;
		unsigned slot = (unsigned)(rng >> 20) % 64;
		free(keep[slot]);
		keep[slot] = malloc(n);
		if (keep[slot])
			memset(keep[slot], (int)i, n < 64 ? n : 64);
		i++;
	}
	for (int k = 0; k < 64; k++)
		free(keep[k]);
	return NULL;
}

static int child_stats(struct mtalloc_stats *st)
{
	return mtalloc_stats_get(st, sizeof(*st));
}

static void *child_thread(void *arg)
{
	void *p[100];
	struct mtalloc_stats st;

	(void)arg;
	for (int i = 0; i < 100; i++) {
		p[i] = malloc((size_t)i * 40 + 1);
		if (!p[i])
			return (void *)(intptr_t)CHILD_THREAD_MALLOC_FAILED;
		memset(p[i], i, (size_t)i * 40 + 1);
	}
	for (int i = 0; i < 100; i++)
		free(p[i]);
	if (child_stats(&st))
		return (void *)(intptr_t)CHILD_STATS_FAILED;
	/* alive here: the forking thread and this one */
	if (st.threads_alive > 2)
		return (void *)(intptr_t)CHILD_TOO_MANY_THREADS_ALIVE;
	if (st.arenas_in_use > 2)
		return (void *)(intptr_t)CHILD_TOO_MANY_ARENAS_IN_USE;
	return (void *)(intptr_t)CHILD_OK;
}

static _Noreturn void child(void)
{
	pthread_t t;
	void *r;
	struct mtalloc_stats st;
	char *p;

	alarm(CHILD_ALARM_S);
	p = malloc(5000);
	if (!p)
		_exit(CHILD_MALLOC_FAILED);
	memset(p, 7, 5000);
	free(p);
	if (pthread_create(&t, NULL, child_thread, NULL))
		_exit(CHILD_THREAD_FAILED);
	pthread_join(t, &r);
	if ((intptr_t)r != CHILD_OK)
		_exit((int)(intptr_t)r);
	if (child_stats(&st))
		_exit(CHILD_STATS_FAILED);
	if (st.arenas_in_use > 1)
		_exit(CHILD_ARENA_NOT_RELEASED);
	if (st.threads_alive > 1)
		_exit(CHILD_TOO_MANY_THREADS_ALIVE);
	_exit(CHILD_OK);
}

static int wait_for(pid_t pid)
{
	int status = -1;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

static const char *explain(int status)
{
	static char buf[128];

	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		return "child hung (killed by its alarm)";
	if (WIFSIGNALED(status)) {
		snprintf(buf, sizeof(buf), "child died of signal %d",
			 WTERMSIG(status));
		return buf;
	}
	switch (WEXITSTATUS(status)) {
	case CHILD_MALLOC_FAILED: return "malloc failed in the child";
	case CHILD_THREAD_FAILED: return "pthread_create failed in the child";
	case CHILD_THREAD_MALLOC_FAILED: return "malloc failed in the child's thread";
	case CHILD_STATS_FAILED: return "mtalloc_stats_get failed in the child";
	case CHILD_TOO_MANY_ARENAS_IN_USE:
		return "arenas_in_use > 2 in the child: the parent's threads' "
		       "arenas were not reclaimed";
	case CHILD_ARENA_NOT_RELEASED:
		return "arenas_in_use > 1 in the child after joining its thread";
	case CHILD_TOO_MANY_THREADS_ALIVE:
		return "threads_alive counts the parent's threads in the child";
	}
	snprintf(buf, sizeof(buf), "child exited %d", WEXITSTATUS(status));
	return buf;
}

Test(fork, child_allocates_and_starts_a_thread_while_parent_threads_allocate,
     .timeout = 120)
{
	pthread_t th[BUSY];
	struct mtalloc_stats st, before;

	free(malloc(1));
	cr_assert_eq(mtalloc_stats_get(&before, sizeof(before)), 0);
	atomic_store(&stop, 0);
	pthread_barrier_init(&started, NULL, BUSY + 1);
	for (int i = 0; i < BUSY; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, busy,
					    (void *)(uintptr_t)i), 0);
	pthread_barrier_wait(&started);
	cr_assert_eq(mtalloc_stats_get(&st, sizeof(st)), 0);
	/* the control for the child's check: here every thread has its own */
	cr_assert_geq(st.arenas_in_use, before.arenas_in_use + BUSY,
		      "arenas_in_use=%u", st.arenas_in_use);

	int failures = 0;
	const char *first = NULL;
	for (int i = 0; i < FORKS; i++) {
		pid_t pid = fork();
		cr_assert_geq(pid, 0, "fork failed");
		if (pid == 0)
			child();
		int status = wait_for(pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			failures++;
			if (!first)
				first = strdup(explain(status));
		}
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < BUSY; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(failures, 0, "%d of %d children failed; first: %s",
		     failures, FORKS, first);
	/* the parent is unharmed */
	void *p = malloc(1000);
	cr_assert_not_null(p);
	free(p);
	cr_assert_eq(mtalloc_stats_get(&st, sizeof(st)), 0);
	cr_assert_eq(st.threads_alive, before.threads_alive);
}

Test(fork, child_of_a_single_threaded_parent_keeps_working, .timeout = 60)
{
	for (int i = 0; i < FORKS; i++) {
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0)
			child();
		int status = wait_for(pid);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "fork %d: %s", i, explain(status));
	}
}
