/* ingest: shards and aggregate files -> one aggregate.
 *
 * 1. Scan (parallel): every shard's header and the event number (seq) of
 *    its first ALLOC/FREE record.
 * 2. Group the shards by process (host, pid, start time); a shard whose
 *    number ("shard" header key) was already read is a duplicate.
 * 3. One job per process (parallel across processes): a k-way merge of its
 *    shards by seq, so that every free arrives after its allocation and the
 *    table of live sampled objects holds only what is live at that point.
 *    A shard is opened only when the merge reaches its first seq, so the
 *    number of shards open at once follows the threads alive at once.  The
 *    records of each shard are decoded in batches by urgent tasks on the
 *    pool (two batches in flight per shard); the merging thread runs such
 *    tasks itself while it waits.  The job aggregates into an aggregate of
 *    its own, which is then merged into the result.
 * 4. Aggregate files, in command-line order, merged into the result.
 *
 * Memory: per open shard, the reader's chunk (<= the writer's buffer) and
 * two batches; per process, its live sampled objects; overall, the sites
 * and cells. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

/* ---- problems ------------------------------------------------------------ */

void mt_ingest_problem(struct mt_ingest_ctx *ctx, const char *file,
		       const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&ctx->lock);
	if (!ctx->stop) {
		/* over the progress line, if there is one */
		fprintf(stderr, "%smtreport: %s: %s\n", ctx->progress ? "\r\033[K" : "",
			file, text);
		mt_agg_problem(ctx->agg, file, text);
		ctx->skipped++;
		if (ctx->strict)
			ctx->stop = true;
	}
	pthread_mutex_unlock(&ctx->lock);
}

/* ---- header copies ---------------------------------------------------------- */

struct hcopy {
	struct mt_shard_header h;
	char *blob;
};

static void str_copy(struct mt_shard_str *s, char **p)
{
	if (!s->ptr)
		return;
	memcpy(*p, s->ptr, s->len);
	(*p)[s->len] = '\0';
	s->ptr = *p;
	*p += s->len + 1;
}

static void hcopy_make(struct hcopy *c, const struct mt_shard_header *h)
{
	struct mt_shard_str *strs[] = { &c->h.version, &c->h.host, &c->h.thread,
					&c->h.exe, &c->h.clock, &c->h.policy_name,
					&c->h.unwind };
	size_t len = 0;
	char *p;

	c->h = *h;
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if (strs[i]->ptr)
			len += strs[i]->len + 1;
	for (uint32_t i = 0; i < h->argc; i++)
		len += h->argv[i].len + 1;
	len += (h->argc + 1) * sizeof(struct mt_shard_str);
	c->blob = mt_xmalloc(len + 16);
	struct mt_shard_str *argv = (struct mt_shard_str *)c->blob;
	p = c->blob + (h->argc + 1) * sizeof(struct mt_shard_str);
	for (uint32_t i = 0; i < h->argc; i++) {
		argv[i] = h->argv[i];
		str_copy(&argv[i], &p);
	}
	c->h.argv = argv;
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		str_copy(strs[i], &p);
}

/* ---- events and batches --------------------------------------------------- */

/* A decoded record.  ALLOC and FREE inline; other kinds point to a copy of
 * the record in the batch's arena. */
struct ev {
	uint64_t seq;      /* ALLOC, FREE */
	uint64_t time_ns;  /* ALLOC, FREE */
	uint64_t a;        /* ALLOC: size; FREE: alloc_seq */
	uint64_t b;        /* ALLOC: stack id */
	double w;          /* ALLOC: weight, < 0 when unusable */
	const struct mt_shard_record *rec; /* other kinds */
	uint32_t kind;
};

struct ablock {
	struct ablock *next;
	size_t used, cap;
	char data[];
};

struct batch {
	struct ev *ev;
	size_t n, cap;
	struct ablock *arena;
};

#define ABLOCK 65536
#define PREFETCH 6 /* events ahead */

static void *arena_alloc(struct batch *b, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	if (!b->arena || b->arena->used + n > b->arena->cap) {
		size_t cap = n > ABLOCK ? n : ABLOCK;
		struct ablock *k = mt_xmalloc(sizeof(*k) + cap);
		k->next = b->arena;
		k->used = 0;
		k->cap = cap;
		b->arena = k;
	}
	void *p = b->arena->data + b->arena->used;
	b->arena->used += n;
	return p;
}

static void batch_reset(struct batch *b)
{
	struct ablock *k = b->arena;

	b->n = 0;
	if (!k)
		return;
	while (k->next) {
		struct ablock *n = k->next;
		k->next = n->next;
		free(n);
	}
	k->used = 0;
}

