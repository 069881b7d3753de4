/* Hostile environments: a set-user-ID or set-group-ID program ignores
 * MTALLOC and writes no shards; shard files never follow a symbolic link
 * nor overwrite a file planted where the next shard goes; a shard
 * directory planted as a symbolic link is not followed; files are 0600 and
 * directories 0700 whatever the umask; and a dir: with %p cannot be made
 * to escape the configured directory through "..".  The program is
 * tests/reliab/secprog (linked with -lmtalloc).  Tests that need root (a
 * set-user-ID copy owned by root, setpriv to drop to nobody) skip with a
 * message without it. */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rlutil.h"

#define NOBODY 65534

/* Every *.mts file under root, as one string of paths ("\n" after each). */
static char found[1 << 16];

static int note_shard(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
	size_t len = strlen(path);

	(void)sb, (void)f;
	if (flag == FTW_F && len > 4 && !strcmp(path + len - 4, ".mts") &&
	    strlen(found) + len + 2 < sizeof(found)) {
		strcat(found, path);
		strcat(found, "\n");
	}
	return 0;
}

static const char *shards_under(const char *root)
{
	found[0] = '\0';
	nftw(root, note_shard, 16, FTW_PHYS);
	return found;
}

/* ---- set-user-ID and set-group-ID ---- */

static void copy_file(const char *from, const char *to, mode_t mode)
{
	size_t len;
	char *data = tu_read_file(from, &len);

	cr_assert(data, "%s: %s", from, strerror(errno));
	tu_write_file(to, data, len);
	cr_assert_eq(chown(to, 0, 0), 0);
	cr_assert_eq(chmod(to, mode), 0, "chmod %s: %s", to, strerror(errno));
	free(data);
}

/* Runs prog as nobody in the world-writable directory work, with
 * MTALLOC=dir:work/shards,sample:all; returns its output. */
static struct tu_proc run_as_nobody(const char *prog, const char *work)
{
	char *env, *shards = tu_path(work, "shards");
	struct tu_proc p;

	cr_assert(asprintf(&env, "MTALLOC=dir:%s,sample:all", shards) > 0);
	const char *argv[] = { "setpriv", "--reuid=65534", "--regid=65534",
			       "--clear-groups", "--", prog, NULL };
	const char *envv[] = { env, NULL };
	struct tu_spawn s = { .argv = argv, .env = envv, .cwd = work };
	cr_assert_eq(tu_run(&s, &p), 0);
	cr_assert(tu_exited_ok(&p), "%s: %s\n%s", prog, tu_status_str(p.status), p.err);
	free(env);
	free(shards);
	return p;
}

static void privileged_program_writes_no_shards(mode_t mode, const char *which)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to make a %s program owned by root", which);
	if (!tu_have_program("setpriv"))
		cr_skip_test("needs setpriv (util-linux) to run a program as nobody");
	char *dir = tu_tmpdir(), *prog = tu_path(dir, "secprog");
	char *work = tu_path(dir, "work"), *plain = tu_path(dir, "secprog-plain");
	char *built = tu_built("tests/reliab/secprog");

	cr_assert_eq(chmod(dir, 0755), 0);
	cr_assert_eq(mkdir(work, 0777), 0);
	cr_assert_eq(chmod(work, 0777), 0);
	copy_file(built, prog, mode);
	copy_file(built, plain, 0755);

	/* the same program without the bit: MTALLOC is obeyed */
	struct tu_proc p = run_as_nobody(plain, work);
	cr_assert(strstr(shards_under(work), "/shards/"),
		  "control run wrote no shard under %s/shards:\n%s", work, p.err);
	tu_proc_free(&p);
	tu_rmtree(work);
	cr_assert_eq(mkdir(work, 0777), 0);
	cr_assert_eq(chmod(work, 0777), 0);

	p = run_as_nobody(prog, work);
	int uid = -1, euid = -1, gid = -1, egid = -1;
	sscanf(p.out, "uid %d euid %d gid %d egid %d", &uid, &euid, &gid, &egid);
	if (mode & S_ISUID && euid != 0)
		cr_skip_test("the set-user-ID bit had no effect (nosuid mount?): %s", p.out);
	if (mode & S_ISGID && egid != 0)
		cr_skip_test("the set-group-ID bit had no effect (nosuid mount?): %s", p.out);
	cr_assert_eq(uid, NOBODY, "%s", p.out);
	/* neither MTALLOC's dir: nor the default mtalloc.out in its cwd */
	const char *s = shards_under(work);
	cr_expect_str_eq(s, "", "a %s program wrote shards:\n%s", which, s);
	struct stat sb;
	cr_expect_neq(stat(tu_path(work, "mtalloc.out"), &sb), 0,
		      "a %s program created mtalloc.out in its working directory", which);
	cr_expect_neq(stat(tu_path(work, "shards"), &sb), 0,
		      "a %s program obeyed MTALLOC's dir:", which);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(built), free(plain), free(work), free(prog), free(dir);
}

Test(security, a_setuid_program_ignores_MTALLOC_and_writes_no_shards, .timeout = 60)
{
	privileged_program_writes_no_shards(04755, "set-user-ID");
}

