/* The stack walk behind unwind:libunwind (unwind.h, doc/design.md "Stacks").
 *
 * Rules.  Each thread keeps the rules of the return addresses it has met
 * in an open-addressing table (16 bytes a rule, 256 slots growing to
 * 16,384, so at most 256 KiB, through jemalloc under the guard, freed at
 * thread exit).  A return address met for the first time costs one
 * dl_iterate_phdr and a run of its FDE (unwind_cfi.c); after that a frame
 * costs a probe, one or two loads from the stack and a few compares.
 *
 * The last walk.  Each thread also keeps the frames of its last walk:
 * return address, rsp, rbp and rule of each.  Once a walk reaches a frame
 * whose return address, rsp and rbp are those of a frame of the last walk,
 * the rest of the last walk is the rest of this one as long as the words it
 * read still hold what they held: the same registers and the same rule
 * give the same CFA, so finding the recorded return address (and saved
 * rbp) at that CFA proves the next frame equal, and so on.  Such a frame
 * costs a few compares; the first difference resumes the walk by the rules
 * from the last frame proven.  When the walk ends in frames of the last
 * walk, those stay where they are and only the frames before them are
 * written next to them (the record slides within a buffer twice its size).
 *
 * Staleness.  Rules of objects loaded after start-up may go stale: the
 * object can be unloaded and another one mapped at the same address.
 * Objects loaded at start-up can never be unloaded, so their rules are kept
 * for good; a walk that meets a rule of any other object (in the table or
 * in the last walk) reads the loader's counts of loads and unloads once
 * (dl_iterate_phdr), and if they moved since the table was last checked,
 * those rules and the last walk are dropped before anything is used.
 *
 * A frame that is not standard (unwind_cfi.c), or a CFA that would leave
 * the thread's stack, sends the whole capture to libunwind. */
#include "config.h"

#include "unwind.h"

#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <string.h>

#include "backend/backend.h"

#define RA_MIN 0x4000      /* libunwind's trace stops below this address */
#define SLOTS_MIN 256      /* first table of a thread (rules) */
#define SLOTS_MAX 16384    /* largest table (rules); full: start over */
#define PERM_MAX 512       /* executable segments noted at start-up */
#define RUN_MIN 8          /* frames ahead in the last walk worth following */

/* Flags next to MT_CFI_* in `how`. */
#define TRANSIENT 16       /* a rule of an object loaded after start-up */
#define NORULE 32          /* a recorded frame the walk did not step from */
#define EMPTY 64           /* a free slot of the table */

/* The rule's saved-rbp offset and how, as one word (slots and frames
 * share it, so that recording a frame copies it whole). */
struct tail {
	int16_t rbp_off;    /* with MT_CFI_RBP_SAVED in how (bytes) */
	uint8_t how;        /* MT_CFI_*, TRANSIENT, NORULE, EMPTY */
};

struct slot {
	uintptr_t ra;       /* return address; 0 for a free slot */
	int32_t cfa_off;    /* struct mt_cfi_rule (bytes) */
	struct tail t;
};

/* A recorded frame: its return address, registers and rule. */
struct frame {
	uintptr_t ra, rsp, rbp;
	struct tail t;
};

struct cache {
	uint32_t mask;           /* slots - 1 */
	uint32_t used;           /* slots taken */
	unsigned shift;          /* 60 - log2(slots): the hash gives bytes */
	uintptr_t off_mask;      /* (slots - 1) * sizeof(struct slot) */
	struct mt_cfi_gen gen;   /* loader counts the transient rules agree with */
	/* The last walk: frames [base, base + n) of buf[last], innermost
	 * first; its last frame has MT_CFI_LAST or NORULE, and the rsp of
	 * frame base + n is UINTPTR_MAX (the end for a search by rsp).
	 * n = 0: none.  Each buffer holds 2 * cap + 2 frames. */
	unsigned cap;            /* frames a walk may have */
	unsigned last, base, n;
	struct frame *buf[2];    /* one allocation, buf[0] first */
	struct slot slot[];
};

/* This thread's rules: NULL before its first walk, DEAD after its exit
 * destructor (libunwind then does the rest). */
