/* Tracking: the shards written for tests/track/trace, read back with the
 * shard reader, against the truth the program prints. */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shard/reader.h"
#include "testutil.h"

/* ---- shards read back ---- */

struct alloc {
	uint64_t seq, size, stack;
	double weight; /* 1/p */
	uint64_t pc0;  /* innermost frame, 0 if unknown */
	uint64_t slack; /* bytes: usable size - size */
	uint64_t time_ns; /* CLOCK_MONOTONIC */
};

/* One size class's requests, as the shard's MT_REC_CLASSES says. */
struct class_req {
	uint64_t size, requests;
};

struct shard {
	uint64_t pid, ppid, tid, fork_seq;
	char thread[64];      /* last name seen */
	char end[32];         /* reason of the last END record */
	struct alloc *a;
	size_t na;
	uint64_t *free_seq;   /* alloc_seq of each free */
	size_t nf;
	struct event {        /* allocations and frees, in shard order */
		uint64_t seq, addr;
		uint64_t alloc_seq; /* a free's; 0 for an allocation */
	} *ev;
	size_t nev;
	struct mod { char path[512]; uint64_t base, size; } *m;
	size_t nm;
	uint64_t timeline_ns;  /* time of the last timeline point, 0 if none */
	double live_estimate;  /* bytes, at that point */
	uint64_t classes_ns;   /* time of the last MT_REC_CLASSES, 0 if none */
	struct class_req *classes;
	size_t nclasses;
	struct mt_shard_stats stats;
};

struct run {
	struct shard *s;
	size_t n;
};

struct stackmap {
	uint64_t id, pc0;
};

static void *grow(void *v, size_t n, size_t elem)
{
	if (n && (n & (n - 1)))
		return v; /* grow at powers of two */
	void *w = realloc(v, (n ? 2 * n : 16) * elem);
	cr_assert(w);
	return w;
}

static void read_shard(const char *path, struct shard *sh)
{
	struct mt_shard_reader *r;
	const struct mt_shard_record *rec;
	struct stackmap *stacks = NULL;
	size_t nstacks = 0;

	memset(sh, 0, sizeof(*sh));
	cr_assert_eq(mt_shard_reader_new(&r), 0);
	cr_assert_eq(mt_shard_open(r, path), 0, "%s: %s", path, mt_shard_error(r));
	while (mt_shard_next(r, &rec) == 0 && rec) {
		switch (rec->kind) {
		case MT_REC_HEADER:
			sh->pid = rec->u.header.pid;
			sh->ppid = rec->u.header.ppid;
			sh->tid = rec->u.header.tid;
			sh->fork_seq = rec->u.header.fork_seq;
			if (rec->u.header.thread.ptr)
				snprintf(sh->thread, sizeof(sh->thread), "%s",
					 rec->u.header.thread.ptr);
			break;
		case MT_REC_THREAD_NAME:
			snprintf(sh->thread, sizeof(sh->thread), "%s",
				 rec->u.thread_name.str.ptr);
			break;
		case MT_REC_END:
			snprintf(sh->end, sizeof(sh->end), "%s", rec->u.end.str.ptr);
			break;
		case MT_REC_MODULE:
			sh->m = grow(sh->m, sh->nm, sizeof(*sh->m));
			snprintf(sh->m[sh->nm].path, sizeof(sh->m[0].path), "%s",
				 rec->u.module.path.ptr ? rec->u.module.path.ptr : "");
			sh->m[sh->nm].base = rec->u.module.base;
			sh->m[sh->nm++].size = rec->u.module.size;
			break;
		case MT_REC_STACK:
			stacks = grow(stacks, nstacks, sizeof(*stacks));
			stacks[nstacks].id = rec->u.stack.id;
			stacks[nstacks++].pc0 = rec->u.stack.depth ? rec->u.stack.pcs[0] : 0;
			break;
		case MT_REC_TIMELINE:
			sh->timeline_ns = rec->u.timeline.time_ns;
			sh->live_estimate = rec->u.timeline.live_estimate;
			break;
		case MT_REC_CLASSES:
			sh->classes_ns = rec->u.classes.time_ns;
			sh->nclasses = rec->u.classes.n;
			free(sh->classes);
			sh->classes = calloc(sh->nclasses + 1, sizeof(*sh->classes));
			cr_assert(sh->classes);
			for (size_t i = 0; i < sh->nclasses; i++) {
				sh->classes[i].size = rec->u.classes.v[i].size;
				sh->classes[i].requests = rec->u.classes.v[i].requests;
			}
			break;
		case MT_REC_ALLOC: {
			struct alloc a = { rec->u.alloc.seq, rec->u.alloc.size,
					   rec->u.alloc.stack_id, 0, 0,
					   rec->u.alloc.slack,
					   rec->u.alloc.time_ns };
			cr_assert_eq(mt_shard_alloc_weight(mt_shard_header(r),
							   &rec->u.alloc, &a.weight), 0);
			for (size_t i = 0; i < nstacks; i++)
				if (stacks[i].id == a.stack)
					a.pc0 = stacks[i].pc0;
			sh->a = grow(sh->a, sh->na, sizeof(*sh->a));
			sh->a[sh->na++] = a;
			sh->ev = grow(sh->ev, sh->nev, sizeof(*sh->ev));
			sh->ev[sh->nev++] = (struct event){ a.seq, rec->u.alloc.addr, 0 };
			break;
		}
		case MT_REC_FREE:
			sh->free_seq = grow(sh->free_seq, sh->nf, sizeof(uint64_t));
			sh->free_seq[sh->nf++] = rec->u.free.alloc_seq;
			sh->ev = grow(sh->ev, sh->nev, sizeof(*sh->ev));
			sh->ev[sh->nev++] = (struct event){ rec->u.free.seq, rec->u.free.addr,
							    rec->u.free.alloc_seq };
			break;
		default:
			break;
		}
	}
	sh->stats = *mt_shard_stats(r);
	mt_shard_reader_free(r);
	free(stacks);
}

