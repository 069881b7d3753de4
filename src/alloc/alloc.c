/* The exported allocation interface: the C malloc family, glibc's extras and
 * the twenty C++ operator new/delete variants.  This is the only file that
 * defines standard names; everything it calls is a hidden mt_ or mtje_
 * function, so interposition can never reroute the library's own calls.
 *
 * Every allocating entry point makes one combined test (n >= t->left) that
 * covers everything rare, then tail-calls jemalloc's own function.  Built
 * with -fno-builtin so that gcc cannot turn malloc+memset into calloc. */
#include "config.h"

#include <errno.h>
#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "common/common.h"
#include "track/track.h"

#define EXPORT __attribute__((visibility("default")))
#define MIN_ALIGN 16 /* what every plain allocation is aligned to (bytes) */

/* The fast path's one test: subtracts n from the thread's byte countdown
 * and says whether it ran out (one subtract to memory and one branch).
 * Everything rare makes `left` small: a new thread has 0. */
static inline bool countdown(size_t n)
{
	bool borrow;

	/* gcc 12 makes load/sub/store of __builtin_sub_overflow; this is one
	 * read-modify-write instruction. */
	__asm__("subq %[n], %[left]"
		: [left] "+m"(mt_tls.left), "=@ccc"(borrow)
		: [n] "r"(n));
	return borrow;
}

/* free()'s one test: NULL and sampled objects (the tracked range lies low
 * in the address space) are below the thread's flim, and every pointer is
 * while the thread is not set up or finished (track.h). */
static inline bool free_special(const void *p)
{
	return (uintptr_t)p < mt_tls.flim;
}

/* realloc's test for its old block (the thread's state is tested apart):
 * NULL and sampled objects are below mt_tracked_limit; nothing else is. */
static inline bool special(const void *p)
{
	return (uintptr_t)p < mt_tracked_limit;
}

/* ---- the slow path ------------------------------------------------------ */

/* Everything the countdown sends here: thread set-up and the sampling
 * decision.  Returns the sampled object, or NULL when this allocation is
 * not sampled (or the tracked arena cannot serve it): the caller then
 * allocates normally.  Allocations made while mtalloc itself runs (guard
 * set) are never sampled. */
static void *sample(struct mt_tls *t, size_t n, size_t align, bool zero,
		    const void *frame)
{
	bool omit;

	if (t->guard) {
		/* The countdown may have wrapped: decide afresh next time. */
		t->pending = 1;
		t->left = 0;
		return NULL;
	}
	if (MT_UNLIKELY(t->state != MT_THREAD_READY)) {
		mt_thread_slow(t);
		if (t->state != MT_THREAD_READY)
			return NULL; /* finished: counted as a late allocation */
	}
	double weight = mt_sample_decide(t, n, &omit);
	if (weight <= 0)
		return NULL;
	return mt_track_alloc(t, n, align < MIN_ALIGN ? MIN_ALIGN : align, zero,
			      weight, omit, frame);
}

static MT_COLD void *malloc_slow(size_t n)
{
	struct mt_tls *t = &mt_tls;
	void *p = sample(t, n, MIN_ALIGN, false, __builtin_frame_address(0));

	if (!p)
		p = mtje_malloc(n);
	mt_thread_count_alloc(t, p);
	return p;
}

static MT_COLD void *calloc_slow(size_t n)
{
	struct mt_tls *t = &mt_tls;
	void *p = sample(t, n, MIN_ALIGN, true, __builtin_frame_address(0));

	if (!p)
		p = mtje_calloc(1, n);
	mt_thread_count_alloc(t, p);
	return p;
}

/* Frees p, which is NULL, in the tracked range, a plain block of a thread
 * not set up yet (set it up, so that its frees count) or finished, or a
 * plain block below the bound of the tracked range. */
static MT_COLD void free_slow(void *p)
{
	struct mt_tls *t = &mt_tls;

	if (!p)
		return;
	if (t->state == MT_THREAD_NEW && !t->guard)
		mt_thread_slow(t);
	mt_thread_count_free(t, p);
	if (!mt_backend_tracked(p))
		mtje_free(p);
	else
		mt_track_free(t, p);
}

static size_t usable_size(void *p)
{
	if (!p)
		return 0;
	return mt_backend_tracked(p) ? mt_track_usable(p) : mtje_malloc_usable_size(p);
}

static unsigned lg_of(size_t pow2)
{
	return (unsigned)__builtin_ctzl(pow2);
}

/* An aligned allocation with glibc's memalign rules: alignments up to 16
 * are plain allocations, others are rounded up to a power of two, and one
 * above SIZE_MAX/2+1 is EINVAL. */