#define DEAD ((struct cache *)1)
static __thread struct cache *tls_cache __attribute__((tls_model("initial-exec")));

static struct range {
	uintptr_t lo, hi;
} perm[PERM_MAX];            /* executable segments of start-up objects */
static unsigned nperm;
static struct mt_cfi_rule here; /* the walker's own frame at mt_unwind_here */
static bool ready;           /* set once by mt_unwind_init */
static pthread_key_t key;    /* frees a thread's table at exit */

/* Where a search by rsp starts when there is no last walk. */
static const struct frame no_frames = { .rsp = UINTPTR_MAX };

/* The address in mt_unwind_walk where it reads rsp and rbp. */
extern const char mt_unwind_here[] MT_HIDDEN;

static int note_permanent(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && nperm < PERM_MAX) {
			perm[nperm].lo = info->dlpi_addr + ph->p_vaddr;
			perm[nperm++].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
		}
	}
	return 0;
}

static bool permanent(uintptr_t ip)
{
	for (unsigned i = 0; i < nperm; i++)
		if (ip - perm[i].lo < perm[i].hi - perm[i].lo)
			return true;
	return false;
}

static void cache_free(void *arg)
{
	struct cache *c = arg;

	tls_cache = DEAD;
	mtje_free(c->buf[0]);
	mtje_free(c);
}

void mt_unwind_init(void)
{
	struct mt_cfi_gen gen;

	/* At the process's first allocation every object in the list was
	 * loaded at start-up: dlopen allocates its link map before it adds
	 * the object to the list. */
	dl_iterate_phdr(note_permanent, NULL);
	mt_cfi_rule_for((uintptr_t)mt_unwind_here, false, &here, &gen);
	if (here.how >= MT_CFI_LAST)
		return; /* libunwind for every stack */
	if (pthread_key_create(&key, cache_free) == 0)
		ready = true;
}

static bool same_gen(const struct mt_cfi_gen *a, const struct mt_cfi_gen *b)
{
	return a->adds == b->adds && a->subs == b->subs;
}

/* ---- the table of rules ---- */

/* ra's slot in the table at `slots` (shift and off_mask as in struct
 * cache), or the free slot where it would go. */
static inline struct slot *probe_in(struct slot *slots, unsigned shift,
				    uintptr_t off_mask, uintptr_t ra)
{
	uintptr_t off = (uintptr_t)((ra * 0x9e3779b97f4a7c15ull) >> shift) &
			~(uintptr_t)(sizeof(struct slot) - 1);

	for (;;) {
		struct slot *s = (struct slot *)((char *)slots + off);
		if (MT_LIKELY(s->ra == ra) || !s->ra)
			return s;
		off = (off + sizeof(struct slot)) & off_mask;
	}
}

static struct slot *probe(struct cache *c, uintptr_t ra)
{
	return probe_in(c->slot, c->shift, c->off_mask, ra);
}

/* A new table of `slots` slots holding old's rules (the transient ones,
 * the permanent ones, both or none) in place of old, with old's frames;
 * NULL if out of memory (old is kept).  Dropping the transient rules
 * drops the last walk too. */
static struct cache *rebuild(struct cache *old, uint32_t slots,
			     const struct mt_cfi_gen *gen, bool keep_transient,
			     bool keep_permanent)
{
	struct cache *c = mtje_calloc(1, sizeof(*c) + slots * sizeof(struct slot));

	if (!c)
		return NULL;
	c->mask = slots - 1;
	c->shift = 60 - (unsigned)__builtin_ctz(slots);
	c->off_mask = (uintptr_t)(slots - 1) * sizeof(struct slot);
	c->gen = *gen;
	for (uint32_t i = 0; i < slots; i++)
		c->slot[i].t.how = EMPTY;
	if (!old) {
		if (pthread_setspecific(key, c)) {
			mtje_free(c);
			return NULL;
		}
		tls_cache = c;
		return c;
	}
	for (uint32_t i = 0; i <= old->mask; i++) {
		const struct slot *s = &old->slot[i];
		if (s->ra && ((s->t.how & TRANSIENT) ? keep_transient : keep_permanent)) {
			*probe(c, s->ra) = *s;
			c->used++;
		}
	}
	c->cap = old->cap;
	c->last = old->last;
	c->base = old->base;
	c->n = keep_transient ? old->n : 0; /* the frames stay readable */
	c->buf[0] = old->buf[0];
	c->buf[1] = old->buf[1];
	pthread_setspecific(key, c);
	mtje_free(old);
	tls_cache = c;
	return c;
}