static void load(const char *dir, struct run *run)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	memset(run, 0, sizeof(*run));
	cr_assert(d, "no shard directory %s", dir);
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 4 || strcmp(e->d_name + len - 4, ".mts"))
			continue;
		char *path = tu_path(dir, e->d_name);
		run->s = grow(run->s, run->n, sizeof(*run->s));
		read_shard(path, &run->s[run->n++]);
		free(path);
	}
	closedir(d);
}

/* Frees what read_shard allocated for sh. */
static void shard_free(struct shard *sh)
{
	free(sh->a);
	free(sh->free_seq);
	free(sh->ev);
	free(sh->m);
	free(sh->classes);
}

static void unload(struct run *run)
{
	for (size_t i = 0; i < run->n; i++)
		shard_free(&run->s[i]);
	free(run->s);
}

/* The shard whose thread has this name, or NULL. */
static struct shard *by_name(struct run *run, const char *name)
{
	for (size_t i = 0; i < run->n; i++)
		if (!strcmp(run->s[i].thread, name))
			return &run->s[i];
	return NULL;
}

/* The shard holding the allocation of event `seq` (and its index). */
static struct shard *find_alloc(struct run *run, uint64_t seq, size_t *at)
{
	for (size_t i = 0; i < run->n; i++)
		for (size_t k = 0; k < run->s[i].na; k++)
			if (run->s[i].a[k].seq == seq) {
				*at = k;
				return &run->s[i];
			}
	return NULL;
}

static bool traced_size(uint64_t size)
{
	return size >= 1000 && size < 2000;
}

/* True when some shard frees the allocation of event `seq`. */
static bool freed(struct run *run, uint64_t seq)
{
	for (size_t j = 0; j < run->n; j++)
		for (size_t f = 0; f < run->s[j].nf; f++)
			if (run->s[j].free_seq[f] == seq)
				return true;
	return false;
}

/* jemalloc's size class of a request of n bytes (16-byte quanta, four
 * classes per doubling). */
static uint64_t size_class(uint64_t n)
{
	if (n <= 64)
		return n <= 16 ? 16 : (n + 15) & ~(uint64_t)15;
	unsigned lg = 63u - (unsigned)__builtin_clzll(n - 1);
	uint64_t delta = (uint64_t)1 << (lg - 2);
	return (n + delta - 1) & ~(delta - 1);
}

/* ---- running the workload ---- */

static struct tu_proc run_trace(const char *dir, const char *opts,
				const char *mode, const char *arg)
{
	char *trace = tu_built("tests/track/trace");
	char *env;
	struct tu_proc p;

	cr_assert(asprintf(&env, "MTALLOC=dir:%s%s%s", dir, *opts ? "," : "", opts) > 0);
	const char *argv[] = { trace, mode, arg, NULL };
	const char *envv[] = { env, NULL };
	struct tu_spawn s = { .argv = argv, .env = envv, .preload = 1 };
	cr_assert_eq(tu_run(&s, &p), 0);
	free(env);
	free(trace);
	return p;
}

