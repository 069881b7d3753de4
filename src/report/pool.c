/* pool: a fixed set of worker threads and two FIFO task queues.  Urgent
 * tasks (decoding a batch of a shard) go before the others (merging a
 * process), and a thread that waits for a batch runs urgent tasks itself
 * (mt_pool_help), so that no number of waiting mergers can starve the
 * decoders they wait for. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "report/report.h"

struct task {
	mt_task_fn fn;
	void *arg;
	struct task *next;
};

struct queue {
	struct task *head, *tail;
};

struct mt_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;   /* a task was queued, or stop */
	pthread_cond_t idle;   /* pending reached 0 */
	struct queue q[2];     /* 0 urgent, 1 normal */
	size_t pending;        /* queued or running */
	bool stop;
	pthread_t *th;
	unsigned n;
};

static struct task *pop(struct mt_pool *p, bool urgent_only)
{
	for (int i = 0; i < (urgent_only ? 1 : 2); i++) {
		struct task *t = p->q[i].head;
		if (t) {
			p->q[i].head = t->next;
			if (!t->next)
				p->q[i].tail = NULL;
			return t;
		}
	}
	return NULL;
}

/* Runs t (lock held on entry and exit). */
static void run(struct mt_pool *p, struct task *t)
{
	pthread_mutex_unlock(&p->lock);
	t->fn(t->arg);
	free(t);
	pthread_mutex_lock(&p->lock);
	if (--p->pending == 0) {
		pthread_cond_broadcast(&p->idle);
		pthread_cond_broadcast(&p->work); /* a waiter in mt_pool_wait */
	}
}

static void *worker(void *arg)
{
	struct mt_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct task *t = pop(p, false);
		if (t) {
			run(p, t);
			continue;
		}
		if (p->stop)
			break;
		pthread_cond_wait(&p->work, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct mt_pool *mt_pool_new(unsigned workers)
{
	struct mt_pool *p = mt_xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->th = mt_xcalloc(workers ? workers : 1, sizeof(pthread_t));
	for (unsigned i = 0; i < workers; i++) {
		if (pthread_create(&p->th[p->n], NULL, worker, p))
			break; /* fewer workers: the waiting thread runs tasks */
		p->n++;
	}
	return p;
}

void mt_pool_submit(struct mt_pool *p, mt_task_fn fn, void *arg, bool urgent)
{
	struct task *t = mt_xmalloc(sizeof(*t));
	struct queue *q = &p->q[urgent ? 0 : 1];

	t->fn = fn;
	t->arg = arg;
	t->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (q->tail)
		q->tail->next = t;
	else
		q->head = t;
	q->tail = t;
	p->pending++;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
}

bool mt_pool_help(struct mt_pool *p)
{
	pthread_mutex_lock(&p->lock);
	struct task *t = pop(p, true);
	if (t)
		run(p, t);
	pthread_mutex_unlock(&p->lock);
	return t != NULL;
}

void mt_pool_wait(struct mt_pool *p)
{
	/* the waiting thread works like a worker until everything is done */
	pthread_mutex_lock(&p->lock);
	while (p->pending) {
		struct task *t = pop(p, false);
		if (t)
			run(p, t);
		else
			pthread_cond_wait(&p->work, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
}

void mt_pool_free(struct mt_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n; i++)
		pthread_join(p->th[i], NULL);
	free(p->th);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->idle);
	free(p);
}
