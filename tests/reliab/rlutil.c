/* See rlutil.h. */
#include "config.h"

#include "rlutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

unsigned rl_scale(void)
{
	const char *s = getenv("MTALLOC_STRESS");
	long v = s ? strtol(s, NULL, 10) : 1;

	return v >= 1 ? (unsigned)v : 1;
}

static void child(const struct rl_spawn *s, pid_t parent, int out, int err)
{
	int in = open("/dev/null", O_RDONLY);

	setpgid(0, 0);
	tu_child_setup(parent, s->env, s->preload);
	if (out < 0)
		out = open("/dev/null", O_WRONLY);
	if (err < 0)
		err = open("/dev/null", O_WRONLY);
	if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(126);
	if (s->hook)
		s->hook(s->hook_arg);
	execvp(s->argv[0], (char *const *)s->argv);
	dprintf(2, "exec %s: %s\n", s->argv[0], strerror(errno));
	_exit(127);
}

pid_t rl_start(const struct rl_spawn *s, int out_fd, int err_fd)
{
	pid_t parent = getpid(), pid;

	if (s->preload)
		tu_lib();
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		child(s, parent, out_fd, err_fd);
	if (pid > 0)
		setpgid(pid, pid); /* also here: no race with a kill(-pid) */
	return pid;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int rl_run(const struct rl_spawn *s, struct tu_proc *p)
{
	int out = tu_scratch_fd(), err = tu_scratch_fd(), rc = -1;
	pid_t pid;
	double deadline;

	memset(p, 0, sizeof(*p));
	if (out < 0 || err < 0)
		goto out_close;
	pid = rl_start(s, out, err);
	if (pid < 0)
		goto out_close;
	deadline = now_s() + (s->timeout_s ? s->timeout_s : 60);
	rc = 0;
	for (;;) {
		pid_t w = waitpid(pid, &p->status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			rc = -1;
			break;
		}
		if (now_s() > deadline) {
			kill(-pid, SIGKILL);
			waitpid(pid, &p->status, 0);
			rc = 1;
			break;
		}
		usleep(5000);
	}
	kill(-pid, SIGKILL); /* stragglers of the group */
	p->out = tu_read_fd(out, &p->out_len);
	p->err = tu_read_fd(err, &p->err_len);
out_close:
	if (out >= 0)
		close(out);
	if (err >= 0)
		close(err);
	return rc;
}

struct rl_truth *rl_truths(const char *out, size_t *n)
{
	struct rl_truth *t = NULL;
	size_t cap = 0;

	*n = 0;
	for (const char *s = out; (s = strstr(s, "truth pid ")); s++) {
		struct rl_truth x;
		if (sscanf(s, "truth pid %ld allocs %ld frees %ld live %ld inherited %ld threads %ld",
			   &x.pid, &x.allocs, &x.frees, &x.live, &x.inherited, &x.threads) != 6)
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			t = realloc(t, cap * sizeof(*t));
			cr_assert(t);
		}
		t[(*n)++] = x;
	}
	return t;
}

/* ---- accounting ---- */

/* (pid, seq) -> size of the allocation, open addressing. */
struct seen {
	uint64_t pid, seq; /* pid 0: empty */
	uint64_t size;
};

struct table {
	struct seen *s;
	size_t mask, used;
};

static uint64_t hash2(uint64_t a, uint64_t b)
{
	uint64_t h = a * 0x9e3779b97f4a7c15ull ^ b;
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 29);
}

static struct seen *slot(struct table *t, uint64_t pid, uint64_t seq)
{
	for (size_t i = hash2(pid, seq) & t->mask;; i = (i + 1) & t->mask)
		if (!t->s[i].pid || (t->s[i].pid == pid && t->s[i].seq == seq))
			return &t->s[i];
}

static void grow_table(struct table *t)
{
	struct table n = { 0 };
	size_t slots = t->s ? 2 * (t->mask + 1) : 1 << 16;

	n.s = calloc(slots, sizeof(*n.s));
	cr_assert(n.s);
	n.mask = slots - 1;
	for (size_t i = 0; t->s && i <= t->mask; i++)
		if (t->s[i].pid) {
			*slot(&n, t->s[i].pid, t->s[i].seq) = t->s[i];
			n.used++;
		}
	free(t->s);
	*t = n;
}

struct pending_free {
	uint64_t pid, alloc_seq;
};

struct rl_proc *rl_proc_of(struct rl_acct *a, uint64_t pid)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->p[i].pid == pid)
			return &a->p[i];
	return NULL;
}