/* A trace run read back: its scratch directory, the process, its shards. */
struct traced {
	char *dir;
	struct tu_proc p;
	struct run run;
};

/* Runs `trace MODE` under MTALLOC=opts, which must exit 0, and loads its
 * shards. */
static void traced_run(struct traced *t, const char *opts, const char *mode)
{
	t->dir = tu_tmpdir();
	t->p = run_trace(t->dir, opts, mode, NULL);
	cr_assert(tu_exited_ok(&t->p), "trace: %s\n%s", tu_status_str(t->p.status),
		  t->p.err);
	load(t->dir, &t->run);
}

static void traced_done(struct traced *t)
{
	unload(&t->run);
	tu_proc_free(&t->p);
	tu_rmtree(t->dir);
	free(t->dir);
}

struct truth {
	int allocs, frees, cross, live;
};

static void parse_truth(const char *out, struct truth t[4])
{
	for (int i = 0; i < 4; i++) {
		char key[32];
		snprintf(key, sizeof(key), "thread %d ", i);
		const char *line = strstr(out, key);
		cr_assert(line, "no truth for thread %d in: %s", i, out);
		cr_assert_eq(sscanf(line, "thread %*d allocs %d frees %d cross %d live %d",
				    &t[i].allocs, &t[i].frees, &t[i].cross, &t[i].live), 4);
	}
}

/* Checks one sample:all run of `trace all` against its truth, record for
 * record. */
static void check_every_record(struct run *run, const struct truth t[4])
{
	for (int i = 0; i < 4; i++) {
		char name[16];
		snprintf(name, sizeof(name), "trace-%d", i);
		struct shard *sh = by_name(run, name);
		cr_assert(sh, "no shard for thread %s", name);
		int allocs = 0, own = 0, cross = 0, live = 0;
		for (size_t k = 0; k < sh->na; k++)
			allocs += traced_size(sh->a[k].size);
		for (size_t k = 0; k < sh->nf; k++) {
			size_t at;
			struct shard *from = find_alloc(run, sh->free_seq[k], &at);
			cr_assert(from, "free of event %llu without its allocation",
				  (unsigned long long)sh->free_seq[k]);
			if (!traced_size(from->a[at].size))
				continue;
			if (from == sh)
				own++;
			else
				cross++;
		}
		/* live: this thread's allocations no shard frees */
		for (size_t k = 0; k < sh->na; k++)
			live += traced_size(sh->a[k].size) && !freed(run, sh->a[k].seq);
		cr_expect_eq(allocs, t[i].allocs, "%s allocs %d, want %d", name, allocs, t[i].allocs);
		cr_expect_eq(own, t[i].frees, "%s own frees %d, want %d", name, own, t[i].frees);
		cr_expect_eq(cross, t[i].cross, "%s cross frees %d, want %d", name, cross, t[i].cross);
		cr_expect_eq(live, t[i].live, "%s live %d, want %d", name, live, t[i].live);
		cr_expect_eq(sh->stats.chunks_corrupt, 0);
	}
}

