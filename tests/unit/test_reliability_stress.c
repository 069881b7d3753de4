/* Stress: the tests/stress programs run preloaded with sample:all, each
 * under a watchdog.  After every run: no crash, no hang, the program's own
 * checksums intact (it exits 3 otherwise), and the shards account for every
 * allocation and free it made: per process, the MT_REC_ALLOC records in
 * the program's size band equal its allocations and the MT_REC_FREE
 * records of those equal its frees, with no chunk lost, no record dropped,
 * no free without its allocation, and every shard ended.
 *
 * MTALLOC_STRESS scales the runs: 1 (make check) is small; 10 (make
 * check-stress) reaches the figures: 256 threads passing objects,
 * 100,000 short-lived threads, a fork storm of 258 processes, 2,000
 * dlopen/dlclose cycles, 64 C++ threads. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "rlutil.h"

#define BAND_LO 3000
#define BAND_HI 4000

/* Runs a stress program with sample:all into dir; returns its output. */
static struct tu_proc run_stress(const char *dir, const char *const *argv,
				 unsigned timeout_s, const char *extra)
{
	char *env;
	struct tu_proc p;

	cr_assert(asprintf(&env, "MTALLOC=dir:%s,sample:all%s%s", dir,
			   extra ? "," : "", extra ? extra : "") > 0);
	const char *envv[] = { env, NULL };
	struct rl_spawn s = { .argv = argv, .env = envv, .preload = 1,
			      .timeout_s = timeout_s };
	int rc = rl_run(&s, &p);
	cr_assert_neq(rc, -1, "cannot start %s", argv[0]);
	cr_assert_neq(rc, 1, "%s %s: hung for %u s (killed)\nstderr:\n%.2000s",
		      argv[0], argv[1], timeout_s, p.err);
	cr_assert(tu_exited_ok(&p), "%s %s: %s (3: a checksum failed)\nstderr:\n%.2000s",
		  argv[0], argv[1], tu_status_str(p.status), p.err);
	free(env);
	return p;
}

/* Every process's truth against its shards. */
static void check_accounts(const char *dir, const char *out, size_t want_procs)
{
	size_t n;
	struct rl_truth *t = rl_truths(out, &n);
	struct rl_acct a;

	cr_assert_eq(n, want_procs, "%zu truth lines, want %zu:\n%.2000s", n,
		     want_procs, out);
	rl_account(dir, BAND_LO, BAND_HI, &a);
	cr_expect_eq(a.bad_files, 0, "%llu unreadable shards",
		     (unsigned long long)a.bad_files);
	for (size_t i = 0; i < n; i++) {
		struct rl_proc *p = rl_proc_of(&a, (uint64_t)t[i].pid);
		cr_assert(p, "no shard of process %ld", t[i].pid);
		cr_expect_eq(p->allocs, (uint64_t)t[i].allocs,
			     "pid %ld: %llu alloc records, the program made %ld",
			     t[i].pid, (unsigned long long)p->allocs, t[i].allocs);
		cr_expect_eq(p->frees, (uint64_t)t[i].frees,
			     "pid %ld: %llu free records, the program freed %ld",
			     t[i].pid, (unsigned long long)p->frees, t[i].frees);
		cr_expect_eq(p->inherited, (uint64_t)t[i].inherited,
			     "pid %ld: %llu frees of inherited objects, want %ld",
			     t[i].pid, (unsigned long long)p->inherited, t[i].inherited);
		cr_expect_eq(p->unmatched, 0, "pid %ld: %llu frees without an allocation",
			     t[i].pid, (unsigned long long)p->unmatched);
		cr_expect_eq(p->dup_seq, 0, "pid %ld: %llu duplicate seqs", t[i].pid,
			     (unsigned long long)p->dup_seq);
		cr_expect_eq(p->dropped, 0, "pid %ld: %llu records dropped", t[i].pid,
			     (unsigned long long)p->dropped);
		cr_expect_eq(p->corrupt + p->torn + p->missing + p->malformed, 0,
			     "pid %ld: damage: %llu corrupt, %llu torn, %llu missing, %llu malformed",
			     t[i].pid, (unsigned long long)p->corrupt,
			     (unsigned long long)p->torn, (unsigned long long)p->missing,
			     (unsigned long long)p->malformed);
		cr_expect_eq(p->ends, p->shards, "pid %ld: %llu of %llu shards ended",
			     t[i].pid, (unsigned long long)p->ends,
			     (unsigned long long)p->shards);
	}
	rl_acct_free(&a);
	free(t);
}