static void batch_free(struct batch *b)
{
	batch_reset(b);
	free(b->arena);
	free(b->ev);
	memset(b, 0, sizeof(*b));
}

static void copy_str(struct batch *b, struct mt_shard_str *s)
{
	if (!s->ptr)
		return;
	char *p = arena_alloc(b, s->len + 1);
	memcpy(p, s->ptr, s->len);
	p[s->len] = '\0';
	s->ptr = p;
}

/* A copy of rec in b's arena, or NULL for kinds the merge ignores. */
static const struct mt_shard_record *copy_rec(struct batch *b,
					      const struct mt_shard_record *rec)
{
	struct mt_shard_record *c;

	if (rec->kind == MT_REC_HEADER)
		return NULL; /* the scan's copy is used */
	c = arena_alloc(b, sizeof(*c));
	*c = *rec;
	switch (rec->kind) {
	case MT_REC_MODULE:
		copy_str(b, &c->u.module.path);
		if (rec->u.module.build_id_len) {
			uint8_t *p = arena_alloc(b, rec->u.module.build_id_len);
			memcpy(p, rec->u.module.build_id, rec->u.module.build_id_len);
			c->u.module.build_id = p;
		}
		break;
	case MT_REC_STACK: {
		uint64_t *p = arena_alloc(b, (rec->u.stack.depth + 1) * sizeof(uint64_t));
		memcpy(p, rec->u.stack.pcs, rec->u.stack.depth * sizeof(uint64_t));
		c->u.stack.pcs = p;
		break;
	}
	case MT_REC_CLASSES: {
		struct mt_shard_class *p =
			arena_alloc(b, (rec->u.classes.n + 1) * sizeof(*p));
		memcpy(p, rec->u.classes.v, rec->u.classes.n * sizeof(*p));
		c->u.classes.v = p;
		break;
	}
	case MT_REC_MARK: copy_str(b, &c->u.mark.str); break;
	case MT_REC_THREAD_NAME: copy_str(b, &c->u.thread_name.str); break;
	case MT_REC_END: copy_str(b, &c->u.end.str); break;
	case MT_REC_THREAD_EXIT: copy_str(b, &c->u.thread_exit.name); break;
	default: break;
	}
	return c;
}

/* ---- shards and their cursors ---------------------------------------------------- */

struct shardin {
	const struct mt_input *in;
	uint64_t id;           /* identity within its process (shard_id) */
	struct hcopy hdr;
	bool have_hdr;
	bool ok;               /* scanned, to be merged */
	uint64_t first_seq;    /* of the first ALLOC/FREE, UINT64_MAX: none */
	struct mt_ingest_ctx *ctx;
};

struct smod {
	uint64_t id, base, size;
	uint32_t mod;
};

struct job;

struct cursor {
	struct job *job;
	struct shardin *si;
	struct mt_shard_reader *r;
	/* the pipeline (under job->lock) */
	struct batch b[2];
	unsigned produce, consume;
	int ready;            /* batches decoded and not consumed */
	bool busy;            /* a decode task is queued or running */
	bool eof;             /* the producer is done */
	bool started;
	int err;              /* what stopped reading (-errno) */
	char errtext[256];
	char damage[512];     /* mt_shard_describe at the end */
	struct mt_shard_stats stats;
	uint64_t progress;    /* bytes reported so far */
	/* the consumer */
	struct batch *cur;
	size_t pos;
	const struct ev *e;   /* the current ALLOC/FREE */
	/* shard-local state */
	struct smod *mods;    /* in the order of their records */
	size_t nmods, capmods;
	struct mt_map mod_ids; /* module id -> mods index */
	uint32_t *by_base;    /* mods indices sorted by base (when !mods_dirty) */
	size_t capby;
	bool mods_dirty;      /* mods changed since by_base was sorted */
	struct mt_map stacks; /* stack id -> st */
	uint32_t thread;      /* UINT32_MAX until needed (tid 0) */
	uint64_t last_stack;  /* cache: stack id -> st */
	uint32_t last_st;
	uint32_t unknown_st;
	struct {              /* cache: (st, size class) -> stc */
		uint32_t st, stc;
		uint64_t cls;
	} stcc[64];
	uint64_t tmin, tmax;  /* ns: of its events (applied at the end) */
	bool ended;           /* an END record was read */
};