static int by_seq(const void *a, const void *b)
{
	const struct event *x = a, *y = b;

	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* The event numbers of one process's records (doc/format.md, section 6):
 * unique, rising along each shard, each free's above its allocation's, and
 * at each address, in their order, an allocation and its free and the
 * next allocation there, never two objects live at once. */
static void check_event_order(struct run *run)
{
	struct event *all = NULL;
	size_t n = 0;

	for (size_t i = 0; i < run->n; i++) {
		const struct shard *sh = &run->s[i];
		for (size_t k = 0; k < sh->nev; k++) {
			cr_assert(k == 0 || sh->ev[k].seq > sh->ev[k - 1].seq,
				  "shard of thread %llu: event %llu after %llu",
				  (unsigned long long)sh->tid,
				  (unsigned long long)sh->ev[k].seq,
				  (unsigned long long)sh->ev[k - 1].seq);
			cr_assert(!sh->ev[k].alloc_seq || sh->ev[k].alloc_seq < sh->ev[k].seq,
				  "free %llu of allocation %llu",
				  (unsigned long long)sh->ev[k].seq,
				  (unsigned long long)sh->ev[k].alloc_seq);
			all = grow(all, n, sizeof(*all));
			all[n++] = sh->ev[k];
		}
	}
	qsort(all, n, sizeof(*all), by_seq);
	for (size_t k = 1; k < n; k++)
		cr_assert_neq(all[k].seq, all[k - 1].seq, "event %llu twice",
			      (unsigned long long)all[k].seq);
	/* by address, then by seq: allocation, its free, allocation, ... */
	for (size_t k = 0; k < n; k++) {
		if (all[k].alloc_seq)
			continue;
		uint64_t live = all[k].seq;
		for (size_t j = k + 1; j < n && live; j++) {
			if (all[j].addr != all[k].addr)
				continue;
			cr_assert_eq(all[j].alloc_seq, live,
				     "at %llx: event %llu while %llu is live",
				     (unsigned long long)all[k].addr,
				     (unsigned long long)all[j].seq,
				     (unsigned long long)live);
			live = 0;
		}
	}
	free(all);
}

/* The figures written at process exit, once every worker has exited,
 * against the records (sample:all, so every weight is 1): the live
 * estimate of the last timeline point is the bytes of the allocations no
 * shard frees, and the requests of the traced size classes count every
 * sampled allocation of those classes: each thread passes its own share of
 * both on at its exit.  (The requests may count more: jemalloc adds an
 * explicit tcache's requests to an arena other than the tracked one, so a
 * few tracked requests are not subtracted.) */
static void check_exit_figures(struct run *run)
{
	const struct shard *last = NULL, *cls = NULL;
	double live = 0;

	for (size_t i = 0; i < run->n; i++) {
		const struct shard *sh = &run->s[i];
		if (sh->timeline_ns && (!last || sh->timeline_ns > last->timeline_ns))
			last = sh;
		if (sh->classes_ns && (!cls || sh->classes_ns > cls->classes_ns))
			cls = sh;
		for (size_t k = 0; k < sh->na; k++)
			if (!freed(run, sh->a[k].seq))
				live += (double)sh->a[k].size;
	}
	cr_assert(last && cls, "no timeline point or size classes");
	cr_expect_eq(last->live_estimate, live, "live estimate %.0f, live bytes %.0f",
		     last->live_estimate, live);
	for (uint64_t c = 1024; c <= 2048; c += 256) {
		uint64_t sampled = 0, requests = 0;
		for (size_t i = 0; i < run->n; i++)
			for (size_t k = 0; k < run->s[i].na; k++)
				sampled += size_class(run->s[i].a[k].size) == c;
		for (size_t k = 0; k < cls->nclasses; k++)
			if (cls->classes[k].size == c)
				requests = cls->classes[k].requests;
		cr_expect(requests >= sampled,
			  "class %llu: %llu requests, %llu sampled allocations",
			  (unsigned long long)c, (unsigned long long)requests,
			  (unsigned long long)sampled);
	}
}

Test(track, sample_all_records_every_allocation_and_free, .timeout = 60)
{
	char *dir = tu_tmpdir();
	struct tu_proc p = run_trace(dir, "sample:all,seed:1", "all", NULL);
	struct truth t[4];
	struct run run;

	cr_assert(tu_exited_ok(&p), "trace: %s\n%s", tu_status_str(p.status), p.err);
	parse_truth(p.out, t);
	load(dir, &run);
	check_every_record(&run, t);
	check_event_order(&run);
	/* each worker ended its shard at its own exit */
	for (int i = 0; i < 4; i++) {
		char name[16];
		snprintf(name, sizeof(name), "trace-%d", i);
		cr_expect_str_eq(by_name(&run, name)->end, "exit");
	}
	check_exit_figures(&run);
	unload(&run);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir);
}