Test(security, a_setgid_program_ignores_MTALLOC_and_writes_no_shards, .timeout = 60)
{
	privileged_program_writes_no_shards(02755, "set-group-ID");
}

/* ---- planted files ---- */

struct stopped {
	pid_t pid;
	int out;
	char *exe; /* basename of the shards */
};

/* Starts secprog with MTALLOC=dir:<dir>,<opts> and waits until it has
 * stopped itself (before any shard is written). */
static struct stopped start_stopped(const char *dir, const char *opts, void (*hook)(void *))
{
	char *prog = tu_built("tests/reliab/secprog"), *env;
	struct stopped s;
	int st;

	cr_assert(asprintf(&env, "MTALLOC=dir:%s,%s", dir, opts) > 0);
	const char *argv[] = { prog, "stop", NULL };
	const char *envv[] = { env, NULL };
	struct rl_spawn sp = { .argv = argv, .env = envv, .hook = hook };
	s.pid = rl_start(&sp, -1, -1);
	cr_assert(s.pid > 0);
	cr_assert_eq(waitpid(s.pid, &st, WUNTRACED), s.pid);
	cr_assert(WIFSTOPPED(st), "%s", tu_status_str(st));
	s.exe = strdup("secprog");
	free(env);
	free(prog);
	return s;
}

static void finish(struct stopped *s)
{
	int st;

	kill(s->pid, SIGCONT);
	cr_assert_eq(waitpid(s->pid, &st, 0), s->pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", tu_status_str(st));
	free(s->exe);
}

static char *shard_name(const struct stopped *s, unsigned n)
{
	char *name;

	cr_assert(asprintf(&name, "%s.%d.%d.%u.mts", s->exe, (int)s->pid, (int)s->pid, n) > 0);
	return name;
}

Test(security, a_planted_symlink_or_file_is_never_written_through, .timeout = 60)
{
	char *base = tu_tmpdir(), *dir = tu_path(base, "shards");
	char *victim = tu_path(base, "victim"), *other = NULL;
	struct stat before, vb, after;

	cr_assert_eq(mkdir(dir, 0700), 0);
	tu_write_file(victim, "precious\n", 9);
	cr_assert_eq(stat(victim, &vb), 0);
	struct stopped s = start_stopped(dir, "sample:all", NULL);
	/* the names the main thread's shards would take first */
	char *n0 = shard_name(&s, 0), *n1 = shard_name(&s, 1);
	char *p0 = tu_path(dir, n0), *p1 = tu_path(dir, n1);
	cr_assert_eq(symlink(victim, p0), 0);
	tu_write_file(p1, "existing\n", 9);
	cr_assert_eq(stat(p1, &before), 0);
	sleep(1); /* a write would show in the mtimes */
	finish(&s);

	size_t len;
	char *v = tu_read_file(victim, &len);
	cr_expect(v && len == 9 && !memcmp(v, "precious\n", 9), "the link's target changed");
	cr_assert_eq(stat(victim, &after), 0);
	cr_expect_eq(after.st_mtime, vb.st_mtime);
	free(v);
	struct stat ls;
	cr_expect(lstat(p0, &ls) == 0 && S_ISLNK(ls.st_mode), "the planted link was replaced");
	v = tu_read_file(p1, &len);
	cr_expect(v && len == 9 && !memcmp(v, "existing\n", 9), "the planted file changed");
	cr_assert_eq(stat(p1, &after), 0);
	cr_expect_eq(after.st_mtime, before.st_mtime);
	cr_expect_eq(after.st_ino, before.st_ino);
	free(v);
	/* the shard went under another name, and reads back */
	DIR *d = opendir(dir);
	struct dirent *e;
	int shards = 0;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".mts") && strcmp(e->d_name, n0) && strcmp(e->d_name, n1)) {
			struct mt_shard_reader *r;
			other = tu_path(dir, e->d_name);
			cr_assert_eq(mt_shard_reader_new(&r), 0);
			cr_expect_eq(mt_shard_open(r, other), 0, "%s: %s", other, mt_shard_error(r));
			mt_shard_reader_free(r);
			shards++;
			free(other);
		}
	closedir(d);
	cr_expect_geq(shards, 1, "no shard written beside the planted names");
	tu_rmtree(base);
	free(n0), free(n1), free(p0), free(p1), free(victim), free(dir), free(base);
}

Test(security, a_shard_directory_planted_as_a_symlink_is_not_followed, .timeout = 60)
{
	char *base = tu_tmpdir(), *target = tu_path(base, "elsewhere");
	char *conf = tu_path(base, "prof.%p"), *planted;

	cr_assert_eq(mkdir(target, 0700), 0);
	struct stopped s = start_stopped(conf, "sample:all", NULL);
	cr_assert(asprintf(&planted, "%s/prof.%d", base, (int)s.pid) > 0);
	/* another user's link where this process's directory will be */
	cr_assert_eq(symlink(target, planted), 0);
	finish(&s);
	const char *f = shards_under(target);
	cr_expect_str_eq(f, "", "shards written through the planted link %s -> %s:\n%s",
			 planted, target, f);
	tu_rmtree(base);
	free(planted), free(conf), free(target), free(base);
}