static void *alloc_aligned(size_t align, size_t n)
{
	void *p;

	if (align <= MIN_ALIGN)
		return malloc(n);
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if (align & (align - 1))
		align = (size_t)1 << (64 - __builtin_clzl(align));
	if (MT_UNLIKELY(countdown(n))) {
		p = sample(&mt_tls, n, align, false, __builtin_frame_address(0));
		if (!p)
			p = mtje_mallocx(n ? n : 1, MT_MALLOCX_LG_ALIGN(lg_of(align)));
		mt_thread_count_alloc(&mt_tls, p);
	} else {
		mt_tls.nalloc++;
		p = mtje_mallocx(n ? n : 1, MT_MALLOCX_LG_ALIGN(lg_of(align)));
	}
	if (!p)
		errno = ENOMEM;
	return p;
}

/* realloc's rare cases: p sampled, or the new block due to be sampled.
 * The new block is allocated first, so a failure leaves p intact; a sampled
 * block is never resized in place (its record says its size). */
static MT_COLD void *realloc_slow(void *p, size_t n, bool due)
{
	struct mt_tls *t = &mt_tls;
	bool tracked = mt_backend_tracked(p);
	void *q = due ? sample(t, n, MIN_ALIGN, false, __builtin_frame_address(0)) : NULL;

	if (!q && !tracked) {
		/* not sampled after all: a plain realloc */
		q = mtje_realloc(p, n);
		if (!q) {
			errno = ENOMEM;
			return NULL;
		}
		if (q != p) {
			mt_thread_count_alloc(t, q);
			mt_thread_count_free(t, NULL);
		}
		return q;
	}
	if (!q) {
		q = mtje_malloc(n);
		if (!q) {
			errno = ENOMEM;
			return NULL;
		}
	}
	mt_thread_count_alloc(t, q);
	size_t old = tracked ? mt_track_size(p) : mtje_malloc_usable_size(p);
	memcpy(q, p, old < n ? old : n);
	free_slow(p);
	return q;
}

/* ---- C -------------------------------------------------------------------- */

EXPORT void *malloc(size_t n)
{
	if (MT_UNLIKELY(countdown(n)))
		return malloc_slow(n);
	mt_tls.nalloc++;
	return mtje_malloc(n);
}

EXPORT void free(void *p)
{
	if (MT_UNLIKELY(free_special(p)))
		return free_slow(p);
	mt_tls.nfree++;
	mtje_free(p);
}

EXPORT void *calloc(size_t m, size_t n)
{
	size_t total;

	if (MT_UNLIKELY(__builtin_mul_overflow(m, n, &total))) {
		errno = ENOMEM;
		return NULL;
	}
	if (MT_UNLIKELY(countdown(total)))
		return calloc_slow(total);
	mt_tls.nalloc++;
	return mtje_calloc(1, total);
}

/* glibc semantics: realloc(NULL, n) is malloc(n); realloc(p, 0) frees p and
 * returns NULL; on failure the block is left intact and errno is ENOMEM.
 * A realloc that moves the block counts as one free (jemalloc counts the
 * new allocation); one that resizes in place counts as neither. */
EXPORT void *realloc(void *p, size_t n)
{
	if (!p)
		return malloc(n);
	if (n == 0) {
		free(p);
		return NULL;
	}
	bool due = countdown(n);
	if (MT_UNLIKELY(due || special(p) || mt_tls.state != MT_THREAD_READY))
		return realloc_slow(p, n, due);
	void *q = mtje_realloc(p, n);
	if (MT_UNLIKELY(!q)) {
		errno = ENOMEM; /* jemalloc leaves errno alone past its classes */
		return NULL;
	}
	if (q != p) {
		mt_tls.nalloc++;
		mt_tls.nfree++;
	}
	return q;
}