static int by_key(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* mtalloc_flush from another thread takes each writer for a moment:
 * the owner waits for it instead of losing its record. */
Test(track, records_made_during_flushes_by_another_thread_are_kept,
     .timeout = 60)
{
	struct traced t;
	unsigned long flushes = 0;
	unsigned workers = 0;
	uint64_t *traced = NULL; /* seqs of traced allocations, sorted */
	size_t ntraced = 0;

	traced_run(&t, "sample:all", "flushing");
	const char *line = strstr(t.p.out, "flushes ");
	cr_assert(line && sscanf(line, "flushes %lu", &flushes) == 1, "%s", t.p.out);
	cr_expect_geq(flushes, 5, "only %lu flushes during the work", flushes);
	for (size_t i = 0; i < t.run.n; i++)
		for (size_t k = 0; k < t.run.s[i].na; k++)
			if (traced_size(t.run.s[i].a[k].size)) {
				traced = grow(traced, ntraced, sizeof(*traced));
				traced[ntraced++] = t.run.s[i].a[k].seq;
			}
	qsort(traced, ntraced, sizeof(*traced), by_key);
	for (size_t i = 0; i < t.run.n; i++) {
		struct shard *sh = &t.run.s[i];
		unsigned allocs = 0, frees = 0;
		for (size_t k = 0; k < sh->na; k++)
			allocs += traced_size(sh->a[k].size);
		for (size_t k = 0; k < sh->nf; k++)
			frees += bsearch(&sh->free_seq[k], traced, ntraced,
					 sizeof(*traced), by_key) != NULL;
		if (!allocs && !frees)
			continue;
		workers++;
		cr_expect_eq(allocs, 200000, "thread %llu: %u allocations recorded",
			     (unsigned long long)sh->tid, allocs);
		cr_expect_eq(frees, 200000, "thread %llu: %u frees recorded",
			     (unsigned long long)sh->tid, frees);
	}
	cr_expect_eq(workers, 2);
	cr_expect_null(strstr(t.p.err, "could not be written"), "%s", t.p.err);
	free(traced);
	traced_done(&t);
}

/* A free of an object allocated after the freeing thread's own last
 * allocation (a thread's spare event number would be too low for it). */
Test(track, a_free_is_numbered_after_an_allocation_made_elsewhere_later,
     .timeout = 60)
{
	struct traced t;
	unsigned traced = 0;

	traced_run(&t, "sample:all", "handoff");
	check_event_order(&t.run);
	for (size_t i = 0; i < t.run.n; i++)
		for (size_t k = 0; k < t.run.s[i].na; k++)
			traced += t.run.s[i].a[k].size == 1400 || t.run.s[i].a[k].size == 1500;
	cr_expect_eq(traced, 2);
	traced_done(&t);
}

/* Record times are CLOCK_MONOTONIC's, also where libmtalloc reads the
 * time-stamp counter (shard.h, mt_now_ns): each allocation's time lies
 * between the program's readings before and after it, give or take the
 * counter's interpolation error (under a microsecond; 20 allowed). */
Test(track, record_times_are_those_of_clock_monotonic, .timeout = 60)
{
	struct traced t;
	unsigned checked = 0;
	const uint64_t slack = 20000; /* ns */

	traced_run(&t, "sample:all", "clock");
	for (char *line = strstr(t.p.out, "clock "); line; line = strstr(line + 1, "clock ")) {
		unsigned long long size, before, after;
		cr_assert_eq(sscanf(line, "clock %llu %llu %llu", &size, &before, &after), 3);
		const struct alloc *a = NULL;
		for (size_t i = 0; i < t.run.n && !a; i++)
			for (size_t k = 0; k < t.run.s[i].na && !a; k++)
				if (t.run.s[i].a[k].size == size)
					a = &t.run.s[i].a[k];
		cr_assert(a, "no record of the block of %llu bytes", size);
		cr_expect(a->time_ns + slack >= before && a->time_ns <= after + slack,
			  "block of %llu bytes at %llu ns, allocated between %llu and %llu",
			  size, (unsigned long long)a->time_ns, before, after);
		checked++;
	}
	cr_expect_geq(checked, 100, "only %u blocks", checked);
	traced_done(&t);
}

Test(track, a_small_buffer_spreads_records_over_many_chunks, .timeout = 60)
{
	char *dir = tu_tmpdir();
	struct tu_proc p = run_trace(dir, "sample:all,buffer:16k", "all", NULL);
	struct truth t[4];
	struct run run;

	cr_assert(tu_exited_ok(&p), "trace: %s\n%s", tu_status_str(p.status), p.err);
	parse_truth(p.out, t);
	load(dir, &run);
	check_every_record(&run, t);
	check_event_order(&run);
	struct shard *sh = by_name(&run, "trace-0");
	cr_expect_geq(sh->stats.chunks_read, 2, "%llu chunks",
		      (unsigned long long)sh->stats.chunks_read);
	cr_expect(!sh->stats.torn_tail);
	unload(&run);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir);
}

/* Every size up to 600 bytes and beyond, and alignments from 32 bytes to
 * 4 GiB: each record's slack (from the computed size class) is what
 * malloc_usable_size says less the size, and the blocks' bytes survive
 * frees and reuse (sampled blocks are freed with their size, so a wrong
 * size class would hand out overlapping blocks; an alignment of 4 GiB
 * once lost the header's 32-bit offset and crashed at free). */