/* Gives c frame buffers for walks of up to `frames` frames (and no last
 * walk); false if out of memory. */
static MT_COLD bool frames_room(struct cache *c, unsigned frames)
{
	size_t n = 2 * (size_t)frames + 2;
	struct frame *f = mtje_malloc(2 * n * sizeof(*f));

	if (!f)
		return false;
	mtje_free(c->buf[0]);
	c->buf[0] = f;
	c->buf[1] = f + n;
	c->cap = frames;
	c->last = 0;
	c->base = 0;
	c->n = 0;
	return true;
}

/* Reads the loader's counts (*checked: done in this walk); if they moved,
 * drops the transient rules and the last walk.  False if they moved (or
 * on failure). */
static MT_COLD bool check_gen(bool *checked)
{
	struct cache *c = tls_cache;
	struct mt_cfi_gen gen;

	mt_cfi_gen_now(&gen);
	*checked = true;
	if (same_gen(&gen, &c->gen))
		return true;
	rebuild(c, c->mask + 1, &gen, false, true);
	return false;
}

/* The slot for ra, filled or checked, for a walk that met it in s =
 * probe(c, ra): a free slot, or a transient rule while the loader's counts
 * were not yet read in this walk (*checked).  The table may be replaced:
 * tls_cache is the one to use after.  NULL if out of memory. */
static MT_COLD struct slot *refresh(struct cache *c, struct slot *s,
				    uintptr_t ra, bool *checked)
{
	struct mt_cfi_gen gen;
	struct mt_cfi_rule rule;

	if (s->ra == ra) { /* a transient rule, first met in this walk */
		if (check_gen(checked))
			return s;
		c = tls_cache;
		s = probe(c, ra);
	}
	mt_cfi_rule_for(ra, true, &rule, &gen);
	*checked = true;
	if (!same_gen(&gen, &c->gen)) {
		if (!(c = rebuild(c, c->mask + 1, &gen, false, true)))
			return NULL;
		s = probe(c, ra);
	}
	if (2 * (c->used + 1) > c->mask + 1) {
		uint32_t slots = c->mask + 1;
		/* Grow by 4; a full largest table starts over. */
		c = slots < SLOTS_MAX ? rebuild(c, 4 * slots, &c->gen, true, true)
				      : rebuild(c, slots, &c->gen, false, false);
		if (!c)
			return NULL;
		s = probe(c, ra);
	}
	s->ra = ra;
	s->cfa_off = rule.cfa_off;
	s->t.rbp_off = rule.rbp_off;
	s->t.how = rule.how;
	if (!permanent(ra - 1))
		s->t.how |= TRANSIENT;
	c->used++;
	return s;
}

/* The thread's table (c, or a first one) with room for req's walk;
 * NULL if there is none. */
static MT_COLD struct cache *setup(struct cache *c, const struct mt_unwind_req *req)
{
	struct mt_cfi_gen gen;

	if (!ready)
		return NULL;
	if (!c) {
		mt_cfi_gen_now(&gen);
		if (!(c = rebuild(NULL, SLOTS_MIN, &gen, false, false)))
			return NULL;
	}
	if (req->raw_max > c->cap && !frames_room(c, req->raw_max))
		return NULL; /* the table is freed at thread exit */
	return c;
}

/* ---- recorded frames ---- */

/* Proves the frames after p, up to `stop`, for a walk at a frame equal
 * to *p: a frame is proven when the words its predecessor's rule read
 * (the return address, and the saved rbp) still hold what they held.
 * With out, stores each proven frame's return address there.  Returns the
 * last frame proven; *end when the walk ends there by its rule
 * (MT_CFI_LAST). */
