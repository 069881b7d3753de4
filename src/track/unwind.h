/* The exact stack walker behind unwind:libunwind (doc/design.md, "Stacks").
 *
 * unwind_cfi.c derives, from an object's .eh_frame, the rule that takes a
 * frame to its caller's: where the CFA is (rsp or rbp plus an offset),
 * where the caller's rbp was saved; the return address is at CFA - 8.  It
 * answers MT_CFI_SLOW for anything else (signal frames, expressions, no
 * unwind information), and the caller then asks libunwind.  unwind.c keeps
 * those rules per thread, keyed by return address, and walks with them.
 * Only used by stack.c (and tests/unit/test_unwind.c). */
#ifndef MT_TRACK_UNWIND_H
#define MT_TRACK_UNWIND_H

#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"

/* How a rule moves to the caller's frame (MT_CFI_RBP_BASE and
 * MT_CFI_RBP_SAVED combine; LAST and SLOW stand alone). */
enum {
	MT_CFI_RBP_SAVED = 1, /* caller's rbp = *(CFA + rbp_off); else unchanged */
	MT_CFI_RBP_BASE = 2,  /* CFA = rbp + cfa_off; else rsp + cfa_off */
	MT_CFI_LAST = 4,      /* the outermost frame: libunwind stops here */
	MT_CFI_SLOW = 8,      /* only libunwind can take this step */
};

/* Saved-rbp offsets a rule may have (bytes below the CFA): the walk's
 * bounds check on the CFA then covers that read too. */
#define MT_CFI_RBP_OFF_MIN (-256)

struct mt_cfi_rule {
	int32_t cfa_off; /* CFA = base register + cfa_off (bytes) */
	int16_t rbp_off; /* with MT_CFI_RBP_SAVED: caller's rbp at CFA + rbp_off */
	uint8_t how;     /* MT_CFI_* */
};

/* The dynamic loader's counts of objects loaded and unloaded
 * (dl_phdr_info's dlpi_adds and dlpi_subs). */
struct mt_cfi_gen {
	unsigned long long adds, subs;
};

/* ---- unwind_cfi.c ---- */

/* The rule for the frame executing at `pc`: the call that returned to
 * return address pc (after_call, the rule at pc - 1, as libunwind looks up
 * every frame but the first), or the instruction at pc itself.  *gen gets
 * the loader's counts read in the same dl_iterate_phdr call.  Never
 * allocates; takes the loader's lock (dl_iterate_phdr). */
void mt_cfi_rule_for(uintptr_t pc, bool after_call, struct mt_cfi_rule *r,
		     struct mt_cfi_gen *gen);

/* The loader's counts now (dl_iterate_phdr, stopped at the first object). */
void mt_cfi_gen_now(struct mt_cfi_gen *gen);

/* ---- unwind.c ---- */

/* Notes the objects loaded at start-up (which can never be unloaded) and
 * the walker's own first rule; creates the thread key that frees each
 * thread's rules at exit.  Called once, with the guard set. */
void mt_unwind_init(void);

/* A walk asked of mt_unwind_walk. */
struct mt_unwind_req {
	uintptr_t *pcs;               /* out: return addresses, innermost first */
	unsigned max;                 /* room in pcs (count) */
	unsigned raw_max;             /* frames walked at most, skipped ones
				       * too (count, >= max) */
	uintptr_t self_lo, self_hi;   /* leading frames returning here: skipped */
	uintptr_t stack_end;          /* the stack is mapped from here down to
				       * the caller's frame (0: unknown) */
	/* The first frame outside libmtalloc, when the caller found it
	 * (start_rsp != 0): its return address, and the rsp and rbp it has
	 * there.  The walk then begins at it, and keeps at most max frames
	 * (raw_max, larger than max by more than the frames left behind,
	 * never binds then). */
	uintptr_t start_ra, start_rsp, start_rbp;
};

/* The caller's stack as stack.c makes it from unw_backtrace(raw, raw_max)
 * called at the same place: the return addresses libunwind would give,
 * the leading ones in [self_lo, self_hi) dropped, at most max kept.
 * Returns how many, or -1 when the walk needs libunwind (a frame it
 * cannot take, a CFA at or above stack_end, the thread exiting).
 * Called with the guard set: may allocate through jemalloc, and takes the
 * loader's lock for return addresses met for the first time and, once a
 * walk, for objects loaded after start-up. */
int mt_unwind_walk(const struct mt_unwind_req *req);

/* mt_unwind_walk's answer when req has a start frame and the stack from
 * there is that of the thread's last walk, which it then proves word by
 * word; -1 when it is not (or cannot tell), and mt_unwind_walk decides.
 * Never allocates, takes no lock. */
int mt_unwind_again(const struct mt_unwind_req *req);

#endif