Test(track, sampled_blocks_of_every_size_and_alignment_keep_their_bytes, .timeout = 60)
{
	char *dir = tu_tmpdir();
	struct tu_proc p = run_trace(dir, "sample:all", "sizes", NULL);
	struct run run;
	size_t checked = 0;

	cr_assert(tu_exited_ok(&p), "trace: %s\n%s", tu_status_str(p.status), p.err);
	cr_assert(strstr(p.out, "intact "), "trace found a block changed:\n%s",
		  strstr(p.out, "corrupt") ? strstr(p.out, "corrupt") : p.out);
	load(dir, &run);
	for (const char *line = p.out; (line = strstr(line, "usable ")); line++) {
		unsigned long long size, usable;
		bool found = false;
		cr_assert_eq(sscanf(line, "usable %llu %llu", &size, &usable), 2);
		if (!size)
			continue; /* the countdown never sends 0 bytes to be sampled */
		for (size_t i = 0; i < run.n && !found; i++)
			for (size_t k = 0; k < run.s[i].na && !found; k++)
				found = run.s[i].a[k].size == size &&
					run.s[i].a[k].slack == usable - size;
		cr_expect(found, "no record of %llu bytes with slack %llu", size,
			  usable - size);
		checked++;
	}
	cr_expect_geq(checked, 2 * (600 + 715), "%zu allocations", checked);
	unload(&run);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir);
}

/* trace sites calls site A ten times for each call of site B: every
 * record of a site names that site's stack (the writer compares a stack
 * with the last one before hashing it), and the two stacks differ. */
/* Two sites allocating in turn (tests/track/trace.c "sites"), walked with
 * `opts`: each keeps one stack of its own, with its own innermost frame. */
static void check_sites(const char *opts)
{
	char *dir = tu_tmpdir();
	struct tu_proc p = run_trace(dir, opts, "sites", "2000");
	struct run run;
	uint64_t stack[2] = { UINT64_MAX, UINT64_MAX }, pc0[2] = { 0, 0 };
	size_t n[2] = { 0, 0 };

	cr_assert(tu_exited_ok(&p), "trace: %s\n%s", tu_status_str(p.status), p.err);
	load(dir, &run);
	for (size_t i = 0; i < run.n; i++)
		for (size_t k = 0; k < run.s[i].na; k++) {
			const struct alloc *a = &run.s[i].a[k];
			int site = a->size == 256 ? 0 : a->size == 4096 ? 1 : -1;
			if (site < 0)
				continue;
			if (!n[site]++) {
				stack[site] = a->stack;
				pc0[site] = a->pc0;
			}
			cr_expect_eq(a->stack, stack[site], "site %c: stack %llu, then %llu",
				     'A' + site, (unsigned long long)stack[site],
				     (unsigned long long)a->stack);
		}
	cr_expect_eq(n[0], 2000);
	cr_expect_eq(n[1], 200);
	cr_expect_neq(stack[0], stack[1]);
	cr_expect(pc0[0] && pc0[1] && pc0[0] != pc0[1], "innermost frames %llx, %llx",
		  (unsigned long long)pc0[0], (unsigned long long)pc0[1]);
	unload(&run);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir);
}

Test(track, repeated_and_alternating_sites_keep_their_own_stacks, .timeout = 60)
{
	check_sites("sample:all");
}

/* The frame-pointer walk (trace is built with frame pointers), bounded by
 * the end of the thread's stack found without allocating. */
Test(track, frame_pointer_walks_keep_each_site_its_own_stack, .timeout = 60)
{
	check_sites("sample:all,unwind:fp");
}

/* |N^ - N| <= 4 sigma for the allocations of one size (doc/sampling.md). */
static void check_estimate(struct run *run, uint64_t size, double n, bool explicit_p)
{
	double est = 0, var = 0, k = 0;

	for (size_t i = 0; i < run->n; i++)
		for (size_t j = 0; j < run->s[i].na; j++)
			if (run->s[i].a[j].size == size) {
				double w = run->s[i].a[j].weight;
				est += w;
				var += w * w - w; /* (1-p)/p^2, unbiased */
				k++;
			}
	if (!explicit_p) {
		double p = -expm1(-(double)size / (512.0 * 1024));
		var = n * (1 - p) / p; /* the exact variance */
	}
	double sigma = sqrt(var);
	cr_expect(k >= 10, "only %.0f samples of %llu bytes", k, (unsigned long long)size);
	cr_expect(fabs(est - n) <= 4 * sigma,
		  "%llu bytes: estimated %.0f allocations, truth %.0f, sigma %.0f (%.0f samples)",
		  (unsigned long long)size, est, n, sigma, k);
}