static inline const struct frame *prove(const struct frame *p,
					const struct frame *stop,
					bool *checked, bool *end, uintptr_t *out)
{
	for (; p < stop; p++) {
		unsigned how = p->t.how;
		if (MT_UNLIKELY(how & (MT_CFI_LAST | TRANSIENT | NORULE))) {
			if ((how & NORULE) ||
			    ((how & TRANSIENT) && !*checked && !check_gen(checked)))
				break;
			if (how & MT_CFI_LAST) {
				*end = true;
				break;
			}
		}
		uintptr_t next = p[1].rsp, next_ra = p[1].ra;
		if (*(const uintptr_t *)(next - 8) != next_ra ||
		    ((how & MT_CFI_RBP_SAVED) &&
		     *(const uintptr_t *)(next + p->t.rbp_off) != p[1].rbp))
			break;
		if (out)
			*out++ = next_ra;
	}
	return p;
}

/* A walk from req's start frame that is the first frame of the last walk
 * again, when that walk ended by its outermost frame's rule or at a
 * return address below RA_MIN (not cut short) and every rule in it is
 * permanent: the whole of it is proven as prove() does, and its return
 * addresses go to req->pcs.  A sampling loop meets this case most: about
 * 15 instructions a frame, against 60 for a step by the rules. */
int mt_unwind_again(const struct mt_unwind_req *req)
{
	const struct cache *c = tls_cache;

	if (MT_UNLIKELY((uintptr_t)c <= (uintptr_t)DEAD) || !c->n)
		return -1;
	const struct frame *p = c->buf[c->last] + c->base, *e = p + c->n - 1;
	if (c->n > req->max || p->ra != req->start_ra || p->rsp != req->start_rsp ||
	    p->rbp != req->start_rbp)
		return -1;
	unsigned end = e->t.how;
	if ((end & MT_CFI_LAST) ? (end & TRANSIENT) : !(end & NORULE) || e->ra >= RA_MIN)
		return -1;
	/* The frames' reads stay between the start frame (below which our
	 * own frames are mapped) and the stack's end. */
	const uintptr_t lo = p->rsp, span = req->stack_end - lo;
	uintptr_t *o = req->pcs;
	for (; p < e; p++) {
		unsigned how = p->t.how;
		uintptr_t next = p[1].rsp;
		if ((how & (TRANSIENT | NORULE | MT_CFI_LAST)) || next - lo > span ||
		    *(const uintptr_t *)(next - 8) != p[1].ra ||
		    ((how & MT_CFI_RBP_SAVED) &&
		     *(const uintptr_t *)(next + p->t.rbp_off) != p[1].rbp))
			return -1;
		*o++ = p->ra;
	}
	if (end & MT_CFI_LAST)
		*o++ = e->ra;
	return (int)(o - req->pcs);
}

/* ---- the walk ---- */