static struct rl_proc *proc_add(struct rl_acct *a, uint64_t pid)
{
	struct rl_proc *p = rl_proc_of(a, pid);

	if (p)
		return p;
	if (a->n == 0 || (a->n >= 16 && !(a->n & (a->n - 1)))) {
		a->p = realloc(a->p, (a->n ? 2 * a->n : 16) * sizeof(*a->p));
		cr_assert(a->p);
	}
	p = &a->p[a->n++];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	return p;
}

void rl_account(const char *dir, uint64_t lo, uint64_t hi, struct rl_acct *a)
{
	struct table t = { 0 };
	struct pending_free *pf = NULL;
	size_t npf = 0, cappf = 0;
	struct mt_shard_reader *r;
	DIR *d = opendir(dir);
	struct dirent *e;

	memset(a, 0, sizeof(*a));
	cr_assert(d, "%s: %s", dir, strerror(errno));
	cr_assert_eq(mt_shard_reader_new(&r), 0);
	grow_table(&t);
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		const struct mt_shard_record *rec;
		struct rl_proc *p = NULL;
		bool ended = false;

		if (len < 4 || strcmp(e->d_name + len - 4, ".mts"))
			continue;
		char *path = tu_path(dir, e->d_name);
		a->files++;
		if (mt_shard_open(r, path) < 0) {
			a->bad_files++;
			free(path);
			continue;
		}
		while (mt_shard_next(r, &rec) == 0 && rec) {
			if (rec->kind == MT_REC_HEADER && !p) {
				p = proc_add(a, rec->u.header.pid);
				p->ppid = rec->u.header.ppid;
				p->fork_seq = rec->u.header.fork_seq;
				p->shards++;
			}
			if (!p)
				continue; /* chunk 0 lost: cannot tell the process */
			switch (rec->kind) {
			case MT_REC_ALLOC: {
				if (t.used * 2 >= t.mask)
					grow_table(&t);
				struct seen *s = slot(&t, p->pid, rec->u.alloc.seq);
				if (s->pid) {
					p->dup_seq++;
					break;
				}
				s->pid = p->pid;
				s->seq = rec->u.alloc.seq;
				s->size = rec->u.alloc.size;
				t.used++;
				p->all_allocs++;
				if (rec->u.alloc.size >= lo && rec->u.alloc.size < hi)
					p->allocs++;
				break;
			}
			case MT_REC_FREE:
				if (npf == cappf) {
					cappf = cappf ? 2 * cappf : 4096;
					pf = realloc(pf, cappf * sizeof(*pf));
					cr_assert(pf);
				}
				pf[npf].pid = p->pid;
				pf[npf++].alloc_seq = rec->u.free.alloc_seq;
				break;
			case MT_REC_THREAD_EXIT:
				p->thread_exits++;
				break;
			case MT_REC_DROPPED:
				p->dropped += rec->u.dropped.records;
				break;
			case MT_REC_END:
				ended = true;
				break;
			default:
				break;
			}
		}
		if (p) {
			const struct mt_shard_stats *st = mt_shard_stats(r);
			p->ends += ended;
			p->chunks += st->chunks_read;
			p->corrupt += st->chunks_corrupt;
			p->torn += st->torn_tail;
			p->missing += st->chunks_missing;
			p->malformed += st->records_malformed;
		}
		free(path);
	}
	closedir(d);
	mt_shard_reader_free(r);
	/* frees: in the freeing process, or up its chain of parents */
	for (size_t i = 0; i < npf; i++) {
		struct rl_proc *p = rl_proc_of(a, pf[i].pid), *q = p;
		struct seen *s = slot(&t, q->pid, pf[i].alloc_seq);
		bool up = false;
		while (!s->pid && q->fork_seq && pf[i].alloc_seq <= q->fork_seq &&
		       (q = rl_proc_of(a, q->ppid))) {
			s = slot(&t, q->pid, pf[i].alloc_seq);
			up = true;
		}
		if (!s->pid) {
			p->unmatched++;
			continue;
		}
		if (s->size >= lo && s->size < hi) {
			p->frees++;
			p->inherited += up;
		}
	}
	free(pf);
	free(t.s);
}

void rl_acct_free(struct rl_acct *a)
{
	free(a->p);
	memset(a, 0, sizeof(*a));
}

size_t rl_count_shards(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		n += len >= 4 && !strcmp(e->d_name + len - 4, ".mts");
	}
	closedir(d);
	return n;
}