static void umask0(void *arg)
{
	(void)arg;
	umask(0);
}

Test(security, shards_are_0600_and_directories_0700_whatever_the_umask, .timeout = 60)
{
	char *base = tu_tmpdir(), *top = tu_path(base, "new"), *dir = tu_path(top, "deeper");
	struct stat sb;

	struct stopped s = start_stopped(dir, "sample:all", umask0);
	finish(&s);
	cr_assert_eq(stat(top, &sb), 0, "%s was not created", top);
	cr_expect_eq(sb.st_mode & 07777, 0700, "%s: mode %o", top, sb.st_mode & 07777);
	cr_assert_eq(stat(dir, &sb), 0);
	cr_expect_eq(sb.st_mode & 07777, 0700, "%s: mode %o", dir, sb.st_mode & 07777);
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".mts")) {
			char *p = tu_path(dir, e->d_name);
			cr_assert_eq(lstat(p, &sb), 0);
			cr_expect(S_ISREG(sb.st_mode));
			cr_expect_eq(sb.st_mode & 07777, 0600, "%s: mode %o", p, sb.st_mode & 07777);
			n++;
			free(p);
		}
	closedir(d);
	cr_expect_geq(n, 1);
	tu_rmtree(base);
	free(dir), free(top), free(base);
}

/* dir: is at most 1023 bytes, and so is its expansion: a %p that makes
 * the path longer must not cut it where the rest becomes "..".  The
 * configured directory is PAD/%p/..xx (a directory named "..xx" inside the
 * process's own); cut by the expansion, it would read PAD/<pid>/.. = PAD. */
Test(security, a_long_dir_with_percent_p_cannot_escape_through_dotdot, .timeout = 60)
{
	char *base = tu_tmpdir(), *pad = NULL, *conf = NULL;
	int digits = snprintf(NULL, 0, "%d", (int)getpid());
	int tries;

	for (tries = 0; tries < 5; tries++) {
		int grow = digits - 2; /* bytes %p adds */
		size_t len;
		free(pad);
		free(conf);
		/* PAD: base/aaa.../aaa... of the right length */
		size_t tail = 6 + (size_t)grow; /* "/%p/.." and grow bytes */
		size_t want = 1023 - tail;
		pad = calloc(1, want + 1);
		strcpy(pad, base);
		len = strlen(pad);
		while (len < want) {
			size_t n = want - len - 1 > 200 ? 200 : want - len - 1;
			if (n == 0) { /* one byte short of a component: lengthen the last */
				pad[len++] = 'a';
				continue;
			}
			pad[len++] = '/';
			memset(pad + len, 'a', n);
			len += n;
		}
		pad[len] = '\0';
		cr_assert(asprintf(&conf, "%s/%%p/..%.*s", pad, grow, "xxxxxxxx") > 0);
		cr_assert_eq(strlen(conf), 1023, "%zu", strlen(conf));
		struct stopped s = start_stopped(conf, "sample:all", NULL);
		int child_digits = snprintf(NULL, 0, "%d", (int)s.pid);
		finish(&s);
		if (child_digits == digits)
			break;
		digits = child_digits; /* the pid grew a digit: again */
		tu_rmtree(base);
		mkdir(base, 0700);
	}
	cr_assert_lt(tries, 5);
	/* any shard must lie inside PAD/<pid>/, never in PAD itself */
	DIR *d = opendir(pad);
	struct dirent *e;
	while (d && (e = readdir(d)))
		cr_expect(!strstr(e->d_name, ".mts"),
			  "shard %s escaped to the parent of the configured directory "
			  "(dir: of %zu bytes ending in \"%s\", cut by the %%p expansion)",
			  e->d_name, strlen(conf), strrchr(conf, '%'));
	if (d)
		closedir(d);
	tu_rmtree(base);
	free(pad), free(conf), free(base);
}

/* A malformed option is reported on one line: control characters from the
 * environment must not start lines of their own (a forged "mtalloc: ..."
 * line would read like the library's). */
Test(security, a_hostile_MTALLOC_cannot_forge_lines_on_stderr, .timeout = 60)
{
	char *dir = tu_tmpdir(), *prog = tu_built("tests/reliab/secprog"), *env;
	struct tu_proc p;

	cr_assert(asprintf(&env, "MTALLOC=dir:%s,seed:1\nmtalloc: 0 sampled records could "
			   "not be written\r", dir) > 0);
	const char *argv[] = { prog, NULL };
	const char *envv[] = { env, NULL };
	struct tu_spawn s = { .argv = argv, .env = envv };
	cr_assert_eq(tu_run(&s, &p), 0);
	cr_assert(tu_exited_ok(&p), "%s", tu_status_str(p.status));
	cr_expect_eq(tu_count_lines(p.err), 1, "one bad option, %zu lines:\n%s",
		     tu_count_lines(p.err), p.err);
	cr_expect(!strchr(p.err, '\r'), "a carriage return reached stderr");
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(env), free(prog), free(dir);
}