__attribute__((noinline, noclone)) int
mt_unwind_walk(const struct mt_unwind_req *req)
{
	uintptr_t ra, rsp, rbp; /* the frame reached */
	bool checked = false;   /* the loader's counts were read in this walk */
	/* Below every CFA: with it in our frame, a CFA of ours or of our
	 * callers is at least rsp + 8 - MT_CFI_RBP_OFF_MIN, and the reads
	 * of a step never go below rsp. */
	char pad[-MT_CFI_RBP_OFF_MIN];

	__asm__ volatile("" : : "r"(pad) : "memory");
	/* The rule at this label (mt_unwind_init) takes these rsp and rbp to
	 * our caller's frame. */
	__asm__ volatile(".globl mt_unwind_here\n\t.hidden mt_unwind_here\n"
			 "mt_unwind_here:\n\tmov %%rsp, %0\n\tmov %%rbp, %1"
			 : "=r"(rsp), "=r"(rbp));
	struct cache *c = tls_cache;
	if (MT_UNLIKELY(c == DEAD || !req->max || req->stack_end <= rsp ||
			req->stack_end - rsp < 8 - MT_CFI_RBP_OFF_MIN))
		return -1;
	if (MT_UNLIKELY(!c || req->raw_max > c->cap) && !(c = setup(c, req)))
		return -1;

	/* A CFA must be in [lo, lo + span]: its reads stay in the stack. */
	const uintptr_t lo = rsp + 8 - MT_CFI_RBP_OFF_MIN;
	const uintptr_t span = req->stack_end - lo;
	struct slot *slots = c->slot;
	unsigned shift = c->shift;
	uintptr_t off_mask = c->off_mask;

	uintptr_t cfa;
	if (req->start_rsp) {
		/* Our frames are behind: the walk begins at our caller's. */
		if (req->start_rsp - lo > span)
			return -1;
		ra = req->start_ra;
		rsp = req->start_rsp;
		rbp = req->start_rbp;
	} else {
		cfa = ((here.how & MT_CFI_RBP_BASE) ? rbp : rsp) + here.cfa_off;
		if (cfa - lo > span)
			return -1;
		ra = *(const uintptr_t *)(cfa - 8);
		if (here.how & MT_CFI_RBP_SAVED)
			rbp = *(const uintptr_t *)(cfa + here.rbp_off);
		rsp = cfa;
	}

	/* The last walk in lf; this one goes to rec, unless it ends in frames
	 * of the last walk. */
	struct frame *lf = c->buf[c->last];
	struct frame *const rec0 = c->buf[!c->last] + c->cap, *rec = rec0;
	const struct frame *scan = c->n ? lf + c->base : &no_frames;
	/* Joins past here would not pay for themselves. */
	const struct frame *scan_end = c->n > RUN_MIN ? lf + c->base + c->n - RUN_MIN : lf;
	uintptr_t *out = req->pcs, *out_end = out + req->max;
	unsigned left = req->raw_max - 1; /* frames allowed after this one
					   * (UINT_MAX once out_end says it) */
	const uintptr_t self_lo = req->self_lo, self_span = req->self_hi - self_lo;
	bool skipping = true;         /* still in the frames of libmtalloc */
	unsigned end_how = NORULE;    /* how the last frame is kept */
	struct slot *s;
	unsigned how;

	/* One step from (ra, rsp, rbp) by the rule of ra, the frame recorded;
	 * the walk ends (done) at the last frame or a return address below
	 * RA_MIN, as libunwind's trace does. */
#define STEP_BY_RULE() do { \
		s = probe_in(slots, shift, off_mask, ra); \
		how = s->t.how; \
		if (MT_UNLIKELY(how & (MT_CFI_LAST | MT_CFI_SLOW | TRANSIENT | EMPTY))) { \
			if ((how & EMPTY) || ((how & TRANSIENT) && !checked)) { \
				if (!(s = refresh(c, s, ra, &checked))) \
					return -1; \
				how = s->t.how; \
			} \
			if (tls_cache != c) { /* replaced: a new table */ \
				c = tls_cache; \
				slots = c->slot; \
				shift = c->shift; \
				off_mask = c->off_mask; \
			} \
			if (!c->n) /* dropped with the transient rules */ \
				scan = &no_frames; \
			if (how & MT_CFI_SLOW) \
				return -1; \
			if (how & MT_CFI_LAST) { \
				end_how = how; \
				goto done; \
			} \
		} \
		rec->ra = ra; \
		rec->rsp = rsp; \
		rec->rbp = rbp; \
		rec->t = s->t; \
		rec++; \
		cfa = ((how & MT_CFI_RBP_BASE) ? rbp : rsp) + (intptr_t)s->cfa_off; \
		if (MT_UNLIKELY(cfa - lo > span)) \
			return -1; \
		ra = *(const uintptr_t *)(cfa - 8); \
		if (how & MT_CFI_RBP_SAVED) \
			rbp = *(const uintptr_t *)(cfa + (intptr_t)s->t.rbp_off); \
		rsp = cfa; \
		if (ra < RA_MIN) \
			goto done; \
	} while (0)

	/* Our caller's frame where the last walk had it: all of it may be
	 * the same.  (Frames of libmtalloc below it sit at fixed distances
	 * from it: they can match only if it does.)  A walk from the start
	 * frame keeps its first frame and looks for the last walk after. */
	if (!req->start_rsp && scan->rsp == rsp && scan->ra == ra && scan->rbp == rbp)
		goto along;