struct job {
	struct mt_ingest_ctx *ctx;
	struct mt_pool *pool;
	struct shardin **shards;
	size_t n;
	struct cursor *c;
	struct mt_agg agg;
	uint32_t proc;
	size_t batch_events;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void decode_task(void *arg);

static void cursor_kick(struct cursor *c)
{
	/* job->lock held */
	if (!c->busy && !c->eof && c->ready < 2) {
		c->busy = true;
		mt_pool_submit(c->job->pool, decode_task, c, true);
	}
}

static void progress_add(struct cursor *c, uint64_t off)
{
	if (off > c->progress) {
		__atomic_add_fetch(&c->job->ctx->done_bytes, off - c->progress,
				   __ATOMIC_RELAXED);
		c->progress = off;
	}
}

/* Fills one batch from the reader (no lock held while decoding). */
static void decode_task(void *arg)
{
	struct cursor *c = arg;
	struct job *j = c->job;
	struct batch *b;
	const struct mt_shard_record *rec;
	const struct mt_shard_header *h;
	bool eof = false;
	int rc = 0;

	pthread_mutex_lock(&j->lock);
	b = &c->b[c->produce];
	pthread_mutex_unlock(&j->lock);
	batch_reset(b);
	if (!b->ev) {
		b->cap = j->batch_events;
		b->ev = mt_xmalloc(b->cap * sizeof(*b->ev));
	}
	if (!c->r) {
		if ((rc = mt_shard_reader_new(&c->r)) == 0 &&
		    (rc = mt_shard_open(c->r, c->si->in->path)) < 0)
			snprintf(c->errtext, sizeof(c->errtext), "%s",
				 mt_shard_error(c->r));
		if (rc == -ENOMEM)
			snprintf(c->errtext, sizeof(c->errtext), "out of memory");
	}
	h = rc == 0 ? mt_shard_header(c->r) : NULL;
	while (rc == 0 && b->n < b->cap && !j->ctx->stop) {
		if ((rc = mt_shard_next(c->r, &rec)) < 0) {
			snprintf(c->errtext, sizeof(c->errtext), "%s",
				 mt_shard_error(c->r));
			break;
		}
		if (!rec) {
			eof = true;
			break;
		}
		struct ev *e = &b->ev[b->n];
		e->kind = rec->kind;
		if (rec->kind == MT_REC_ALLOC) {
			const struct mt_shard_alloc *a = &rec->u.alloc;
			if (!h)
				h = mt_shard_header(c->r);
			e->seq = a->seq;
			e->time_ns = a->time_ns;
			e->a = a->size;
			e->b = a->stack_id;
			if (mt_shard_alloc_weight(h, a, &e->w) < 0 || !(e->w >= 1.0 / 65536))
				e->w = -1;
		} else if (rec->kind == MT_REC_FREE) {
			e->seq = rec->u.free.seq;
			e->time_ns = rec->u.free.time_ns;
			e->a = rec->u.free.alloc_seq;
		} else {
			e->rec = copy_rec(b, rec);
			if (!e->rec)
				continue;
		}
		b->n++;
		if (b->n % 1024 == 0)
			progress_add(c, rec->chunk_offset);
	}
	if (rc < 0 || j->ctx->stop)
		eof = true;
	if (eof && c->r) {
		c->stats = *mt_shard_stats(c->r);
		mt_shard_describe(c->r, c->damage, sizeof(c->damage));
		progress_add(c, c->stats.file_bytes);
		mt_shard_reader_free(c->r);
		c->r = NULL;
	}
	pthread_mutex_lock(&j->lock);
	c->err = rc;
	c->produce ^= 1;
	c->ready++;
	c->busy = false;
	if (eof)
		c->eof = true;
	else
		cursor_kick(c);
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

/* The next batch of c, or NULL at its end. */
static struct batch *next_batch(struct cursor *c)
{
	struct job *j = c->job;

	pthread_mutex_lock(&j->lock);
	if (c->cur) {
		c->cur = NULL;
		c->ready--;
		c->consume ^= 1;
		cursor_kick(c);
	}
	while (c->ready == 0) {
		if (c->eof && !c->busy)
			break;
		pthread_mutex_unlock(&j->lock);
		bool helped = mt_pool_help(j->pool);
		pthread_mutex_lock(&j->lock);
		if (!helped && c->ready == 0 && !(c->eof && !c->busy))
			pthread_cond_wait(&j->cond, &j->lock);
	}
	if (c->ready)
		c->cur = &c->b[c->consume];
	pthread_mutex_unlock(&j->lock);
	c->pos = 0;
	return c->cur;
}

static void cursor_start(struct cursor *c)
{
	pthread_mutex_lock(&c->job->lock);
	if (!c->started) {
		c->started = true;
		cursor_kick(c);
	}
	pthread_mutex_unlock(&c->job->lock);
}

static uint32_t cursor_thread(struct cursor *c)
{
	if (c->thread == UINT32_MAX) {
		c->thread = mt_agg_thread(&c->job->agg, c->job->proc,
					  c->si->hdr.h.tid);
		c->job->agg.threads[c->thread].shards++;
	}
	return c->thread;
}

static int by_base(const void *x, const void *y, void *mods)
{
	const struct smod *a = &((const struct smod *)mods)[*(const uint32_t *)x];
	const struct smod *b = &((const struct smod *)mods)[*(const uint32_t *)y];
	if (a->base != b->base)
		return a->base < b->base ? -1 : 1;
	return *(const uint32_t *)x < *(const uint32_t *)y ? -1 : 1;
}

/* pc -> frame, with the shard's modules: the one with the greatest base
 * that holds pc. */
static void frame_of(struct cursor *c, uint64_t pc, struct mt_frame *f)
{
	const struct smod *best = NULL;
	size_t lo = 0, hi = c->nmods;

	if (c->mods_dirty) {
		mt_grow(&c->by_base, &c->capby, c->nmods + 1, sizeof(uint32_t));
		for (size_t i = 0; i < c->nmods; i++)
			c->by_base[i] = (uint32_t)i;
		qsort_r(c->by_base, c->nmods, sizeof(uint32_t), by_base, c->mods);
		c->mods_dirty = false;
	}
	while (lo < hi) { /* the first module with base > pc */
		size_t mid = (lo + hi) / 2;
		if (c->mods[c->by_base[mid]].base <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* the nearest one below usually holds pc; an enclosing range (a
	 * non-PIE executable has base 0) is found further down */
	for (size_t i = lo; i-- > 0;) {
		const struct smod *m = &c->mods[c->by_base[i]];
		if (pc - m->base < m->size) {
			best = m;
			break;
		}
	}
	f->pad_ = 0;
	if (best) {
		f->module = best->mod;
		f->offset = pc - best->base;
	} else {
		f->module = MT_NO_MODULE;
		f->offset = pc;
	}
}

static void do_module(struct cursor *c, const struct mt_shard_module *m)
{
	uint32_t mod = mt_agg_module(&c->job->agg, m->path.ptr, m->path.len,
				     m->build_id, m->build_id_len);
	uint32_t i = mt_map_get(&c->mod_ids, m->id);

	if (i == UINT32_MAX) {
		if (c->nmods >= UINT32_MAX - 1)
			return;
		mt_grow(&c->mods, &c->capmods, c->nmods + 1, sizeof(*c->mods));
		i = (uint32_t)c->nmods++;
		mt_map_put(&c->mod_ids, m->id, i);
	}
	c->mods[i] = (struct smod){ m->id, m->base, m->size, mod };
	c->mods_dirty = true;
}

static void do_stack(struct cursor *c, const struct mt_shard_stack *s)
{
	struct mt_frame f[MT_SHARD_MAX_FRAMES];
	struct mt_agg *a = &c->job->agg;

	for (uint32_t i = 0; i < s->depth; i++)
		frame_of(c, s->pcs[i], &f[i]);
	uint32_t site = mt_agg_site(a, f, s->depth);
	uint32_t st = mt_agg_st(a, site, cursor_thread(c));
	mt_map_put(&c->stacks, s->id, st);
	if (c->last_stack == s->id)
		c->last_stack = UINT64_MAX;
}

/* A record other than ALLOC/FREE. */
static void do_other(struct cursor *c, const struct mt_shard_record *r)
{
	struct job *j = c->job;
	struct mt_agg *a = &j->agg;
	struct mt_proc *p = &a->procs[j->proc];

	switch (r->kind) {
	case MT_REC_MODULE:
		do_module(c, &r->u.module);
		break;
	case MT_REC_STACK:
		do_stack(c, &r->u.stack);
		break;
	case MT_REC_TOTALS: {
		struct mt_totals t = { true, false, r->u.totals.shared,
				       r->u.totals.time_ns, r->u.totals.allocs,
				       r->u.totals.frees,
				       r->u.totals.bytes_allocated,
				       r->u.totals.bytes_freed };
		mt_agg_totals(a, cursor_thread(c), &t);
		mt_agg_time(a, j->proc, c->thread, r->u.totals.time_ns);
		break;
	}
	case MT_REC_TIMELINE: {
		const struct mt_shard_timeline *t = &r->u.timeline;
		struct mt_tpoint pt = { t->time_ns, t->allocated, t->active,
					t->resident, t->mapped, t->live_estimate };
		mt_agg_timeline(a, j->proc, &pt);
		mt_agg_time(a, j->proc, UINT32_MAX, t->time_ns);
		break;
	}
	case MT_REC_MARK:
		mt_agg_mark(a, j->proc, r->u.mark.time_ns, r->u.mark.str.ptr,
			    r->u.mark.str.len);
		mt_agg_time(a, j->proc, UINT32_MAX, r->u.mark.time_ns);
		break;
	case MT_REC_THREAD_NAME:
		mt_agg_thread_name(a, cursor_thread(c), r->u.thread_name.str.ptr,
				   r->u.thread_name.str.len,
				   r->u.thread_name.time_ns);
		break;
	case MT_REC_DROPPED:
		p->in.dropped_records = mt_add64(p->in.dropped_records,
						 r->u.dropped.records);
		p->in.dropped_bytes = mt_add64(p->in.dropped_bytes,
					       r->u.dropped.bytes);
		break;
	case MT_REC_THREAD_EXIT: {
		const struct mt_shard_thread_exit *x = &r->u.thread_exit;
		uint32_t t = mt_agg_thread(a, j->proc, x->tid);
		struct mt_totals tt = { true, true, false, 0, x->allocs, x->frees,
					x->bytes_allocated, x->bytes_freed };
		mt_agg_thread_name(a, t, x->name.ptr, x->name.len, 0);
		mt_agg_totals(a, t, &tt);
		break;
	}
	case MT_REC_END:
		mt_agg_end(a, j->proc, r->u.end.time_ns, r->u.end.str.ptr,
			   r->u.end.str.len);
		mt_agg_time(a, j->proc, UINT32_MAX, r->u.end.time_ns);
		c->ended = true;
		break;
	case MT_REC_CLASSES:
		mt_agg_classes(a, j->proc, r->u.classes.time_ns, r->u.classes.v,
			       r->u.classes.n);
		break;
	default:
		break;
	}
}

/* Moves c to its next ALLOC/FREE event, doing the other records on the
 * way.  false at the end of the shard. */
static bool advance(struct cursor *c)
{
	for (;;) {
		if (!c->cur || c->pos == c->cur->n) {
			if (!next_batch(c))
				return false;
			continue;
		}
		const struct ev *e = &c->cur->ev[c->pos++];
		/* the live-table slot an event a few records ahead will use is
		 * a cache miss: start loading it now */
		if (c->pos + PREFETCH < c->cur->n) {
			const struct ev *f = &c->cur->ev[c->pos + PREFETCH];
			if (f->kind == MT_REC_FREE || f->kind == MT_REC_ALLOC)
				mt_otab_prefetch(&c->job->agg.procs[c->job->proc].live,
						 f->kind == MT_REC_FREE ? f->a : f->seq);
		}
		if (e->kind == MT_REC_ALLOC || e->kind == MT_REC_FREE) {
			c->e = e;
			return true;
		}
		do_other(c, e->rec);
	}
}

static uint32_t stack_st(struct cursor *c, uint64_t id)
{
	if (id == c->last_stack)
		return c->last_st;
	uint32_t st = mt_map_get(&c->stacks, id);
	if (st == UINT32_MAX) {
		/* its stack record was lost with its chunk */
		if (c->unknown_st == UINT32_MAX) {
			uint32_t site = mt_agg_site(&c->job->agg, NULL, 0);
			c->unknown_st = mt_agg_st(&c->job->agg, site, cursor_thread(c));
		}
		return c->unknown_st;
	}
	c->last_stack = id;
	c->last_st = st;
	return st;
}

static void do_event(struct cursor *c)
{
	const struct ev *e = c->e;
	struct job *j = c->job;
	struct mt_agg *a = &j->agg;
	uint32_t t = cursor_thread(c);

	if (e->kind == MT_REC_ALLOC) {
		if (e->w < 0) {
			a->procs[j->proc].in.bad_weight++;
			return;
		}
		uint32_t st = stack_st(c, e->b);
		uint64_t cls = mt_size_class(e->a);
		unsigned h = (unsigned)((cls >> 3) ^ (cls >> 9) ^ st * 0x9e3779b1u) & 63;
		if (c->stcc[h].st != st || c->stcc[h].cls != cls) {
			c->stcc[h].stc = mt_agg_stc(a, st, cls);
			c->stcc[h].st = st;
			c->stcc[h].cls = cls;
		}
		mt_agg_alloc(a, j->proc, e->seq, e->time_ns, e->a, e->w, st,
			     c->stcc[h].stc);
	} else {
		mt_agg_free(a, j->proc, e->seq, e->time_ns, e->a, t);
	}
	if (e->time_ns < c->tmin)
		c->tmin = e->time_ns;
	if (e->time_ns > c->tmax)
		c->tmax = e->time_ns;
}

/* ---- the heap of cursors ------------------------------------------------------ */

struct heap {
	struct cursor **v;
	size_t n;
};

static bool before(const struct cursor *x, const struct cursor *y)
{
	if (x->e->seq != y->e->seq)
		return x->e->seq < y->e->seq;
	return x->si->in->order < y->si->in->order;
}

static void heap_push(struct heap *h, struct cursor *c)
{
	size_t i = h->n++;
	while (i) {
		size_t p = (i - 1) / 2;
		if (!before(c, h->v[p]))
			break;
		h->v[i] = h->v[p];
		i = p;
	}
	h->v[i] = c;
}

static struct cursor *heap_pop(struct heap *h)
{
	struct cursor *top = h->v[0], *last = h->v[--h->n];
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l >= h->n)
			break;
		m = l;
		if (l + 1 < h->n && before(h->v[l + 1], h->v[l]))
			m = l + 1;
		if (!before(h->v[m], last))
			break;
		h->v[i] = h->v[m];
		i = m;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

/* ---- the process job ------------------------------------------------------------- */

static int by_first_seq(const void *x, const void *y)
{
	const struct cursor *a = x, *b = y;
	if (a->si->first_seq != b->si->first_seq)
		return a->si->first_seq < b->si->first_seq ? -1 : 1;
	return a->si->in->order < b->si->in->order ? -1 : 1;
}

static void cursor_finish(struct cursor *c)
{
	struct job *j = c->job;
	struct mt_proc *p = &j->agg.procs[j->proc];
	const struct mt_shard_stats *s = &c->stats;
	const char *path = c->si->in->path;

	if (c->tmin <= c->tmax) {
		mt_agg_time(&j->agg, j->proc, c->thread, c->tmin);
		mt_agg_time(&j->agg, j->proc, c->thread, c->tmax);
		p = &j->agg.procs[j->proc];
	}
	p->in.shards++;
	p->in.bytes = mt_add64(p->in.bytes, s->file_bytes);
	p->in.records = mt_add64(p->in.records, s->records);
	p->in.chunks_read += s->chunks_read;
	p->in.chunks_corrupt += s->chunks_corrupt;
	p->in.chunks_missing += s->chunks_missing;
	p->in.seq_backwards += s->seq_backwards;
	p->in.bytes_skipped += s->bytes_skipped + (s->torn_tail ? s->torn_bytes : 0);
	p->in.torn_tails += s->torn_tail;
	p->in.records_malformed += s->records_malformed;
	p->in.records_unknown += s->records_unknown;
	if (!c->ended)
		p->in.no_end++;
	if (c->err < 0)
		mt_ingest_problem(j->ctx, path, "%s (read stopped there)",
				  c->errtext[0] ? c->errtext : strerror(-c->err));
	if (c->damage[0])
		mt_ingest_problem(j->ctx, path, "%s", c->damage);
	for (int i = 0; i < 2; i++)
		batch_free(&c->b[i]);
	mt_map_free(&c->stacks);
	free(c->mods);
	c->mods = NULL;
	free(c->by_base);
	c->by_base = NULL;
	mt_map_free(&c->mod_ids);
}

static void job_task(void *arg)
{
	struct job *j = arg;
	struct mt_agg *a = &j->agg;
	struct heap h = { mt_xcalloc(j->n, sizeof(struct cursor *)), 0 };
	size_t next = 0;

	mt_agg_init(a);
	const struct mt_shard_header *h0 = &j->shards[0]->hdr.h;
	j->proc = mt_agg_proc(a, h0->host.ptr, h0->pid, h0->start_realtime_ns);
	j->c = mt_xcalloc(j->n, sizeof(*j->c));
	for (size_t i = 0; i < j->n; i++) {
		struct cursor *c = &j->c[i];
		const struct mt_shard_header *sh = &j->shards[i]->hdr.h;
		c->job = j;
		c->si = j->shards[i];
		c->thread = UINT32_MAX;
		c->unknown_st = UINT32_MAX;
		c->last_stack = UINT64_MAX;
		c->tmin = UINT64_MAX;
		for (int k = 0; k < 64; k++)
			c->stcc[k].st = UINT32_MAX;
		mt_agg_proc_header(a, j->proc, sh, j->shards[i]->id);
		mt_agg_proc_shard(a, j->proc, j->shards[i]->id);
		if (sh->tid) {
			cursor_thread(c);
			if (sh->thread.ptr)
				mt_agg_thread_name(a, c->thread, sh->thread.ptr,
						   sh->thread.len, 0);
		}
	}
	mt_sort(j->c, j->n, sizeof(*j->c), by_first_seq);
	/* Fix the back pointers qsort moved. */
	for (size_t i = 0; i < j->n; i++)
		j->c[i].job = j;
	if (j->n)
		cursor_start(&j->c[0]);
	while (!j->ctx->stop) {
		while (next < j->n &&
		       (!h.n || j->c[next].si->first_seq <= h.v[0]->e->seq)) {
			struct cursor *c = &j->c[next++];
			cursor_start(c);
			if (next < j->n)
				cursor_start(&j->c[next]); /* prefetch */
			if (advance(c))
				heap_push(&h, c);
			else
				cursor_finish(c);
		}
		if (!h.n)
			break;
		struct cursor *c = heap_pop(&h);
		uint64_t limit = UINT64_MAX;
		if (h.n)
			limit = h.v[0]->e->seq;
		if (next < j->n && j->c[next].si->first_seq < limit)
			limit = j->c[next].si->first_seq;
		bool more;
		do {
			do_event(c);
			more = advance(c);
		} while (more && c->e->seq < limit);
		if (more)
			heap_push(&h, c);
		else
			cursor_finish(c);
	}
	if (j->ctx->stop) {
		/* drain what is in flight before freeing it */
		for (size_t i = 0; i < j->n; i++) {
			struct cursor *c = &j->c[i];
			pthread_mutex_lock(&j->lock);
			while (c->busy) {
				pthread_mutex_unlock(&j->lock);
				bool helped = mt_pool_help(j->pool);
				pthread_mutex_lock(&j->lock);
				if (!helped && c->busy)
					pthread_cond_wait(&j->cond, &j->lock);
			}
			pthread_mutex_unlock(&j->lock);
			if (c->r)
				mt_shard_reader_free(c->r);
			for (int k = 0; k < 2; k++)
				batch_free(&c->b[k]);
			mt_map_free(&c->stacks);
			mt_map_free(&c->mod_ids);
			free(c->mods);
			free(c->by_base);
		}
	}
	free(h.v);
	free(j->c);
	pthread_mutex_lock(&j->ctx->lock);
	mt_agg_merge(j->ctx->agg, a);
	pthread_mutex_unlock(&j->ctx->lock);
	mt_agg_destroy(a);
}

/* ---- the scan --------------------------------------------------------------------- */

static void scan_task(void *arg)
{
	struct shardin *s = arg;
	struct mt_shard_reader *r;
	const struct mt_shard_record *rec;
	const struct mt_shard_header *h;
	int rc;

	s->first_seq = UINT64_MAX;
	if ((rc = mt_shard_reader_new(&r)) < 0) {
		mt_ingest_problem(s->ctx, s->in->path, "out of memory");
		return;
	}
	if ((rc = mt_shard_open(r, s->in->path)) < 0) {
		mt_ingest_problem(s->ctx, s->in->path, "%s", mt_shard_error(r));
		mt_shard_reader_free(r);
		return;
	}
	while ((rc = mt_shard_next(r, &rec)) == 0 && rec) {
		if ((rec->kind == MT_REC_ALLOC || rec->kind == MT_REC_FREE) &&
		    s->first_seq == UINT64_MAX)
			s->first_seq = rec->kind == MT_REC_ALLOC ? rec->u.alloc.seq
								  : rec->u.free.seq;
		if (s->first_seq != UINT64_MAX && mt_shard_header(r))
			break;
	}
	h = mt_shard_header(r);
	if (h) {
		hcopy_make(&s->hdr, h);
		s->have_hdr = true;
		s->ok = true;
	} else if (rc < 0) {
		mt_ingest_problem(s->ctx, s->in->path, "%s", mt_shard_error(r));
	} else {
		char d[512];
		mt_shard_describe(r, d, sizeof(d));
		mt_ingest_problem(s->ctx, s->in->path,
				  "no header record (its first chunk is lost?)%s%s: skipped",
				  d[0] ? "; " : "", d);
	}
	mt_shard_reader_free(r);
}

/* A shard's identity within its process: its thread, the header's shard
 * number and its first event number.  (The shard number alone is not
 * unique: libmtalloc writes the counter's value when it encodes the
 * header, so threads that start together share it.)  A copy of a shard
 * has the same identity; two different shards cannot. */
static uint64_t shard_id(const struct shardin *s)
{
	const struct mt_shard_header *h = &s->hdr.h;
	uint64_t id = mt_mix64(h->tid ^ mt_mix64(h->shard_seq + 0x5bd1e995ull));
	id = mt_mix64(id ^ s->first_seq);
	return id == UINT64_MAX ? 0 : id;
}

static bool same_proc(const struct mt_shard_header *a, const struct mt_shard_header *b)
{
	return a->pid == b->pid && a->start_realtime_ns == b->start_realtime_ns &&
	       !strcmp(a->host.ptr ? a->host.ptr : "", b->host.ptr ? b->host.ptr : "");
}

void mt_ingest(struct mt_ingest_ctx *ctx, const struct mt_inputs *in,
	       unsigned jobs)
{
	struct mt_pool *pool = mt_pool_new(jobs > 1 ? jobs - 1 : 0);
	struct shardin *si = mt_xcalloc(in->n + 1, sizeof(*si));
	size_t nsi = 0;

	/* 1. scan */
	for (size_t i = 0; i < in->n; i++) {
		if (in->v[i].kind != MT_IN_SHARD)
			continue;
		si[nsi].in = &in->v[i];
		si[nsi].ctx = ctx;
		mt_pool_submit(pool, scan_task, &si[nsi], false);
		nsi++;
	}
	mt_pool_wait(pool);

	/* 2. group by process, in input order; drop duplicates */
	struct job *jobsv = mt_xcalloc(nsi + 1, sizeof(*jobsv));
	size_t njobs = 0;
	struct mt_map gidx = { 0 };
	for (size_t i = 0; i < nsi && !ctx->stop; i++) {
		struct shardin *s = &si[i];
		if (!s->ok)
			continue;
		const struct mt_shard_header *h = &s->hdr.h;
		const char *host = h->host.ptr ? h->host.ptr : "";
		uint64_t k = mt_mix64(mt_hash_bytes(host, strlen(host), h->pid) ^
				      h->start_realtime_ns);
		uint32_t g;
		while ((g = mt_map_get(&gidx, k)) != UINT32_MAX &&
		       !same_proc(&jobsv[g].shards[0]->hdr.h, h))
			k = mt_mix64(k + 1);
		if (g == UINT32_MAX) {
			g = (uint32_t)njobs++;
			mt_map_put(&gidx, k, g);
			jobsv[g].ctx = ctx;
			jobsv[g].pool = pool;
		}
		struct job *j = &jobsv[g];
		bool dup = false;
		s->id = shard_id(s);
		for (size_t u = 0; u < j->n && !dup; u++)
			if (j->shards[u]->id == s->id) {
				mt_ingest_problem(ctx, s->in->path,
						  "the same shard (thread %llu of process %llu) as %s: skipped",
						  (unsigned long long)h->tid,
						  (unsigned long long)h->pid,
						  j->shards[u]->in->path);
				dup = true;
			}
		if (dup)
			continue;
		j->shards = mt_xrealloc(j->shards, (j->n + 1) * sizeof(*j->shards));
		j->shards[j->n++] = s;
		ctx->readable++;
	}
	mt_map_free(&gidx);

	/* 3. one job per process */
	for (size_t g = 0; g < njobs; g++) {
		struct job *j = &jobsv[g];
		pthread_mutex_init(&j->lock, NULL);
		pthread_cond_init(&j->cond, NULL);
		j->batch_events = j->n > 64 ? 1024 : 4096;
		mt_pool_submit(pool, job_task, j, false);
	}
	mt_pool_wait(pool);
	for (size_t g = 0; g < njobs; g++) {
		pthread_mutex_destroy(&jobsv[g].lock);
		pthread_cond_destroy(&jobsv[g].cond);
		free(jobsv[g].shards);
	}
	free(jobsv);
	for (size_t i = 0; i < nsi; i++)
		free(si[i].hdr.blob);
	free(si);
	mt_pool_free(pool);

	/* 4. aggregate files, in order */
	for (size_t i = 0; i < in->n && !ctx->stop; i++) {
		struct mt_agg x;
		char err[512], what[256];
		if (in->v[i].kind != MT_IN_AGG)
			continue;
		mt_agg_init(&x);
		if (mt_aggfile_read(&x, in->v[i].path, err, sizeof(err)) < 0) {
			mt_ingest_problem(ctx, in->v[i].path, "%s", err);
		} else if (mt_agg_overlaps(ctx->agg, &x, what, sizeof(what))) {
			mt_ingest_problem(ctx, in->v[i].path,
					  "holds %s, which is already counted: skipped",
					  what);
		} else {
			mt_agg_merge(ctx->agg, &x);
			ctx->readable++;
		}
		__atomic_add_fetch(&ctx->done_bytes, in->v[i].size, __ATOMIC_RELAXED);
		mt_agg_destroy(&x);
	}
}
