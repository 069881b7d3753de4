/* The tracker's concurrent parts under ThreadSanitizer (make check-tsan):
 * per-thread writers with cross-thread frees, mtalloc_flush's flush of
 * every writer while their threads append, mtalloc_stats_get's walk of the
 * thread registry, thread exit giving arena slots back to the free list
 * and the next threads taking them, fork with threads running, and the
 * process-exit flush of threads still running.
 *
 * The library's sources are compiled into this program with
 * -fsanitize=thread, all but src/alloc/alloc.c: the exported malloc would
 * fight ThreadSanitizer's own.  The program drives what the entry points
 * would call (mt_thread_slow, mt_track_alloc, mt_track_free, the count
 * functions), with sample:all so that every allocation takes the tracked
 * path.  Exit status 0 and no report: pass (halt_on_error makes a report
 * fail it).
 *
 *   tsan_track DIR */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mtalloc.h"
#include "track/track.h"

static char conf[1200];

char *mt_tsan_secure_getenv(const char *name)
{
	if (!strcmp(name, "MTALLOC"))
		return conf;
	if (!strcmp(name, "LD_PRELOAD"))
		return (char *)"/vgpreload_tsan.so"; /* the range at 16 MiB */
	return getenv(name);
}

#define WAVES 6
#define PER_WAVE 6
#define OBJS 400

struct queue {
	pthread_mutex_t lock;
	void *item[64];
	int n;
};

static struct queue q[PER_WAVE];
static atomic_int stop_bg;

static void *take_one(struct queue *x)
{
	void *p = NULL;

	pthread_mutex_lock(&x->lock);
	if (x->n)
		p = x->item[--x->n];
	pthread_mutex_unlock(&x->lock);
	return p;
}

static void release(struct mt_tls *t, void *p)
{
	mt_thread_count_free(t, p);
	mt_track_free(t, p);
}

static void *alloc(struct mt_tls *t, size_t n)
{
	void *p = mt_track_alloc(t, n, 16, false, 1.0, true, NULL);

	if (!p) {
		fprintf(stderr, "tsan_track: the tracked arena refused %zu bytes\n", n);
		exit(2);
	}
	mt_thread_count_alloc(t, p);
	memset(p, 0x5a, n);
	return p;
}

static void *worker(void *arg)
{
	int me = (int)(intptr_t)arg;
	struct mt_tls *t = &mt_tls;

	mt_thread_slow(t); /* set up: arena slot, registry, thread key */
	for (int i = 0; i < OBJS; i++) {
		void *p = alloc(t, 64 + (size_t)(i % 50) * 16);
		struct queue *to = &q[(me + 1) % PER_WAVE];
		pthread_mutex_lock(&to->lock);
		if (to->n < 64) {
			to->item[to->n++] = p;
			p = NULL;
		}
		pthread_mutex_unlock(&to->lock);
		if (p)
			release(t, p);
		if ((p = take_one(&q[me])))
			release(t, p); /* allocated by another thread */
	}
	return NULL; /* the key destructor closes the shard, frees the slot */
}

static void *background(void *arg)
{
	struct mtalloc_stats st;

	(void)arg;
	while (!atomic_load(&stop_bg)) {
		mt_thread_flush_all();  /* mtalloc_flush */
		mt_thread_stats(&st);   /* mtalloc_stats_get */
		usleep(200);
	}
	return NULL;
}

static void *runner(void *arg)
{
	struct mt_tls *t = &mt_tls;

	(void)arg;
	mt_thread_slow(t);
	for (;;)
		release(t, alloc(t, 200));
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[PER_WAVE], bg, run[3];
	struct mtalloc_stats st;

	if (argc < 2)
		return 2;
	snprintf(conf, sizeof(conf), "sample:all,buffer:16k,timeline:1,unwind:fp,dir:%s", argv[1]);
	mt_thread_slow(&mt_tls);
	for (int i = 0; i < PER_WAVE; i++)
		pthread_mutex_init(&q[i].lock, NULL);
	pthread_create(&bg, NULL, background, NULL);
	for (int w = 0; w < WAVES; w++) {
		for (int i = 0; i < PER_WAVE; i++)
			pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
		for (int i = 0; i < PER_WAVE; i++)
			pthread_join(th[i], NULL);
		for (int i = 0; i < PER_WAVE; i++)
			for (void *p; (p = take_one(&q[i]));)
				release(&mt_tls, p);
		if (w == WAVES / 2) {
			/* fork with the flusher running */
			pid_t pid = fork();
			if (pid == 0) {
				void *p = alloc(&mt_tls, 100);
				release(&mt_tls, p);
				exit(0);
			}
			int status;
			waitpid(pid, &status, 0);
			if (!WIFEXITED(status) || WEXITSTATUS(status)) {
				fprintf(stderr, "tsan_track: child: status 0x%x\n", status);
				return 1;
			}
		}
	}
	atomic_store(&stop_bg, 1);
	pthread_join(bg, NULL);
	mt_thread_stats(&st);
	if (st.arenas_created > PER_WAVE + 4) {
		fprintf(stderr, "tsan_track: %u arenas for %d threads at once\n",
			st.arenas_created, PER_WAVE);
		return 1;
	}
	/* exit with threads running: the exit-time flush meets them */
	for (int i = 0; i < 3; i++)
		pthread_create(&run[i], NULL, runner, NULL);
	usleep(50 * 1000);
	printf("tsan_track: %d threads in %d waves, %u arenas; exiting with 3 running\n",
	       WAVES * PER_WAVE, WAVES, st.arenas_created);
	exit(0);
}