Test(track, poisson_estimates_fall_within_four_sigma, .timeout = 60)
{
	char *dir = tu_tmpdir();
	struct tu_proc p = run_trace(dir, "seed:7", "sites", "200000");
	struct run run;

	cr_assert(tu_exited_ok(&p), "trace: %s\n%s", tu_status_str(p.status), p.err);
	load(dir, &run);
	check_estimate(&run, 256, 200000, false);
	check_estimate(&run, 4096, 20000, false);
	unload(&run);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir);
}

Test(track, tiered_estimates_fall_within_four_sigma, .timeout = 60)
{
	char *dir = tu_tmpdir();
	struct tu_proc p = run_trace(dir, "sample:tiered,seed:3", "sites", "100000");
	struct run run;

	cr_assert(tu_exited_ok(&p), "trace: %s\n%s", tu_status_str(p.status), p.err);
	load(dir, &run);
	check_estimate(&run, 256, 100000, true);
	check_estimate(&run, 4096, 10000, true);
	unload(&run);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir);
}

Test(track, process_exit_flushes_threads_still_running, .timeout = 60)
{
	char *dir = tu_tmpdir();
	struct tu_proc p = run_trace(dir, "sample:all", "running", NULL);
	struct run run;
	int spinners = 0, main_allocs = 0;

	cr_assert(tu_exited_ok(&p), "trace: %s\n%s", tu_status_str(p.status), p.err);
	load(dir, &run);
	for (size_t i = 0; i < run.n; i++) {
		struct shard *sh = &run.s[i];
		int spins = 0, mains = 0;
		for (size_t k = 0; k < sh->na; k++) {
			spins += sh->a[k].size == 1200;
			mains += sh->a[k].size == 1300;
		}
		if (spins) {
			spinners++;
			cr_expect_str_eq(sh->end, "process-exit");
		}
		main_allocs += mains;
	}
	cr_expect_eq(spinners, 2, "shards of running threads: %d", spinners);
	cr_expect_eq(main_allocs, 100);
	unload(&run);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir);
}

Test(track, fork_gives_the_child_shards_of_its_own, .timeout = 60)
{
	char *dir = tu_tmpdir();
	struct tu_proc p = run_trace(dir, "sample:all", "fork", NULL);
	struct run run;
	struct shard *parent = NULL, *child = NULL;

	cr_assert(tu_exited_ok(&p), "trace: %s\n%s", tu_status_str(p.status), p.err);
	load(dir, &run);
	for (size_t i = 0; i < run.n; i++)
		for (size_t k = 0; k < run.s[i].na; k++) {
			if (run.s[i].a[k].size == 1400)
				parent = &run.s[i];
			if (run.s[i].a[k].size == 1500)
				child = &run.s[i];
		}
	cr_assert(parent && child, "parent or child shard missing");
	cr_expect_neq(parent->pid, child->pid);
	cr_expect_eq(child->ppid, parent->pid, "child's ppid %llu, parent %llu",
		     (unsigned long long)child->ppid, (unsigned long long)parent->pid);
	int in_child = 0, freed = 0;
	for (size_t k = 0; k < child->na; k++)
		in_child += child->a[k].size == 1500;
	for (size_t k = 0; k < child->nf; k++) {
		size_t at;
		struct shard *from = find_alloc(&run, child->free_seq[k], &at);
		freed += from == child && from->a[at].size == 1500;
	}
	cr_expect_eq(in_child, 100);
	cr_expect_eq(freed, 100);
	/* the child's events continue the parent's numbering */
	cr_expect_eq(parent->fork_seq, 0);
	cr_expect_geq(child->fork_seq, 1);
	for (size_t k = 0; k < parent->na; k++)
		if (parent->a[k].size == 1400)
			cr_expect_leq(parent->a[k].seq, child->fork_seq);
	for (size_t k = 0; k < child->na; k++)
		cr_expect_gt(child->a[k].seq, child->fork_seq);
	for (size_t k = 0; k < parent->na; k++)
		cr_expect_neq(parent->a[k].size, 1500, "child's record in the parent's shard");
	unload(&run);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir);
}

