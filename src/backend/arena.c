/* Per-thread arenas: a thread is bound to an arena of its own on its first
 * allocation and hands the index back when it exits, so the number of arenas
 * follows the number of threads alive at once, not the number ever made. */
#include "config.h"

#include "backend.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define SLOT_MAX 4087u /* jemalloc's limit (4095 in all) less its own */

struct slot {
	unsigned arena; /* jemalloc arena index */
	unsigned users; /* count of live threads bound to it */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[SLOT_MAX];
static unsigned nslots;          /* slots with an arena (count) */
static unsigned pending;         /* arenas being created outside the lock */
static unsigned free_list[SLOT_MAX];
static unsigned nfree;           /* entries in free_list */
static unsigned cap;             /* most arenas we create (count) */
static bool per_thread;
static size_t mib_thread_arena[2], mib_len_thread_arena = 2;

void mt_backend_init(const struct mt_conf *conf)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (ncpu < 1)
		ncpu = 1;
	per_thread = conf->arenas == MT_ARENAS_PER_THREAD;
	cap = conf->arena_cap ? conf->arena_cap : (unsigned)(4 * ncpu);
	if (cap < 8 && !conf->arena_cap)
		cap = 8;
	if (cap > SLOT_MAX)
		cap = SLOT_MAX;
	if (per_thread && mtje_mallctlnametomib("thread.arena", mib_thread_arena,
						&mib_len_thread_arena)) {
		mt_log("cannot bind threads to arenas; using shared arenas");
		per_thread = false;
	}
}

static int least_shared(void)
{
	int best = -1;

	for (unsigned i = 0; i < nslots; i++)
		if (best < 0 || slots[i].users < slots[best].users)
			best = (int)i;
	return best;
}

int mt_backend_thread_bind(void)
{
	int slot = -1;
	bool create = false;

	if (!per_thread)
		return -1;
	pthread_mutex_lock(&lock);
	if (nfree) {
		slot = (int)free_list[--nfree];
		slots[slot].users++;
	} else if (nslots + pending < cap) {
		pending++;
		create = true;
	} else {
		slot = least_shared();
		if (slot >= 0)
			slots[slot].users++;
	}
	pthread_mutex_unlock(&lock);

	if (create) {
		unsigned arena;
		size_t len = sizeof(arena);
		int err = mtje_mallctl("arenas.create", &arena, &len, NULL, 0);

		pthread_mutex_lock(&lock);
		pending--;
		if (err == 0 && nslots < SLOT_MAX) {
			slot = (int)nslots++;
			slots[slot].arena = arena;
			slots[slot].users = 1;
		} else {
			/* EAGAIN past jemalloc's arena limit: share instead. */
			cap = nslots;
			slot = least_shared();
			if (slot >= 0)
				slots[slot].users++;
		}
		pthread_mutex_unlock(&lock);
	}
	if (slot < 0)
		return -1;
	unsigned arena = slots[slot].arena; /* set once, never changes */
	if (mtje_mallctlbymib(mib_thread_arena, mib_len_thread_arena, NULL, NULL,
			      &arena, sizeof(arena))) {
		mt_backend_thread_release(slot);
		return -1;
	}
	return slot;
}

void mt_backend_thread_release(int slot)
{
	if (slot < 0)
		return;
	pthread_mutex_lock(&lock);
	MT_ASSERT(slots[slot].users > 0);
	if (slots[slot].users && --slots[slot].users == 0)
		free_list[nfree++] = (unsigned)slot;
	pthread_mutex_unlock(&lock);
}

void mt_backend_fork_prepare(void)
{
	pthread_mutex_lock(&lock);
}

void mt_backend_fork_parent(void)
{
	pthread_mutex_unlock(&lock);
}

void mt_backend_fork_child(int keep)
{
	pthread_mutex_init(&lock, NULL);
	/* Only the forking thread lives on in the child: every other slot is
	 * free again.  Arenas being created at fork time are lost (at most
	 * one per thread that was inside mt_backend_thread_bind). */
	pending = 0;
	nfree = 0;
	for (unsigned i = nslots; i-- > 0;) {
		slots[i].users = (int)i == keep ? 1 : 0;
		if ((int)i != keep)
			free_list[nfree++] = i;
	}
}

void mt_backend_set_cap(unsigned n)
{
	pthread_mutex_lock(&lock);
	cap = n < SLOT_MAX ? n : SLOT_MAX;
	pthread_mutex_unlock(&lock);
}

void mt_backend_arena_counts(unsigned *created, unsigned *in_use)
{
	unsigned used = 0;

	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < nslots; i++)
		used += slots[i].users > 0;
	*created = nslots;
	*in_use = used;
	pthread_mutex_unlock(&lock);
}
