/* Stack capture: by default the stacks libunwind's unw_backtrace gives
 * (works on binaries without frame pointers), walked from rules cached per
 * thread (unwind.c) and by libunwind itself for the frames those rules
 * cannot take; or a bounded frame-pointer walk (unwind:fp).  Frames inside
 * libmtalloc itself are dropped, so a stack starts at the caller of malloc
 * (or of operator new). */
#include "config.h"

#include "track.h"
#include "unwind.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <link.h>
#include <pthread.h>

#define SKIP_MAX 8 /* our own frames: entry point, slow path, capture */

static uintptr_t self_lo, self_hi; /* libmtalloc's address range */
static enum mt_unwind how;

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
	uintptr_t me = (uintptr_t)arg;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && me - lo < ph->p_memsz) {
			self_lo = lo;
			self_hi = lo + ph->p_memsz;
			return 1;
		}
	}
	return 0;
}

void mt_stack_init(const struct mt_conf *conf)
{
	how = conf->unwind;
	dl_iterate_phdr(find_self, (void *)(uintptr_t)mt_stack_init);
	if (how == MT_UNWIND_LIBUNWIND)
		mt_unwind_init();
}

/* The main thread's stack pointer at process entry (ld.so). */
extern void *__libc_stack_end;

/* A stack deeper than this below its end is not taken for one (bytes). */
#define STACK_SPAN_MAX ((uintptr_t)256 << 20)

/* Where the stack holding sp ends at the latest (everything from sp up
 * to it is mapped), or 0.  glibc puts a thread's descriptor right above
 * its stack (and its static TLS), also on a stack the program supplied;
 * the main thread's descriptor lies below its stack, which ends in the
 * page of __libc_stack_end.  An alternate signal stack or a fiber's lies
 * elsewhere, mostly far from both: 0 then, and libunwind walks it.
 * Nothing here allocates: pthread_getattr_np would, through the counted
 * malloc, at an arbitrary sample. */
static uintptr_t stack_end(uintptr_t sp)
{
	uintptr_t self = (uintptr_t)pthread_self();
	uintptr_t entry = (uintptr_t)__libc_stack_end;
	uintptr_t end = self > sp ? self : entry > sp ? (entry | 4095) + 1 : 0;

	return end - sp <= STACK_SPAN_MAX ? end : 0;
}

/* Walks frame pointers from our own frame up to `end`, the end of the
 * stack we run on (stack_end). */
static unsigned walk_fp(uintptr_t end, uintptr_t *pcs, unsigned max)
{
	uintptr_t *fp = __builtin_frame_address(0);
	uintptr_t lo = (uintptr_t)fp;
	unsigned n = 0;

	while (n < max && (uintptr_t)fp >= lo && (uintptr_t)fp + 16 <= end &&
	       !((uintptr_t)fp & 7)) {
		uintptr_t ret = fp[1], *next = (uintptr_t *)fp[0];
		if (!ret)
			break;
		pcs[n++] = ret;
		if (next <= fp)
			break; /* frames grow upwards: anything else is garbage */
		fp = next;
	}
	return n;
}

/* Finds our caller's frame for req by frame pointers, from fp, a frame of
 * libmtalloc on the way from mt_stack_capture to it: all of libmtalloc is built with them but its
 * entry points' fast paths, which have no frame and leave by a jump (so
 * the last frame of ours saved our caller's rbp).  Leaves req alone when
 * the chain looks wrong (the walk then steps through our frames). */
static void find_start(struct mt_unwind_req *req, const uintptr_t *fp)
{
	for (unsigned i = 0; i < SKIP_MAX; i++) {
		if (((uintptr_t)fp & 7) || (uintptr_t)fp + 16 > req->stack_end)
			return;
		uintptr_t ra = fp[1], next = fp[0];
		if (ra - self_lo >= self_hi - self_lo) {
			req->start_ra = ra;
			req->start_rsp = (uintptr_t)(fp + 2);
			req->start_rbp = next;
			return;
		}
		if (next <= (uintptr_t)fp)
			return;
		fp = (const uintptr_t *)next;
	}
}

unsigned mt_stack_capture(struct mt_tls *t, uintptr_t *pcs, unsigned max,
			  const void *frame)
{
	uintptr_t raw[256 + SKIP_MAX];
	unsigned want = max + SKIP_MAX, n, skip = 0;

	if (want > MT_ARRAY_SIZE(raw))
		want = MT_ARRAY_SIZE(raw);
	if (how == MT_UNWIND_LIBUNWIND) {
		uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
		struct mt_unwind_req req = {
			.pcs = pcs, .max = max, .raw_max = want,
			.self_lo = self_lo, .self_hi = self_hi,
			.stack_end = stack_end(sp),
		};
		find_start(&req, frame && (uintptr_t)frame > sp
					? frame : (const uintptr_t *)sp);
		int r = req.start_rsp ? mt_unwind_again(&req) : -1;
		if (r < 0)
			r = mt_unwind_walk(&req);
		if (r >= 0)
			return (unsigned)r;
	}
	uintptr_t end = how == MT_UNWIND_FP
		? stack_end((uintptr_t)__builtin_frame_address(0)) : 0;
	if (end) {
		n = walk_fp(end, raw, want);
	} else {
		int r = unw_backtrace((void **)raw, (int)want);
		n = r > 0 ? (unsigned)r : 0;
	}
	while (skip < n && raw[skip] - self_lo < self_hi - self_lo)
		skip++;
	n -= skip;
	if (n > max)
		n = max;
	for (unsigned i = 0; i < n; i++)
		pcs[i] = raw[skip + i];
	return n;
}
