/* Resource faults: a full disk (ENOSPC on a small tmpfs), no file
 * descriptor left (EMFILE under RLIMIT_NOFILE), a shard directory removed
 * while the program runs (ENOENT), and no memory (ENOMEM under
 * RLIMIT_AS).  In every case the program's own allocations keep their
 * results (tests/stress/stress verifies a checksum of every object and
 * exits 0), the run goes on to its end, one line on stderr says what
 * failed, and the records that could not be written are counted: the exit
 * line "N sampled records could not be written" plus what the shards hold
 * and what was written reads back undamaged. */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rlutil.h"

static size_t count(const char *s, const char *what)
{
	size_t n = 0;

	for (; (s = strstr(s, what)); s++)
		n++;
	return n;
}

static long dropped_of(const char *err)
{
	const char *s = strstr(err, "sampled records could not be written");
	long n = -1;

	if (!s)
		return -1;
	while (s > err && s[-1] != '\n')
		s--;
	sscanf(s, "mtalloc: %ld sampled records", &n);
	return n;
}

/* Runs stress with sample:all into dir; checks that it ran to its end. */
static struct tu_proc run(const char *dir, const char *const *args,
			  const char *opts, void (*hook)(void *), void *arg,
			  const char *stop_env)
{
	char *prog = tu_built("tests/stress/stress"), *env;
	const char *argv[8] = { prog };
	struct tu_proc p;

	for (int i = 0; args[i] && i < 6; i++)
		argv[i + 1] = args[i];
	cr_assert(asprintf(&env, "MTALLOC=dir:%s,sample:all%s%s", dir, *opts ? "," : "",
			   opts) > 0);
	const char *envv[] = { env, stop_env, NULL };
	struct rl_spawn s = { .argv = argv, .env = envv, .preload = 1, .timeout_s = 120,
			      .hook = hook, .hook_arg = arg };
	cr_assert_eq(rl_run(&s, &p), 0, "stress %s hung", args[0]);
	cr_assert(tu_exited_ok(&p), "stress %s: %s (3: a checksum failed)\n%s", args[0],
		  tu_status_str(p.status), p.err);
	free(env);
	free(prog);
	return p;
}

/* One failure line naming the error, and the count of dropped records;
 * every allocation the program made is in a shard or counted as dropped. */
static void check_reported(const struct tu_proc *p, const char *dir, const char *error)
{
	size_t n;
	struct rl_truth *t = rl_truths(p->out, &n);
	long dropped = dropped_of(p->err);

	cr_expect_eq(count(p->err, "cannot write shard"), 1, "stderr:\n%s", p->err);
	cr_expect(strstr(p->err, error), "no '%s' in stderr:\n%s", error, p->err);
	cr_expect_gt(dropped, 0, "stderr:\n%s", p->err);
	cr_assert_eq(n, 1);
	struct rl_acct a;
	rl_account(dir, 3000, 4000, &a);
	struct rl_proc *pr = rl_proc_of(&a, (uint64_t)t[0].pid);
	uint64_t written = pr ? pr->allocs : 0;
	/* A thread whose writer failed stops sampling (doc/design.md,
	 * Failures): its later allocations are neither recorded nor counted
	 * as dropped, so the records cannot be held to the program's count
	 * here; only that nothing is invented. */
	cr_expect_leq(written, (uint64_t)t[0].allocs, "%llu allocations in shards, %ld made",
		      (unsigned long long)written, t[0].allocs);
	if (pr)
		cr_expect_eq(pr->corrupt + pr->missing + pr->malformed, 0,
			     "what was written is damaged");
	fprintf(stderr, "%s: %ld allocations, %llu in shards, %ld records dropped\n",
		error, t[0].allocs, (unsigned long long)written, dropped);
	rl_acct_free(&a);
	free(t);
}

Test(faults, a_full_disk_drops_records_and_the_program_runs_on, .timeout = 300)
{
	char *mnt = tu_tmpdir(), *dir = tu_path(mnt, "out");

	if (mount("mtalloc-test", mnt, "tmpfs", 0, "size=96k,mode=0700") != 0) {
		tu_rmtree(mnt);
		cr_skip_test("cannot mount a tmpfs (%s): needs root", strerror(errno));
	}
	const char *args[] = { "pass", "8", "2000", NULL };
	struct tu_proc p = run(dir, args, "buffer:16k", NULL, NULL, NULL);
	check_reported(&p, dir, "No space left on device");
	tu_proc_free(&p);
	umount2(mnt, MNT_DETACH);
	tu_rmtree(mnt);
	free(dir);
	free(mnt);
}

static void few_fds(void *arg)
{
	struct rlimit rl = { 4, 4 }; /* 0, 1, 2 and one for the loader */

	(void)arg;
	setrlimit(RLIMIT_NOFILE, &rl);
}

