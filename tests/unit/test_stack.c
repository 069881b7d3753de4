/* Stack capture: the call-frame rules of src/track/unwind_cfi.c equal
 * libunwind's.  The test links unwind_cfi.c and steps libunwind itself
 * over a synthetic stack at thousands of addresses of libc and of this
 * program. */
#include "config.h"

#define UNW_LOCAL_ONLY
#include <criterion/criterion.h>
#include <libunwind.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "testutil.h"
#include "track/unwind.h"

/* ---- rules against libunwind's own step ---- */

#define WORDS 32768             /* the synthetic stack (words) */
#define AT_RSP 64               /* where rsp points (word) */
#define AT_RBP (WORDS / 2)      /* where rbp points (word) */
#define MARK 0x7e0000000000ull  /* word i holds MARK + 8 * i */

static uintptr_t fake[WORDS];

__attribute__((noinline)) static void entry_of_a_function(void)
{
	__asm__ volatile("");
}

/* libunwind's step from the frame that returns to pc, on fake: the first
 * frame is a function's entry (CFA = rsp + 8) whose return address is pc.
 * Returns unw_step's result for pc's frame, with the registers after it. */
static int libunwind_step(uintptr_t pc, uintptr_t *ip, uintptr_t *sp, uintptr_t *bp)
{
	unw_context_t uc;
	unw_cursor_t cur;
	unw_word_t v;

	for (unsigned i = 0; i < WORDS; i++)
		fake[i] = MARK + 8 * i;
	fake[AT_RSP] = pc;
	unw_getcontext(&uc);
	uc.uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)entry_of_a_function;
	uc.uc_mcontext.gregs[REG_RSP] = (greg_t)(uintptr_t)&fake[AT_RSP];
	uc.uc_mcontext.gregs[REG_RBP] = (greg_t)(uintptr_t)&fake[AT_RBP];
	/* As for a signal frame: the first frame is looked up at its ip, not
	 * at ip - 1 as a return address would be. */
	cr_assert_eq(unw_init_local2(&cur, &uc, UNW_INIT_SIGNAL_FRAME), 0);
	cr_assert_gt(unw_step(&cur), 0);
	unw_get_reg(&cur, UNW_REG_IP, &v);
	cr_assert_eq(v, pc);
	int r = unw_step(&cur);
	unw_get_reg(&cur, UNW_REG_IP, &v);
	*ip = v;
	unw_get_reg(&cur, UNW_REG_SP, &v);
	*sp = v;
	unw_get_reg(&cur, UNW_X86_64_RBP, &v);
	*bp = v;
	return r;
}

struct tally {
	unsigned step, last, slow, big; /* rules met, by kind */
};

/* Compares our rule for return address pc with libunwind's step. */
static void compare_at(uintptr_t pc, struct tally *t)
{
	struct mt_cfi_rule rule;
	struct mt_cfi_gen gen;
	uintptr_t ip, sp, bp;

	mt_cfi_rule_for(pc, true, &rule, &gen);
	if (rule.how == MT_CFI_SLOW) {
		t->slow++;
		return;
	}
	if (rule.how == MT_CFI_LAST) {
		t->last++;
		cr_assert_eq(libunwind_step(pc, &ip, &sp, &bp), 0,
			     "%lx: ours is the last frame, libunwind goes on",
			     (unsigned long)pc);
		return;
	}
	uintptr_t base = (rule.how & MT_CFI_RBP_BASE) ? (uintptr_t)&fake[AT_RBP]
						      : (uintptr_t)&fake[AT_RSP + 1];
	uintptr_t cfa = base + (uintptr_t)(intptr_t)rule.cfa_off;
	if (cfa < (uintptr_t)&fake[40] || cfa > (uintptr_t)&fake[WORDS - 8]) {
		t->big++;
		return; /* outside the synthetic stack */
	}
	t->step++;
	int r = libunwind_step(pc, &ip, &sp, &bp);
	cr_assert_gt(r, 0, "%lx: libunwind stops, ours goes on", (unsigned long)pc);
	cr_assert_eq(sp, cfa, "%lx: CFA %lx, libunwind's %lx", (unsigned long)pc,
		     (unsigned long)cfa, (unsigned long)sp);
	cr_assert_eq(ip, *(const uintptr_t *)(cfa - 8), "%lx: return address",
		     (unsigned long)pc);
	uintptr_t rbp = (rule.how & MT_CFI_RBP_SAVED)
		? *(const uintptr_t *)(cfa + rule.rbp_off) : (uintptr_t)&fake[AT_RBP];
	cr_assert_eq(bp, rbp, "%lx: rbp %lx, libunwind's %lx", (unsigned long)pc,
		     (unsigned long)rbp, (unsigned long)bp);
}

struct object {
	const char *want;    /* a substring of its path; "" for the program */
	const uint8_t *hdr;  /* its .eh_frame_hdr */
};

static int find_hdr(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct object *o = arg;

	(void)size;
	if (*o->want ? !strstr(info->dlpi_name, o->want) : *info->dlpi_name != '\0')
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_GNU_EH_FRAME)
			o->hdr = (const uint8_t *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
	return o->hdr != NULL;
}

/* Every stride-th address from the start of each FDE to the next one's
 * (the binary-search table gives the starts). */
static void compare_object(const char *want, unsigned stride, struct tally *t)
{
	struct object o = { want, NULL };
	int32_t start, next;
	uint32_t count;

	dl_iterate_phdr(find_hdr, &o);
	cr_assert(o.hdr, "no .eh_frame_hdr in %s", *want ? want : "the program");
	/* version 1, eh_frame_ptr sdata4 pcrel, fde_count udata4, table
	 * datarel sdata4: what binutils writes. */
	cr_assert(o.hdr[0] == 1 && o.hdr[1] == 0x1b && o.hdr[2] == 0x03 && o.hdr[3] == 0x3b);
	memcpy(&count, o.hdr + 8, 4);
	const uint8_t *table = o.hdr + 12;
	for (uint32_t i = 0; i + 1 < count; i++) {
		memcpy(&start, table + 8 * i, 4);
		memcpy(&next, table + 8 * (i + 1), 4);
		for (int32_t a = start; a < next; a += (int32_t)stride)
			compare_at((uintptr_t)(o.hdr + a) + 1, t);
	}
}

Test(unwind, rules_equal_libunwinds_steps_over_libc_and_this_program, .timeout = 300)
{
	struct tally t = { 0 };

	compare_object("", 3, &t);
	compare_object("libc.so.6", 29, &t);
	cr_log_info("rules: %u standard, %u last, %u left to libunwind, %u too "
		    "big to check", t.step, t.last, t.slow, t.big);
	cr_expect_gt(t.step, 20000);
	cr_expect_gt(t.last, 0);
}