static char *arg(long v)
{
	char *s;
	cr_assert(asprintf(&s, "%ld", v) > 0);
	return s;
}

Test(stress, threads_passing_objects_are_all_accounted_for, .timeout = 1800)
{
	unsigned k = rl_scale();
	long threads = k >= 10 ? 256 : 32, iters = 300L * k;
	char *dir = tu_tmpdir(), *prog = tu_built("tests/stress/stress");
	char *a1 = arg(threads), *a2 = arg(iters);
	const char *argv[] = { prog, "pass", a1, a2, NULL };
	struct tu_proc p = run_stress(dir, argv, 60 + 30 * k, NULL);

	check_accounts(dir, p.out, 1);
	fprintf(stderr, "stress pass: %ld threads x %ld iterations\n", threads, iters);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir), free(prog), free(a1), free(a2);
}

Test(stress, short_lived_threads_are_all_accounted_for, .timeout = 1800)
{
	unsigned k = rl_scale();
	long threads = 10000L * k;
	char *dir = tu_tmpdir(), *prog = tu_built("tests/stress/stress");
	char *a1 = arg(threads);
	const char *argv[] = { prog, "churn", a1, "64", NULL };
	struct tu_proc p = run_stress(dir, argv, 60 + 60 * k, NULL);
	size_t n;
	struct rl_truth *t = rl_truths(p.out, &n);

	cr_assert_eq(n, 1);
	cr_expect_eq(t[0].threads, threads);
	check_accounts(dir, p.out, 1);
	/* one shard per thread that sampled, the main thread's included */
	cr_expect_geq(rl_count_shards(dir), (size_t)threads);
	fprintf(stderr, "stress churn: %ld threads, %zu shards\n", threads,
		rl_count_shards(dir));
	free(t);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir), free(prog), free(a1);
}

Test(stress, fork_storms_from_threaded_parents_are_all_accounted_for, .timeout = 1800)
{
	unsigned k = rl_scale();
	/* width^1 + ... + width^depth children, each with 2 busy threads */
	int depth = k >= 10 ? 3 : 2, width = k >= 10 ? 6 : 3;
	char *dir = tu_tmpdir(), *prog = tu_built("tests/stress/stress");
	char *a1 = arg(depth), *a2 = arg(width);
	const char *argv[] = { prog, "fork", a1, a2, NULL };
	struct tu_proc p = run_stress(dir, argv, 60 + 30 * k, NULL);
	size_t procs = 1, level = 1;

	for (int d = 0; d < depth; d++)
		procs += (level *= (size_t)width);
	check_accounts(dir, p.out, procs);
	fprintf(stderr, "stress fork: %zu processes (%zu forks)\n", procs, procs - 1);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir), free(prog), free(a1), free(a2);
}

Test(stress, dlopen_dlclose_loops_are_all_accounted_for, .timeout = 1800)
{
	unsigned k = rl_scale();
	long iters = 100L * k;
	char *dir = tu_tmpdir(), *prog = tu_built("tests/stress/stress");
	char *lib = tu_built("tests/stress/.libs/libstress.so");
	char *a1 = arg(iters);
	const char *argv[] = { prog, "dlopen", a1, lib, NULL };
	struct tu_proc p = run_stress(dir, argv, 60 + 30 * k, NULL);

	check_accounts(dir, p.out, 1);
	fprintf(stderr, "stress dlopen: 2 threads x %ld dlopen/dlclose\n", iters);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir), free(prog), free(lib), free(a1);
}

Test(stress, cxx_threads_mixing_new_delete_and_malloc_are_all_accounted_for,
     .timeout = 1800)
{
	unsigned k = rl_scale();
	long threads = k >= 10 ? 64 : 8, iters = 500L * k;
	char *dir = tu_tmpdir(), *prog = tu_built("tests/stress/stress_cxx");
	char *a1 = arg(threads), *a2 = arg(iters);
	const char *argv[] = { prog, a1, a2, NULL };
	struct tu_proc p = run_stress(dir, argv, 60 + 30 * k, NULL);

	check_accounts(dir, p.out, 1);
	fprintf(stderr, "stress cxx: %ld threads x %ld iterations\n", threads, iters);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir), free(prog), free(a1), free(a2);
}