Test(faults, no_file_descriptor_left_drops_records_and_the_program_runs_on, .timeout = 300)
{
	char *dir = tu_tmpdir();
	const char *args[] = { "pass", "8", "500", NULL };
	struct tu_proc p = run(dir, args, "", few_fds, NULL, NULL);

	check_reported(&p, dir, "Too many open files");
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir);
}

Test(faults, a_directory_removed_while_running_is_reported_once, .timeout = 300)
{
	char *base = tu_tmpdir(), *dir = tu_path(base, "out");
	char *stop = tu_path(base, "stop"), *stop_env, *prog = tu_built("tests/stress/stress");
	char *env;

	cr_assert(asprintf(&stop_env, "STRESS_STOP=%s", stop) > 0);
	cr_assert(asprintf(&env, "MTALLOC=dir:%s,sample:all,buffer:16k", dir) > 0);
	const char *argv[] = { prog, "pass", "8", "0", NULL };
	const char *envv[] = { env, stop_env, NULL };
	struct rl_spawn s = { .argv = argv, .env = envv, .preload = 1 };
	char *err = tu_path(base, "stderr");
	int efd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	pid_t pid = rl_start(&s, -1, efd);
	int st, t;

	cr_assert(pid > 0);
	/* wait for shards, then take the directory away */
	for (t = 0; t < 10000 && rl_count_shards(dir) < 4; t++)
		usleep(1000);
	cr_assert_lt(t, 10000, "no shard appeared");
	tu_rmtree(dir);
	usleep(300 * 1000); /* the threads go on flushing into nothing */
	tu_write_file(stop, "", 0);
	for (t = 0; waitpid(pid, &st, WNOHANG) == 0; t++) {
		cr_assert_lt(t, 60000, "hung after its directory was removed");
		usleep(1000);
	}
	kill(-pid, 9);
	close(efd);
	char *text = tu_read_file(err, NULL);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s\n%s", tu_status_str(st), text);
	cr_expect_eq(count(text, "cannot write shard"), 1, "stderr:\n%s", text);
	cr_expect(strstr(text, "No such file or directory"), "stderr:\n%s", text);
	cr_expect_gt(dropped_of(text), 0, "stderr:\n%s", text);
	free(text);
	tu_rmtree(base);
	free(err), free(env), free(stop_env), free(stop), free(prog), free(dir), free(base);
}

static void little_memory(void *arg)
{
	struct rlimit rl = { (rlim_t)(uintptr_t)arg, (rlim_t)(uintptr_t)arg };

	setrlimit(RLIMIT_AS, &rl);
}

/* stress enomem allocates until malloc fails (NULL with ENOMEM), frees half
 * and starts over, three times; every block keeps its contents. */
static void out_of_memory(const char *opts, bool all)
{
	char *dir = tu_tmpdir();
	const char *args[] = { "enomem", "400", NULL };
	struct tu_proc p = run(dir, args, opts, little_memory,
			       (void *)(uintptr_t)(400u << 20), NULL);
	long failed = -1;
	size_t n;
	struct rl_truth *t = rl_truths(p.out, &n);
	const char *s = strstr(p.out, "enomem ");

	cr_assert(s && sscanf(s, "enomem %ld", &failed) == 1, "%s", p.out);
	cr_expect_gt(failed, 0, "malloc never failed");
	cr_assert_eq(n, 1);
	/* failed calls leave no record; every allocation that succeeded is
	 * in a shard or counted as dropped */
	struct rl_acct a;
	rl_account(dir, 3000, 4000, &a);
	struct rl_proc *pr = rl_proc_of(&a, (uint64_t)t[0].pid);
	long dropped = dropped_of(p.err);
	cr_assert(pr, "no shard");
	if (all)
		cr_expect_geq(pr->allocs + (uint64_t)(dropped > 0 ? dropped : 0), (uint64_t)t[0].allocs,
		      "%llu allocation records + %ld dropped < %ld made",
		      (unsigned long long)pr->allocs, dropped, t[0].allocs);
	cr_expect_eq(pr->corrupt + pr->missing + pr->malformed, 0);
	fprintf(stderr, "enomem (%s): %ld failed allocations, %ld made, %llu recorded\n",
		opts, failed, t[0].allocs, (unsigned long long)pr->allocs);
	rl_acct_free(&a);
	free(t);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir);
}

Test(faults, out_of_memory_fails_allocations_cleanly_and_the_program_runs_on,
     .timeout = 300)
{
	out_of_memory("sample:poisson", false);
}

Test(faults, out_of_memory_with_sample_all_keeps_every_record, .timeout = 300)
{
	out_of_memory("buffer:16k", true);
}
