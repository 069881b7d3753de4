/* Crash survival: tests/stress/stress crash runs preloaded with sample:all
 * and a 16 KiB buffer, and dies at a seeded random moment, killed with
 * SIGKILL from outside or by a SIGSEGV of its own, many times over.  After
 * every death, every chunk written before it reads back intact: no corrupt
 * chunk, no chunk missing in the middle, no malformed record; a torn chunk
 * only at the end of a file.  What was lost is measured against the counts
 * the program kept in shared memory: at most what one buffer holds per
 * thread (doc/reliability.md gives the figures).
 *
 * MTALLOC_STRESS scales the number of deaths: 10 of each kind in make
 * check, 200 of each in make check-stress (MTALLOC_STRESS=10). */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rlutil.h"

#define THREADS 4
#define BUFFER (16 << 10)
#define SEED 20240601u

static void no_core(void *arg)
{
	struct rlimit rl = { 0, 0 };

	(void)arg;
	setrlimit(RLIMIT_CORE, &rl);
}

struct loss {
	uint64_t deaths, chunks, torn, lost_max, records, empty_files, cut_first;
};

/* The band allocations each crash-<i> thread's shard holds. */
static void read_back(const char *dir, const uint64_t *made, struct loss *L,
		      unsigned seed)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct mt_shard_reader *r;
	uint64_t found[THREADS] = { 0 };

	cr_assert(d);
	cr_assert_eq(mt_shard_reader_new(&r), 0);
	while ((e = readdir(d))) {
		const struct mt_shard_record *rec;
		int who = -1, rc;
		if (!strstr(e->d_name, ".mts"))
			continue;
		char *path = tu_path(dir, e->d_name);
		rc = mt_shard_open(r, path);
		if (rc == -ENODATA) {
			/* created, killed before its first write */
			L->empty_files++;
			free(path);
			continue;
		}
		cr_assert_eq(rc, 0, "seed %u: %s: %s", seed, path, mt_shard_error(r));
		while ((rc = mt_shard_next(r, &rec)) == 0 && rec) {
			if (rec->kind == MT_REC_HEADER && rec->u.header.thread.ptr &&
			    !strncmp(rec->u.header.thread.ptr, "crash-", 6))
				who = atoi(rec->u.header.thread.ptr + 6);
			if (rec->kind == MT_REC_ALLOC && who >= 0 && who < THREADS &&
			    rec->u.alloc.size >= 3000 && rec->u.alloc.size < 4000)
				found[who]++;
			L->records++;
		}
		cr_assert_eq(rc, 0);
		const struct mt_shard_stats *st = mt_shard_stats(r);
		char why[512];
		mt_shard_describe(r, why, sizeof(why));
		cr_expect_eq(st->chunks_corrupt, 0, "seed %u: %s: %s", seed, path, why);
		cr_expect_eq(st->chunks_missing, 0, "seed %u: %s: %s", seed, path, why);
		cr_expect_eq(st->seq_backwards, 0, "seed %u: %s: %s", seed, path, why);
		cr_expect_eq(st->records_malformed, 0, "seed %u: %s: %s", seed, path, why);
		/* A file without its header is one whose first chunk was cut:
		 * nothing intact may be lost with it. */
		if (!st->header_seen) {
			cr_expect_eq(st->chunks_read, 0, "seed %u: %s: chunk 0 lost (%llu bytes): %s",
				     seed, path, (unsigned long long)st->file_bytes, why);
			fprintf(stderr, "seed %u: first chunk cut: %llu bytes, %s\n", seed,
				(unsigned long long)st->file_bytes, why[0] ? why : "no chunk");
			L->cut_first++;
		}
		if (st->torn_tail) {
			cr_expect_eq(st->torn_offset + st->torn_bytes, st->file_bytes);
			cr_expect(strstr(why, "torn"), "seed %u: %s", seed, why);
			L->torn++;
		}
		L->chunks += st->chunks_read;
		free(path);
	}
	closedir(d);
	mt_shard_reader_free(r);
	for (int i = 0; i < THREADS; i++) {
		/* the thread counts after its malloc returned: at most one more
		 * record than its count can be on disk */
		cr_expect_leq(found[i], made[i] + 1, "seed %u: thread %d: %llu records, %llu made",
			      seed, i, (unsigned long long)found[i], (unsigned long long)made[i]);
		uint64_t lost = made[i] > found[i] ? made[i] - found[i] : 0;
		if (lost > L->lost_max)
			L->lost_max = lost;
	}
}