Test(track, a_library_loaded_later_has_its_module_recorded, .timeout = 60)
{
	char *dir = tu_tmpdir();
	char *lib = tu_built("tests/track/.libs/tracelib.so");
	struct tu_proc p = run_trace(dir, "sample:all", "dlopen", lib);
	struct run run;
	int resolved = 0, sampled = 0;

	cr_assert(tu_exited_ok(&p), "trace: %s\n%s", tu_status_str(p.status), p.err);
	load(dir, &run);
	for (size_t i = 0; i < run.n; i++) {
		struct shard *sh = &run.s[i];
		const struct mod *m = NULL;
		for (size_t k = 0; k < sh->nm; k++)
			if (strstr(sh->m[k].path, "tracelib.so"))
				m = &sh->m[k];
		for (size_t k = 0; k < sh->na; k++) {
			if (sh->a[k].size != 1700)
				continue;
			sampled++;
			resolved += m && sh->a[k].pc0 - m->base < m->size;
		}
	}
	cr_expect_eq(sampled, 50);
	cr_expect_eq(resolved, 50, "%d of 50 stacks start in tracelib.so", resolved);
	unload(&run);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir);
	free(lib);
}

Test(track, an_unwritable_directory_is_reported_once_and_harmless, .timeout = 60)
{
	char *dir = tu_tmpdir();
	char *file = tu_path(dir, "file");
	char *bad = tu_path(file, "shards"); /* below a regular file: ENOTDIR */
	struct tu_proc good = run_trace(dir, "sample:all", "all", NULL);

	tu_write_file(file, "x", 1);
	struct tu_proc p = run_trace(bad, "sample:all", "all", NULL);
	cr_assert(tu_exited_ok(&p), "trace: %s\n%s", tu_status_str(p.status), p.err);
	cr_expect_str_eq(p.out, good.out, "the program's own output changed");
	size_t lines = 0;
	for (const char *s = p.err; (s = strstr(s, "cannot write shard")); s++)
		lines++;
	cr_expect_eq(lines, 1, "stderr:\n%s", p.err);
	cr_expect(strstr(p.err, "could not be written"), "no count of dropped records:\n%s", p.err);
	tu_proc_free(&p);
	tu_proc_free(&good);
	tu_rmtree(dir);
	free(bad);
	free(file);
	free(dir);
}

static off_t dir_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	off_t sum = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		struct stat st;
		char *path = tu_path(dir, e->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			sum += st.st_size;
		free(path);
	}
	closedir(d);
	return sum;
}

Test(track, kill_9_keeps_every_chunk_written_before_it, .timeout = 60)
{
	char *dir = tu_tmpdir();
	char *trace = tu_built("tests/track/trace");
	char *env, *pre;

	cr_assert(asprintf(&env, "dir:%s,sample:all,buffer:16k", dir) > 0);
	cr_assert(asprintf(&pre, "%s", tu_lib()) > 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		setenv("MTALLOC", env, 1);
		setenv("LD_PRELOAD", pre, 1);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execl(trace, trace, "loop", (char *)NULL);
		_exit(127);
	}
	/* Kill it once it has written a good number of chunks. */
	for (int i = 0; i < 20000 && dir_bytes(dir) < 256 * 1024; i++)
		usleep(1000);
	kill(pid, SIGKILL);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

	struct run run;
	load(dir, &run);
	cr_assert_geq(run.n, 1);
	uint64_t chunks = 0, allocs = 0;
	for (size_t i = 0; i < run.n; i++) {
		cr_expect_eq(run.s[i].stats.chunks_corrupt, 0);
		chunks += run.s[i].stats.chunks_read;
		allocs += run.s[i].na;
	}
	cr_expect_geq(chunks, 10, "%llu chunks read", (unsigned long long)chunks);
	cr_expect_gt(allocs, 1000);
	unload(&run);

	/* The tail a kill during write(2) would leave: half a chunk. */
	DIR *d = opendir(dir);
	struct dirent *e;
	char *victim = NULL;
	while ((e = readdir(d)) && !victim)
		if (strstr(e->d_name, ".mts"))
			victim = tu_path(dir, e->d_name);
	closedir(d);
	struct stat sb;
	cr_assert(victim && stat(victim, &sb) == 0);
	cr_assert_eq(truncate(victim, sb.st_size - 100), 0);
	struct shard sh;
	read_shard(victim, &sh);
	cr_expect(sh.stats.torn_tail, "a cut chunk is reported as a torn tail");
	cr_expect_eq(sh.stats.chunks_corrupt, 0);
	cr_expect_gt(sh.na, 0);
	shard_free(&sh);
	free(victim);
	free(env);
	free(pre);
	free(trace);
	tu_rmtree(dir);
	free(dir);
}