EXPORT void *reallocarray(void *p, size_t m, size_t n)
{
	size_t total;

	if (__builtin_mul_overflow(m, n, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, total);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	int saved = errno;
	void *p = alloc_aligned(align, n);
	errno = saved;
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
	return alloc_aligned(align, n);
}

EXPORT void *memalign(size_t align, size_t n)
{
	return alloc_aligned(align, n);
}

static size_t page_size(void)
{
	static size_t page;

	if (!page)
		page = (size_t)sysconf(_SC_PAGESIZE);
	return page;
}

EXPORT void *valloc(size_t n)
{
	return alloc_aligned(page_size(), n);
}

EXPORT void *pvalloc(size_t n)
{
	size_t page = page_size();
	size_t rounded;

	if (__builtin_add_overflow(n, page - 1, &rounded)) {
		errno = ENOMEM;
		return NULL;
	}
	rounded &= ~(page - 1);
	return alloc_aligned(page, rounded ? rounded : page);
}

EXPORT size_t malloc_usable_size(void *p)
{
	return usable_size(p);
}

/* C23: `n` must be the size the block was asked for. */
EXPORT void free_sized(void *p, size_t n)
{
	if (MT_UNLIKELY(free_special(p)))
		return free_slow(p);
	mt_tls.nfree++;
	mtje_sdallocx_noflags(p, n);
}

EXPORT void free_aligned_sized(void *p, size_t align, size_t n)
{
	if (MT_UNLIKELY(free_special(p)))
		return free_slow(p);
	mt_tls.nfree++;
	if (align <= MIN_ALIGN || (align & (align - 1)))
		mtje_free(p);
	else
		mtje_sdallocx(p, n, MT_MALLOCX_LG_ALIGN(lg_of(align)));
}

/* ---- glibc's malloc.h extras -------------------------------------------- */

EXPORT int mallopt(int param, int value)
{
	switch (param) {
	case M_ARENA_MAX:
		if (value < 0)
			return 0;
		mt_backend_set_cap((unsigned)value);
		return 1;
	case M_MXFAST:
	case M_TRIM_THRESHOLD:
	case M_TOP_PAD:
	case M_MMAP_THRESHOLD:
	case M_MMAP_MAX:
	case M_CHECK_ACTION:
	case M_PERTURB:
	case M_ARENA_TEST:
		return 1; /* glibc heap tuning: jemalloc has no equivalent */
	default:
		return 0;
	}
}

EXPORT int malloc_trim(size_t pad)
{
	(void)pad;
	return mt_backend_purge() ? 1 : 0;
}

static struct mallinfo2 info(void)
{
	struct mallinfo2 mi;
	uint64_t allocated = 0, active = 0, resident = 0, mapped = 0;

	mt_tls.guard++;
	mt_backend_process_bytes(&allocated, &active, &resident, &mapped);
	mt_tls.guard--;
	memset(&mi, 0, sizeof(mi));
	mi.arena = mapped;                /* bytes obtained from the system */
	mi.uordblks = allocated;          /* bytes in use */
	mi.fordblks = mapped - allocated; /* bytes mapped but not in use */
	mi.keepcost = active - allocated; /* bytes in partly used pages */
	return mi;
}

EXPORT struct mallinfo2 mallinfo2(void)
{
	return info();
}

EXPORT struct mallinfo mallinfo(void)
{
	struct mallinfo2 m2 = info();
	struct mallinfo mi;

	memset(&mi, 0, sizeof(mi));
	mi.arena = (int)m2.arena;
	mi.uordblks = (int)m2.uordblks;
	mi.fordblks = (int)m2.fordblks;
	mi.keepcost = (int)m2.keepcost;
	return mi;
}

EXPORT void malloc_stats(void)
{
	struct mallinfo2 mi = info();
	char buf[256];
	size_t n = mt_fmt(buf, sizeof(buf),
			  "Total (incl. mmap):\nsystem bytes     = %10zu\n"
			  "in use bytes     = %10zu\nmax mmap regions = %10u\n"
			  "max mmap bytes   = %10u\n",
			  mi.arena, mi.uordblks, 0u, 0u);
	ssize_t w = write(STDERR_FILENO, buf, n);
	(void)w;
}

/* ---- C++ ------------------------------------------------------------------ */

/* The mangled names of the twenty operators (x86-64: size_t is m,
 * std::align_val_t is an enum of size_t). */
void *_Znwm(size_t n);
void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt);
void *_ZnwmSt11align_val_t(size_t n, size_t al);
void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al, const void *nt);

/* operator new's failure path, resolved from the C++ runtime only when it
 * happens, so that libmtalloc does not pull libstdc++ into C programs. */
static void *cxx_sym(const char *name)
{
	static void *stdcxx;
	void *f = NULL;

	if (!stdcxx)
		stdcxx = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_NOLOAD);
	if (stdcxx)
		f = dlsym(stdcxx, name);
	return f ? f : dlsym(RTLD_DEFAULT, name);
}

static void *new_alloc(size_t n, size_t align)
{
	return align <= MIN_ALIGN ? malloc(n) : alloc_aligned(align, n);
}

/* [new.delete.single]: call the new-handler until it succeeds, or throw
 * std::bad_alloc when there is none.  The nothrow forms return NULL instead;
 * while a handler is installed they go through libstdc++'s own nothrow
 * operator, which calls the throwing one (ours) and catches. */
