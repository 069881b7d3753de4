/* allocprog: starts N threads that each allocate and then stay alive until
 * the main thread has read mtalloc's figures, and prints them:
 *
 *   allocprog threads N
 *   -> threads_alive=A arenas_created=C arenas_in_use=U
 *
 * It finds mtalloc_stats_get with dlsym, so that it runs under LD_PRELOAD
 * (exit 3 without mtalloc).  Built a second time as confprog, linked with
 * -lmtalloc and with options compiled in through mtalloc_conf. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtalloc.h"

#ifdef WITH_MTALLOC_CONF
const char *mtalloc_conf = WITH_MTALLOC_CONF;
#endif

static pthread_barrier_t allocated, release;

static void *worker(void *arg)
{
	char *p = malloc(100 + (size_t)(long)arg);

	if (p)
		memset(p, 1, 100);
	pthread_barrier_wait(&allocated);
	pthread_barrier_wait(&release);
	free(p);
	return p ? NULL : (void *)1;
}

int main(int argc, char **argv)
{
	int (*get)(struct mtalloc_stats *, size_t);
	struct mtalloc_stats st;
	unsigned n;
	pthread_t *th;
	int bad = 0;

	if (argc != 3 || strcmp(argv[1], "threads") != 0) {
		fprintf(stderr, "usage: allocprog threads N\n");
		return 2;
	}
	n = (unsigned)strtoul(argv[2], NULL, 10);
	*(void **)&get = dlsym(RTLD_DEFAULT, "mtalloc_stats_get");
	if (!get) {
		fprintf(stderr, "allocprog: mtalloc_stats_get not found: "
				"not running on mtalloc\n");
		return 3;
	}
	th = calloc(n, sizeof(*th));
	if (!th || pthread_barrier_init(&allocated, NULL, n + 1) ||
	    pthread_barrier_init(&release, NULL, n + 1))
		return 4;
	for (unsigned i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(long)i))
			return 4;
	pthread_barrier_wait(&allocated);
	if (get(&st, sizeof(st)))
		return 5;
	pthread_barrier_wait(&release);
	for (unsigned i = 0; i < n; i++) {
		void *r;
		pthread_join(th[i], &r);
		bad += r != NULL;
	}
	free(th);
	printf("threads_alive=%u arenas_created=%u arenas_in_use=%u\n",
	       st.threads_alive, st.arenas_created, st.arenas_in_use);
	return bad ? 6 : 0;
}