static void die_many_times(int sig, unsigned deaths, struct loss *L)
{
	char *prog = tu_built("tests/stress/stress");
	char *base = tu_tmpdir();
	char *shm = tu_path(base, "counts");
	unsigned seed = SEED + (unsigned)sig;

	memset(L, 0, sizeof(*L));
	srand(seed);
	for (unsigned k = 0; k < deaths; k++, seed++) {
		char sub[32], *dir, *env, delay[32], nt[8];
		unsigned us = 2000 + (unsigned)(rand() % 150000); /* 2..152 ms */
		uint64_t made[THREADS];

		snprintf(sub, sizeof(sub), "run%u", k);
		dir = tu_path(base, sub);
		{
			char zero[64 * 8] = { 0 };
			tu_write_file(shm, zero, sizeof(zero));
		}
		cr_assert(asprintf(&env, "MTALLOC=dir:%s,sample:all,buffer:%u", dir, BUFFER) > 0);
		snprintf(delay, sizeof(delay), "%u", sig == SIGSEGV ? us : 0);
		snprintf(nt, sizeof(nt), "%d", THREADS);
		const char *argv[] = { prog, "crash", nt, shm, delay, NULL };
		const char *envv[] = { env, NULL };
		struct rl_spawn s = { .argv = argv, .env = envv, .preload = 1,
				      .hook = no_core };
		pid_t pid = rl_start(&s, -1, -1);
		int st;
		cr_assert(pid > 0);
		if (sig == SIGKILL) {
			usleep(us);
			kill(pid, SIGKILL);
		}
		/* SIGSEGV comes by itself; a watchdog for either */
		for (int t = 0; waitpid(pid, &st, WNOHANG) == 0; t++) {
			if (t > 30000) {
				kill(-pid, SIGKILL);
				waitpid(pid, &st, 0);
				cr_assert_fail("seed %u: the program did not die", seed);
			}
			usleep(1000);
		}
		kill(-pid, SIGKILL);
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == sig, "seed %u: %s", seed,
			  tu_status_str(st));
		size_t len;
		char *counts = tu_read_file(shm, &len);
		cr_assert(counts && len >= sizeof(made));
		memcpy(made, counts, sizeof(made));
		free(counts);
		struct stat sb;
		if (stat(dir, &sb) == 0)
			read_back(dir, made, L, seed);
		L->deaths++;
		tu_rmtree(dir);
		free(dir);
		free(env);
	}
	tu_rmtree(base);
	free(base);
	free(shm);
	free(prog);
}

static void report(const char *what, const struct loss *L)
{
	fprintf(stderr,
		"crash %s: %llu deaths, %llu chunks read intact, %llu torn tails, "
		"%llu files cut before their first write, %llu in it; lost at most %llu band "
		"allocation records of one thread (buffer %u bytes)\n",
		what, (unsigned long long)L->deaths, (unsigned long long)L->chunks,
		(unsigned long long)L->torn, (unsigned long long)L->empty_files,
		(unsigned long long)L->cut_first,
		(unsigned long long)L->lost_max, BUFFER);
}

/* A 16 KiB buffer holds at most 16384 / 14 records of the crash workload
 * (an alloc record is at least 14 bytes, a free record at least 8, and the
 * workload alternates them): so at most ~740 allocations of a thread are
 * in its buffer when it dies. */
#define LOST_MAX (BUFFER / (14 + 8) + 1)

Test(crash, sigkill_at_random_moments_keeps_every_chunk_written, .timeout = 3600)
{
	struct loss L;

	die_many_times(SIGKILL, 10 * (rl_scale() >= 10 ? 20 : 1), &L);
	report("SIGKILL", &L);
	cr_expect_gt(L.chunks, 0);
	cr_expect_leq(L.lost_max, LOST_MAX, "lost %llu records of one thread",
		      (unsigned long long)L.lost_max);
}

Test(crash, sigsegv_at_random_moments_keeps_every_chunk_written, .timeout = 3600)
{
	struct loss L;

	die_many_times(SIGSEGV, 10 * (rl_scale() >= 10 ? 20 : 1), &L);
	report("SIGSEGV", &L);
	cr_expect_gt(L.chunks, 0);
	cr_expect_leq(L.lost_max, LOST_MAX, "lost %llu records of one thread",
		      (unsigned long long)L.lost_max);
}