ours:
	/* libunwind's return addresses in libmtalloc: walked, not kept. */
	while (ra - self_lo < self_span) {
		if (!left--)
			goto done;
		STEP_BY_RULE();
	}
	skipping = false;
	if (left < (size_t)(out_end - out) - 1)
		out_end = out + left + 1;
	left = UINT_MAX;
	/* The rest: kept. */
	for (;;) {
		*out++ = ra;
		if (out == out_end)
			goto done;
	kept:
		if (MT_UNLIKELY(scan->rsp <= rsp)) {
			while (scan->rsp < rsp && scan < scan_end)
				scan++;
			if (scan >= scan_end)
				scan = &no_frames;
			else if (scan->rsp == rsp && scan->ra == ra && scan->rbp == rbp)
				goto along;
		}
		STEP_BY_RULE();
	}

along: {
	/* Along the last walk from its frame k, equal to ours. */
	const struct frame *p = scan, *r = scan;
	unsigned k = (unsigned)(p - lf), m;
	bool end = false, stop = false;
	if (skipping) {
		/* Frames ahead in libmtalloc: proven, not kept (counted all
		 * the same). */
		const struct frame *q = p, *most = p + left;
		while (q < most && !(q->t.how & (NORULE | MT_CFI_LAST)) &&
		       q[1].ra - self_lo < self_span)
			q++;
		r = prove(p, q, &checked, &end, NULL);
		left -= (unsigned)(r - p);
		if (r != q)
			p = NULL; /* they differ at r */
	}
	unsigned most = left;
	if ((size_t)(out_end - out) < most)
		most = (unsigned)(out_end - out);
	if (p && most) {
		/* Kept: proven and stored at once. */
		const struct frame *r2 = prove(r, r + most, &checked, &end, out);
		unsigned n = (unsigned)(r2 - r);
		if (n && r2->ra < RA_MIN) {
			stop = true; /* libunwind ends it there */
			n--;
		}
		out += n;
		left -= n;
		if (n && skipping) {
			skipping = false;
			if (left < (size_t)(out_end - out))
				out_end = out + left;
			left = UINT_MAX;
		}
		r = r2;
	}
	if (tls_cache != c) { /* the loader moved */
		c = tls_cache;
		slots = c->slot;
		shift = c->shift;
		off_mask = c->off_mask;
	}
	m = (unsigned)(r - lf);
	bool full = !stop && (out == out_end || !left);
	if (full || stop || end) {
		/* The walk ends at frame m of the last walk. */
		if (!full && end)
			end_how = lf[m].t.how;
		unsigned i = (unsigned)(rec - rec0);
		if (c->n && k >= i) {
			/* Keep them; ours go before them. */
			if (i)
				memcpy(lf + k - i, rec0, i * sizeof(*rec));
			lf[m].t.how = (uint8_t)end_how;
			lf[m + 1].rsp = UINTPTR_MAX;
			c->base = k - i;
			c->n = m - c->base + 1;
			return (int)(out - req->pcs);
		}
	}
	memcpy(rec, lf + k, (m - k) * sizeof(*rec));
	rec += m - k;
	ra = lf[m].ra;
	rsp = lf[m].rsp;
	rbp = lf[m].rbp;
	if (full || stop || end)
		goto done;
	scan = c->n && lf + m + 1 < scan_end ? lf + m + 1 : &no_frames;
	if (skipping)
		goto ours;
	goto kept;
	}
#undef STEP_BY_RULE

done:
	/* This walk becomes the last walk: its frames, then the one it
	 * stopped at (with its rule if that is MT_CFI_LAST). */
	rec->ra = ra;
	rec->rsp = rsp;
	rec->rbp = rbp;
	rec->t.rbp_off = 0;
	rec->t.how = (uint8_t)end_how;
	rec[1].rsp = UINTPTR_MAX;
	c = tls_cache;
	c->last = !c->last;
	c->base = c->cap;
	c->n = (unsigned)(rec - rec0) + 1;
	return (int)(out - req->pcs);
}
