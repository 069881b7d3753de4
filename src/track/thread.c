/* The thread lifecycle: lazy process initialisation, thread set-up on the
 * first allocation, thread exit, fork, and the exact counters. */
#include "config.h"

#include "track.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "mtalloc.h"

__thread struct mt_tls mt_tls __attribute__((tls_model("initial-exec")));

/* A program may compile options in: const char *mtalloc_conf = "...". */
extern const char *mtalloc_conf __attribute__((weak));

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static bool have_key;
static struct mt_conf conf;

/* Registry of the live threads' state, for process-wide figures. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mt_tls *reg_head;
static uint32_t reg_count;             /* live threads (count) */
static struct mtalloc_counts exited;   /* counts of threads gone */

static void thread_exit(void *arg);
static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

static void process_init(void)
{
	mt_conf_default(&conf);
	if (&mtalloc_conf && mtalloc_conf)
		mt_conf_parse(&conf, mtalloc_conf, "mtalloc_conf");
	mt_conf_parse(&conf, secure_getenv("MTALLOC"), "MTALLOC");
	mt_backend_init(&conf);
	have_key = pthread_key_create(&key, thread_exit) == 0;
	if (!have_key)
		mt_log("no thread key left: thread exits will not be seen");
	if (pthread_atfork(fork_prepare, fork_parent, fork_child))
		mt_log("pthread_atfork failed: fork may lose arena slots");
}

/* Adds the frees and bytes of thread t (allocation counts come from the
 * arenas, see thread_allocs). */
static void add_counts(struct mtalloc_counts *sum, const struct mt_tls *t)
{
	sum->frees += t->nfree;
	if (t->je_allocated) {
		sum->bytes_allocated += *t->je_allocated;
		sum->bytes_freed += *t->je_deallocated;
	}
}

static void reg_insert(struct mt_tls *t)
{
	pthread_mutex_lock(&reg_lock);
	t->prev = NULL;
	t->next = reg_head;
	if (reg_head)
		reg_head->prev = t;
	reg_head = t;
	reg_count++;
	pthread_mutex_unlock(&reg_lock);
}

static void reg_unlink(struct mt_tls *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		reg_head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->next = t->prev = NULL;
	reg_count--;
}

static void thread_setup(struct mt_tls *t)
{
	t->slot = mt_backend_thread_bind();
	t->req_base = 0;
	if (t->slot >= 0)
		mt_backend_requests(t->slot, &t->req_base);
	mt_backend_thread_counters(&t->je_allocated, &t->je_deallocated);
	if (have_key)
		pthread_setspecific(key, t); /* may calloc: guard is set */
	reg_insert(t);
	t->state = MT_THREAD_READY;
}

void mt_thread_slow(struct mt_tls *t)
{
	t->guard++;
	if (t->state == MT_THREAD_NEW) {
		pthread_once(&once, process_init);
		thread_setup(t);
	}
	t->guard--;
	/* No sampling yet: nothing else needs the slow path. */
	t->left = UINT64_MAX;
}

/* Key destructor: the thread is exiting.  Later allocations (other
 * libraries' TLS destructors) must still work: mark the thread finished so
 * they pass straight through, fold its counts into the process totals and
 * give its arena back. */
static void thread_exit(void *arg)
{
	struct mt_tls *t = arg;

	t->guard++;
	pthread_mutex_lock(&reg_lock);
	reg_unlink(t);
	add_counts(&exited, t);
	pthread_mutex_unlock(&reg_lock);
	mt_backend_thread_release(t->slot);
	t->slot = -1;
	t->nfree = 0;
	t->je_allocated = t->je_deallocated = NULL;
	t->state = MT_THREAD_FINISHED;
	t->left = UINT64_MAX;
	t->guard--;
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&reg_lock);
	mt_backend_fork_prepare();
}

static void fork_parent(void)
{
	mt_backend_fork_parent();
	pthread_mutex_unlock(&reg_lock);
}

static void fork_child(void)
{
	struct mt_tls *self = &mt_tls;

	pthread_mutex_init(&reg_lock, NULL);
	mt_backend_fork_child(self->state == MT_THREAD_READY ? self->slot : -1);
	/* The other threads do not exist in the child; their counts are part
	 * of the history the child inherits. */
	for (struct mt_tls *t = reg_head, *next; t; t = next) {
		next = t->next;
		if (t != self) {
			add_counts(&exited, t);
			reg_unlink(t);
		}
	}
}

void mt_thread_stats(struct mtalloc_stats *st)
{
	struct mt_tls *self = &mt_tls;
	unsigned created, in_use;

	memset(st, 0, sizeof(*st));
	self->guard++;
	if (self->state == MT_THREAD_READY) {
		uint64_t n = 0;
		add_counts(&st->thread, self);
		if (self->slot >= 0 && !mt_backend_requests(self->slot, &n))
			st->thread.allocs = n - self->req_base;
	}
	mt_backend_requests(-1, &st->process.allocs);
	pthread_mutex_lock(&reg_lock);
	st->process.frees = exited.frees;
	st->process.bytes_allocated = exited.bytes_allocated;
	st->process.bytes_freed = exited.bytes_freed;
	for (struct mt_tls *t = reg_head; t; t = t->next)
		add_counts(&st->process, t);
	st->threads_alive = reg_count;
	pthread_mutex_unlock(&reg_lock);
	mt_backend_process_bytes(&st->live_bytes, &st->active_bytes,
				 &st->resident_bytes, &st->mapped_bytes);
	mt_backend_arena_counts(&created, &in_use);
	st->arenas_created = created;
	st->arenas_in_use = in_use;
	self->guard--;
}