static MT_COLD void *new_failed(size_t n, size_t align, bool nothrow)
{
	typedef void (*handler_fn)(void);
	handler_fn (*get_handler)(void) =
		(handler_fn (*)(void))cxx_sym("_ZSt15get_new_handlerv");

	for (;;) {
		handler_fn h = get_handler ? get_handler() : NULL;
		if (!h)
			break;
		if (nothrow) {
			void *(*nt)(size_t, const void *) =
				(void *(*)(size_t, const void *))cxx_sym(
					"_ZnwmRKSt9nothrow_t");
			void *(*nta)(size_t, size_t, const void *) =
				(void *(*)(size_t, size_t, const void *))cxx_sym(
					"_ZnwmSt11align_val_tRKSt9nothrow_t");
			if (align <= MIN_ALIGN && nt && nt != (void *)_ZnwmRKSt9nothrow_t)
				return nt(n, NULL);
			if (align > MIN_ALIGN && nta &&
			    nta != (void *)_ZnwmSt11align_val_tRKSt9nothrow_t)
				return nta(n, align, NULL);
			return NULL;
		}
		h();
		void *p = new_alloc(n, align);
		if (p)
			return p;
	}
	if (nothrow)
		return NULL;
	void (*throw_bad_alloc)(void) =
		(void (*)(void))cxx_sym("_ZSt17__throw_bad_allocv");
	if (throw_bad_alloc)
		throw_bad_alloc();
	mt_log("operator new: out of memory and no C++ runtime to throw "
	       "std::bad_alloc");
	abort();
}

/* operator new's rare case, out of line so that the entry below is reached
 * by a jump and stays out of the stack a sample records. */
static MT_COLD void *new_slow(size_t n)
{
	void *p = malloc_slow(n);

	return MT_LIKELY(p != NULL) ? p : new_failed(n, 0, false);
}

/* The most called C++ entry.  Compiled without a frame pointer: the fast
 * path then needs no frame (a push to keep n for the failure case, the
 * call, the test), and every path that can sample leaves by a jump, so a
 * frame-pointer walk never meets this function. */
EXPORT __attribute__((optimize("omit-frame-pointer"))) void *_Znwm(size_t n)
{
	if (MT_UNLIKELY(countdown(n)))
		return new_slow(n);
	mt_tls.nalloc++;
	void *p = mtje_malloc(n);

	return MT_LIKELY(p != NULL) ? p : new_failed(n, 0, false);
}

EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt)
{
	(void)nt;
	void *p = new_alloc(n, 0);
	return MT_LIKELY(p != NULL) ? p : new_failed(n, 0, true);
}

EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t al)
{
	void *p = new_alloc(n, al);
	return MT_LIKELY(p != NULL) ? p : new_failed(n, al, false);
}

EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t al,
					      const void *nt)
{
	(void)nt;
	void *p = new_alloc(n, al);
	return MT_LIKELY(p != NULL) ? p : new_failed(n, al, true);
}

EXPORT void _ZdlPv(void *p)
{
	if (MT_UNLIKELY(free_special(p)))
		return free_slow(p);
	mt_tls.nfree++;
	mtje_free(p);
}

EXPORT void _ZdlPvm(void *p, size_t n)
{
	if (MT_UNLIKELY(free_special(p)))
		return free_slow(p);
	mt_tls.nfree++;
	mtje_sdallocx_noflags(p, n);
}

EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *nt)
{
	(void)nt;
	free(p);
}

EXPORT void _ZdlPvSt11align_val_t(void *p, size_t al)
{
	(void)al;
	free(p);
}

EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t al)
{
	free_aligned_sized(p, al, n);
}

EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al,
						const void *nt)
{
	(void)al;
	(void)nt;
	free(p);
}

/* The array forms behave exactly as the single-object ones. */
#define ALIAS(name, target) \
	EXPORT __typeof__(target) name __attribute__((alias(#target)))
ALIAS(_Znam, _Znwm);
ALIAS(_ZnamRKSt9nothrow_t, _ZnwmRKSt9nothrow_t);
ALIAS(_ZnamSt11align_val_t, _ZnwmSt11align_val_t);
ALIAS(_ZnamSt11align_val_tRKSt9nothrow_t, _ZnwmSt11align_val_tRKSt9nothrow_t);
ALIAS(_ZdaPv, _ZdlPv);
ALIAS(_ZdaPvm, _ZdlPvm);
ALIAS(_ZdaPvRKSt9nothrow_t, _ZdlPvRKSt9nothrow_t);
ALIAS(_ZdaPvSt11align_val_t, _ZdlPvSt11align_val_t);
ALIAS(_ZdaPvmSt11align_val_t, _ZdlPvmSt11align_val_t);
ALIAS(_ZdaPvSt11align_val_tRKSt9nothrow_t, _ZdlPvSt11align_val_tRKSt9nothrow_t);
