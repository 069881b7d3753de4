/* The stack walk behind unwind:libunwind (unwind.h, doc/design.md "Stacks").
 *
 * Rules.  Each thread keeps the rules of the return addresses it has met
 * in an open-addressing table (16 bytes a rule, 256 slots growing to
 * 16,384, so at most 256 KiB, through jemalloc under the guard, freed at
 * thread exit).  A return address met for the first time costs one
 * dl_iterate_phdr and a run of its FDE (unwind_cfi.c); after that a frame
 * costs a probe, one or two loads from the stack and a few compares.
 *
 * Staleness.  Rules of objects loaded after start-up may go stale: the
 * object can be unloaded and another one mapped at the same address.
 * Objects loaded at start-up can never be unloaded, so their rules are kept
 * for good; a walk that meets a rule of any other object reads the
 * loader's counts of loads and unloads once (dl_iterate_phdr), and if they
 * moved since the table was last checked, those rules are dropped before
 * anything is used.
 *
 * A frame that is not standard (unwind_cfi.c), or a CFA that would leave
 * the thread's stack, sends the whole capture to libunwind. */
#include "config.h"

#include "unwind.h"

#include <link.h>
#include <pthread.h>
#include <string.h>

#include "backend/backend.h"

#define RA_MIN 0x4000      /* libunwind's trace stops below this address */
#define SLOTS_MIN 256      /* first table of a thread (rules) */
#define SLOTS_MAX 16384    /* largest table (rules); full: start over */
#define PERM_MAX 512       /* executable segments noted at start-up */

/* A flag next to MT_CFI_* in `how`: a rule of an object loaded after
 * start-up. */
#define TRANSIENT 16

struct slot {
	uintptr_t ra;       /* return address; 0 for a free slot */
	int32_t cfa_off;    /* struct mt_cfi_rule */
	int16_t rbp_off;
	uint8_t how;        /* MT_CFI_*, TRANSIENT */
	uint8_t unused;
};

struct cache {
	uint32_t mask;           /* slots - 1 */
	uint32_t used;           /* slots taken */
	unsigned shift;          /* 60 - log2(slots): the hash gives bytes */
	uintptr_t off_mask;      /* (slots - 1) * sizeof(struct slot) */
	struct mt_cfi_gen gen;   /* loader counts the transient rules agree with */
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
 * the permanent ones, both or none) in place of old; NULL if out of memory
 * (old is kept). */
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
		if (s->ra && ((s->how & TRANSIENT) ? keep_transient : keep_permanent)) {
			*probe(c, s->ra) = *s;
			c->used++;
		}
	}
	pthread_setspecific(key, c);
	mtje_free(old);
	tls_cache = c;
	return c;
}

/* Reads the loader's counts (*checked: done in this walk); if they moved,
 * drops the transient rules.  False if they moved (or on failure). */
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
	s->rbp_off = rule.rbp_off;
	s->how = rule.how;
	if (!permanent(ra - 1))
		s->how |= TRANSIENT;
	c->used++;
	return s;
}

/* The thread's table (c, or a first one); NULL if there is none. */
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
	return c;
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
	if (MT_UNLIKELY(!c) && !(c = setup(c, req)))
		return -1;

	/* A CFA must be in [lo, lo + span]: its reads stay in the stack. */
	const uintptr_t lo = rsp + 8 - MT_CFI_RBP_OFF_MIN;
	const uintptr_t span = req->stack_end - lo;
	struct slot *slots = c->slot;
	unsigned shift = c->shift;
	uintptr_t off_mask = c->off_mask;
	unsigned how = here.how;
	int32_t cfa_off = here.cfa_off;
	int16_t rbp_off = here.rbp_off;

	uintptr_t *out = req->pcs, *const out_end = out + req->max;
	unsigned left = req->raw_max;        /* frames allowed, this one too */
	const uintptr_t self_lo = req->self_lo, self_span = req->self_hi - self_lo;
	bool skipping = true;                /* leading frames in libmtalloc */

	for (;;) {
		/* One step, by the rule (how, cfa_off, rbp_off). */
		uintptr_t cfa = ((how & MT_CFI_RBP_BASE) ? rbp : rsp) + (intptr_t)cfa_off;
		if (MT_UNLIKELY(cfa - lo > span))
			return -1;
		ra = *(const uintptr_t *)(cfa - 8);
		if (how & MT_CFI_RBP_SAVED)
			rbp = *(const uintptr_t *)(cfa + (intptr_t)rbp_off);
		rsp = cfa;
		if (ra < RA_MIN)
			break; /* libunwind's trace stops there */

		/* libunwind's next return address: kept unless it leads in
		 * libmtalloc, and counted. */
		if (MT_UNLIKELY(skipping))
			skipping = ra - self_lo < self_span;
		if (!skipping) {
			*out++ = ra;
			if (out == out_end)
				break;
		}
		if (!--left)
			break;

		/* The rule of ra. */
		struct slot *s = probe_in(slots, shift, off_mask, ra);
		how = s->how;
		if (MT_UNLIKELY((how & (MT_CFI_LAST | MT_CFI_SLOW | TRANSIENT)) || !s->ra)) {
			if (!s->ra || ((how & TRANSIENT) && !checked)) {
				if (!(s = refresh(c, s, ra, &checked)))
					return -1;
				how = s->how;
			}
			if (tls_cache != c) { /* replaced: a new table */
				c = tls_cache;
				slots = c->slot;
				shift = c->shift;
				off_mask = c->off_mask;
			}
			if (how & MT_CFI_SLOW)
				return -1;
			if (how & MT_CFI_LAST)
				break;
		}
		cfa_off = s->cfa_off;
		rbp_off = s->rbp_off;
	}
	return (int)(out - req->pcs);
}
