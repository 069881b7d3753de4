/* Conformance of every C function libmtalloc exports, against glibc 2.36's
 * documented behaviour, and of the counters of mtalloc_stats_get.
 *
 * This binary is linked with libmtalloc.la and runs without LD_PRELOAD, so
 * it also checks that a program linked with -lmtalloc runs on mtalloc.
 * Built with -fno-builtin: gcc must not fold away or reorder the calls. */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtalloc.h"
#include "testutil.h"

#ifndef HAVE_FREE_SIZED
/* C23; glibc 2.36's headers do not declare them yet. */
void free_sized(void *p, size_t n);
void free_aligned_sized(void *p, size_t align, size_t n);
#endif

/* Sizes past any possible address space; volatile so that gcc cannot
 * reason about them. */
static volatile size_t huge = SIZE_MAX;
static volatile size_t half = SIZE_MAX / 2 + 1;
static volatile size_t two_pow_33 = (size_t)1 << 33;

static int aligned_to(const void *p, size_t a)
{
	return ((uintptr_t)p & (a - 1)) == 0;
}

static size_t next_pow2(size_t a)
{
	size_t p = 1;

	while (p < a)
		p <<= 1;
	return p;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 31);
}

static size_t first_mismatch(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed + i * 31))
			return i;
	return SIZE_MAX;
}

static struct mtalloc_stats stats(void)
{
	struct mtalloc_stats st;

	cr_assert_eq(mtalloc_stats_get(&st, sizeof(st)), 0);
	return st;
}

static long page(void)
{
	return sysconf(_SC_PAGESIZE);
}

/* ---- malloc / free -------------------------------------------------------- */

Test(malloc, zero_size_returns_unique_freeable_pointers)
{
	void *p = malloc(0), *q = malloc(0);

	cr_assert_not_null(p);
	cr_assert_not_null(q);
	cr_assert_neq(p, q, "two malloc(0) returned the same pointer");
	free(p);
	free(q);
}

Test(malloc, results_are_16_byte_aligned_for_many_sizes)
{
	static const size_t extra[] = { 5000, 16384, 32768, 65536, 100000,
					1 << 20, 3 << 20, 9 << 20 };

	for (size_t n = 1; n <= 1024; n++) {
		unsigned char *p = malloc(n);
		cr_assert_not_null(p, "malloc(%zu)", n);
		cr_assert(aligned_to(p, 16), "malloc(%zu) = %p", n, (void *)p);
		memset(p, 0x5a, n);
		free(p);
	}
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		unsigned char *p = malloc(extra[i]);
		cr_assert_not_null(p, "malloc(%zu)", extra[i]);
		cr_assert(aligned_to(p, 16), "malloc(%zu) = %p", extra[i], (void *)p);
		memset(p, 0x5a, extra[i]);
		free(p);
	}
}

Test(malloc, impossible_size_returns_null_with_enomem)
{
	errno = 0;
	cr_assert_null(malloc(huge));
	cr_assert_eq(errno, ENOMEM);
	errno = 0;
	cr_assert_null(malloc(half));
	cr_assert_eq(errno, ENOMEM);
}

Test(free, null_is_a_no_op_and_not_counted)
{
	struct mtalloc_stats a, b;

	free(malloc(10)); /* set the thread up */
	a = stats();
	free(NULL);
	b = stats();
	cr_assert_eq(b.thread.frees, a.thread.frees,
		     "free(NULL) counted as a free");
}

/* ---- calloc ------------------------------------------------------------- */

Test(calloc, returns_zeroed_memory_even_where_freed_blocks_were_dirty)
{
	static const size_t sizes[] = { 1, 8, 24, 100, 1000, 4096, 20000,
					70000, 1 << 20 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };

	for (int round = 0; round < 4; round++) {
		void *dirty[N];
		for (int i = 0; i < N; i++) {
			dirty[i] = malloc(sizes[i]);
			cr_assert_not_null(dirty[i]);
			memset(dirty[i], 0xa5, sizes[i]);
		}
		for (int i = 0; i < N; i++)
			free(dirty[i]);
		for (int i = 0; i < N; i++) {
			unsigned char *p = calloc(1, sizes[i]);
			cr_assert_not_null(p);
			for (size_t k = 0; k < sizes[i]; k++)
				cr_assert_eq(p[k], 0, "calloc(1, %zu)[%zu] = %#x",
					     sizes[i], k, p[k]);
			free(p);
		}
	}
}

Test(calloc, overflowing_product_returns_null_with_enomem)
{
	errno = 0;
	cr_assert_null(calloc(half, 2));
	cr_assert_eq(errno, ENOMEM);
	errno = 0;
	cr_assert_null(calloc(2, huge));
	cr_assert_eq(errno, ENOMEM);
	errno = 0;
	cr_assert_null(calloc(two_pow_33, two_pow_33));
	cr_assert_eq(errno, ENOMEM);
}

Test(calloc, zero_elements_returns_freeable_pointer)
{
	void *p = calloc(0, 16), *q = calloc(16, 0);

	cr_assert_not_null(p);
	cr_assert_not_null(q);
	free(p);
	free(q);
}

/* ---- realloc / reallocarray ------------------------------------------------ */

Test(realloc, growing_keeps_contents)
{
	size_t n = 1;
	unsigned char *p = malloc(n);

	cr_assert_not_null(p);
	fill(p, n, 7);
	while (n < (16u << 20)) {
		size_t m = n * 2 + 3;
		unsigned char *q = realloc(p, m);
		cr_assert_not_null(q, "realloc to %zu", m);
		size_t bad = first_mismatch(q, n, 7);
		cr_assert_eq(bad, SIZE_MAX, "growing %zu -> %zu lost byte %zu",
			     n, m, bad);
		fill(q, m, 7);
		p = q;
		n = m;
	}
	free(p);
}

Test(realloc, shrinking_keeps_contents)
{
	size_t n = 16u << 20;
	unsigned char *p = malloc(n);

	cr_assert_not_null(p);
	fill(p, n, 3);
	while (n > 1) {
		size_t m = n / 3;
		unsigned char *q = realloc(p, m);
		cr_assert_not_null(q, "realloc to %zu", m);
		size_t bad = first_mismatch(q, m, 3);
		cr_assert_eq(bad, SIZE_MAX, "shrinking %zu -> %zu lost byte %zu",
			     n, m, bad);
		p = q;
		n = m;
	}
	free(p);
}

Test(realloc, null_pointer_acts_as_malloc)
{
	unsigned char *p = realloc(NULL, 100);

	cr_assert_not_null(p);
	cr_assert_geq(malloc_usable_size(p), 100);
	memset(p, 1, 100);
	free(p);
	p = realloc(NULL, 0);
	cr_assert_not_null(p, "realloc(NULL, 0) must act as malloc(0)");
	free(p);
}

Test(realloc, zero_size_frees_the_block_and_returns_null)
{
	void *p = malloc(100);
	struct mtalloc_stats a, b;

	cr_assert_not_null(p);
	a = stats();
	cr_assert_null(realloc(p, 0));
	b = stats();
	cr_assert_eq(b.thread.frees - a.thread.frees, 1,
		     "realloc(p, 0) must free p (frees went up by %llu)",
		     (unsigned long long)(b.thread.frees - a.thread.frees));
}

Test(realloc, failure_leaves_block_intact_and_sets_enomem)
{
	static const size_t sizes[] = { 10, 5000, 200000 };

	for (int i = 0; i < 3; i++) {
		unsigned char *p = malloc(sizes[i]);
		cr_assert_not_null(p);
		fill(p, sizes[i], 11);
		errno = 0;
		cr_assert_null(realloc(p, huge - 4096));
		cr_assert_eq(errno, ENOMEM);
		errno = 0;
		cr_assert_null(realloc(p, half));
		cr_assert_eq(errno, ENOMEM);
		cr_assert_eq(first_mismatch(p, sizes[i], 11), SIZE_MAX,
			     "failed realloc damaged the block");
		cr_assert_geq(malloc_usable_size(p), sizes[i]);
		free(p);
	}
}

/* gcc cannot know that the failed reallocarray left p alive. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuse-after-free"
Test(reallocarray, overflow_returns_null_with_enomem_and_keeps_block)
{
	unsigned char *p = malloc(64);

	cr_assert_not_null(p);
	fill(p, 64, 5);
	errno = 0;
	cr_assert_null(reallocarray(p, half, 2));
	cr_assert_eq(errno, ENOMEM);
	errno = 0;
	cr_assert_null(reallocarray(p, two_pow_33, two_pow_33));
	cr_assert_eq(errno, ENOMEM);
	cr_assert_eq(first_mismatch(p, 64, 5), SIZE_MAX);
	free(p);
}
#pragma GCC diagnostic pop

Test(reallocarray, grows_keeping_contents_and_null_acts_as_malloc)
{
	unsigned *p = reallocarray(NULL, 10, sizeof(unsigned));

	cr_assert_not_null(p);
	for (unsigned i = 0; i < 10; i++)
		p[i] = i * i;
	p = reallocarray(p, 100000, sizeof(unsigned));
	cr_assert_not_null(p);
	for (unsigned i = 0; i < 10; i++)
		cr_assert_eq(p[i], i * i);
	p[99999] = 1;
	free(p);
}

/* ---- posix_memalign ------------------------------------------------------- */

Test(posix_memalign, bad_alignment_is_einval_without_touching_result_or_errno)
{
	static const size_t bad[] = { 0, 1, 2, 3, 4, sizeof(void *) / 2, 12, 24,
				      40, 48, 96, 4096 + 8, (size_t)-1 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		void *p = (void *)0x1234;
		errno = 4242;
		int rc = posix_memalign(&p, bad[i], 16);
		cr_assert_eq(rc, EINVAL, "alignment %zu: returned %d", bad[i], rc);
		cr_assert_eq(p, (void *)0x1234, "alignment %zu: *memptr changed",
			     bad[i]);
		cr_assert_eq(errno, 4242, "alignment %zu: errno changed to %d",
			     bad[i], errno);
	}
}

Test(posix_memalign, impossible_size_is_enomem_without_touching_errno)
{
	static const size_t aligns[] = { sizeof(void *), 16, 64, 4096, 1 << 20 };

	for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
		void *p = (void *)0x1234;
		errno = 4242;
		int rc = posix_memalign(&p, aligns[i], huge - 4096);
		cr_assert_eq(rc, ENOMEM, "alignment %zu: returned %d", aligns[i], rc);
		cr_assert_eq(errno, 4242, "alignment %zu: errno changed to %d",
			     aligns[i], errno);
		cr_assert_eq(p, (void *)0x1234, "alignment %zu: *memptr changed",
			     aligns[i]);
	}
}

Test(posix_memalign, every_power_of_two_from_pointer_size_to_64_kib)
{
	for (size_t a = sizeof(void *); a <= 65536; a *= 2) {
		size_t sizes[] = { 0, 1, a, 3 * a + 1 };
		for (int k = 0; k < 4; k++) {
			void *p = NULL;
			errno = 4242;
			int rc = posix_memalign(&p, a, sizes[k]);
			cr_assert_eq(rc, 0, "posix_memalign(%zu, %zu) = %d", a,
				     sizes[k], rc);
			cr_assert_eq(errno, 4242);
			cr_assert(aligned_to(p, a), "posix_memalign(%zu) = %p", a, p);
			cr_assert_geq(malloc_usable_size(p), sizes[k]);
			memset(p, 0x77, sizes[k]);
			free(p);
		}
	}
}

/* ---- aligned_alloc / memalign ------------------------------------------- */

typedef void *(*align_fn)(size_t, size_t);

/* glibc 2.36: an alignment that is not a power of two is rounded up to the
 * next one (glibc itself never returns less than 16-aligned memory). */
static void check_alignments(align_fn f, const char *name)
{
	static const size_t more[] = { 300, 1000, 1024, 2047, 3000, 4096, 5000,
				       8192, 12288, 16384, 30000, 32768, 40000,
				       65535, 65536 };

	for (size_t a = 1; a <= 260; a++) {
		static const size_t sizes[] = { 1, 8, 40 };
		for (int k = 0; k < 3; k++) {
			size_t n = sizes[k], want = next_pow2(a);
			void *p = f(a, n);
			cr_assert_not_null(p, "%s(%zu, %zu)", name, a, n);
			cr_assert(aligned_to(p, want),
				  "%s(%zu, %zu) = %p, not %zu-aligned", name, a,
				  n, p, want);
			memset(p, 1, n);
			free(p);
		}
	}
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
		size_t a = more[i], want = next_pow2(a);
		void *p = f(a, a + 1);
		cr_assert_not_null(p, "%s(%zu)", name, a);
		cr_assert(aligned_to(p, want), "%s(%zu) = %p, not %zu-aligned",
			  name, a, p, want);
		cr_assert_geq(malloc_usable_size(p), a + 1);
		memset(p, 1, a + 1);
		free(p);
	}
}

Test(aligned_alloc, alignments_1_to_64_kib_with_non_powers_rounded_up)
{
	check_alignments(aligned_alloc, "aligned_alloc");
}

Test(memalign, alignments_1_to_64_kib_with_non_powers_rounded_up)
{
	check_alignments(memalign, "memalign");
}

Test(memalign, alignment_above_half_the_address_space_is_einval)
{
	errno = 0;
	cr_assert_null(memalign(half + 1, 16));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(memalign(huge, 16));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(aligned_alloc(huge, 16));
	cr_assert_eq(errno, EINVAL);
}

Test(memalign, impossible_size_is_enomem)
{
	errno = 0;
	cr_assert_null(memalign(64, huge - 4096));
	cr_assert_eq(errno, ENOMEM);
	errno = 0;
	cr_assert_null(aligned_alloc(4096, huge - 4096));
	cr_assert_eq(errno, ENOMEM);
}

/* ---- valloc / pvalloc ---------------------------------------------------- */

Test(valloc, returns_page_aligned_memory)
{
	static const size_t sizes[] = { 0, 1, 100, 4095, 4096, 4097, 100000 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		void *p = valloc(sizes[i]);
		cr_assert_not_null(p, "valloc(%zu)", sizes[i]);
		cr_assert(aligned_to(p, (size_t)page()), "valloc(%zu) = %p",
			  sizes[i], p);
		memset(p, 3, sizes[i]);
		free(p);
	}
}

Test(pvalloc, rounds_size_up_to_whole_pages)
{
	size_t pg = (size_t)page();
	static const size_t sizes[] = { 0, 1, 4095, 4096, 4097, 10000 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t whole = (sizes[i] + pg - 1) / pg * pg;
		if (whole == 0)
			whole = pg;
		unsigned char *p = pvalloc(sizes[i]);
		cr_assert_not_null(p, "pvalloc(%zu)", sizes[i]);
		cr_assert(aligned_to(p, pg), "pvalloc(%zu) = %p", sizes[i], p);
		cr_assert_geq(malloc_usable_size(p), whole,
			      "pvalloc(%zu) usable %zu < %zu", sizes[i],
			      malloc_usable_size(p), whole);
		memset(p, 9, whole); /* the whole rounded size is ours */
		free(p);
	}
}

Test(pvalloc, overflowing_round_up_is_enomem)
{
	errno = 0;
	cr_assert_null(pvalloc(huge));
	cr_assert_eq(errno, ENOMEM);
	errno = 0;
	cr_assert_null(pvalloc(huge - (size_t)page() + 2));
	cr_assert_eq(errno, ENOMEM);
}

/* ---- malloc_usable_size, free_sized, free_aligned_sized ------------------ */

Test(malloc_usable_size, is_at_least_the_request_and_zero_for_null)
{
	cr_assert_eq(malloc_usable_size(NULL), 0);
	for (size_t n = 1; n < 300000; n = n * 3 / 2 + 1) {
		unsigned char *p = malloc(n);
		cr_assert_not_null(p);
		size_t u = malloc_usable_size(p);
		cr_assert_geq(u, n, "malloc_usable_size(malloc(%zu)) = %zu", n, u);
		memset(p, 0xee, u); /* all of it is usable */
		free(p);
	}
}

Test(free_sized, releases_blocks_and_counts_each_non_null_free)
{
	struct mtalloc_stats a, b;

	free(malloc(1));
	a = stats();
	for (int i = 0; i < 1000; i++) {
		size_t n = 1 + (size_t)i * 997 % 300000;
		void *p = malloc(n);
		cr_assert_not_null(p);
		memset(p, 1, n);
		free_sized(p, n);
	}
	free_sized(NULL, 0);
	for (int i = 0; i < 200; i++) /* 1 MiB each: 200 MiB if never freed */
		free_sized(malloc(1 << 20), 1 << 20);
	b = stats();
	cr_assert_eq(b.thread.frees - a.thread.frees, 1200);
	cr_assert_lt(b.live_bytes, a.live_bytes + (16u << 20),
		     "free_sized did not release memory: %llu live bytes",
		     (unsigned long long)b.live_bytes);
}

Test(free_aligned_sized, releases_aligned_blocks_of_every_alignment)
{
	struct mtalloc_stats a, b;
	int frees = 0;

	free(malloc(1));
	a = stats();
	for (size_t al = 1; al <= 4096; al *= 2)
		for (int i = 0; i < 50; i++) {
			size_t n = al * (size_t)(1 + i % 5);
			void *p = aligned_alloc(al, n);
			cr_assert_not_null(p);
			cr_assert(aligned_to(p, al));
			memset(p, 2, n);
			free_aligned_sized(p, al, n);
			frees++;
		}
	for (int i = 0; i < 200; i++) {
		free_aligned_sized(aligned_alloc(4096, 1 << 20), 4096, 1 << 20);
		frees++;
	}
	free_aligned_sized(NULL, 64, 0);
	b = stats();
	cr_assert_eq(b.thread.frees - a.thread.frees, (uint64_t)frees);
	cr_assert_lt(b.live_bytes, a.live_bytes + (16u << 20),
		     "free_aligned_sized did not release memory");
}

/* ---- glibc's malloc.h extras -------------------------------------------- */

Test(mallopt, arena_max_returns_1_and_unknown_parameter_returns_0)
{
	cr_assert_eq(mallopt(M_ARENA_MAX, 4), 1);
	cr_assert_eq(mallopt(12345, 1), 0);
	cr_assert_eq(mallopt(-42, 1), 0);
	/* glibc heap tuning is accepted (and has no effect) */
	cr_assert_eq(mallopt(M_MMAP_THRESHOLD, 1 << 20), 1);
	cr_assert_eq(mallopt(M_TRIM_THRESHOLD, 1 << 20), 1);
}

Test(malloc_trim, returns_1_after_freeing_much_memory_and_0_or_1_otherwise)
{
	void *v[64];
	int r;

	for (int i = 0; i < 64; i++) {
		v[i] = malloc(1 << 20);
		cr_assert_not_null(v[i]);
		memset(v[i], 1, 1 << 20);
	}
	for (int i = 0; i < 64; i++)
		free(v[i]);
	r = malloc_trim(0);
	cr_assert_eq(r, 1, "64 MiB freed, yet malloc_trim released nothing");
	r = malloc_trim(4096);
	cr_assert(r == 0 || r == 1, "malloc_trim returned %d", r);
}

Test(mallinfo2, uordblks_follows_a_big_allocation)
{
	struct mallinfo2 before = mallinfo2();
	void *p = malloc(32u << 20);
	struct mallinfo2 during = mallinfo2();

	cr_assert_not_null(p);
	cr_assert_geq(during.uordblks, before.uordblks + (32u << 20),
		      "uordblks %zu -> %zu", before.uordblks, during.uordblks);
	cr_assert_geq(during.arena, during.uordblks,
		      "system bytes below bytes in use");
	free(p);
	struct mallinfo2 after = mallinfo2();
	cr_assert_leq(after.uordblks + (32u << 20), during.uordblks,
		      "uordblks did not drop after free");
}

Test(mallinfo, agrees_with_mallinfo2_for_small_heaps)
{
	void *p = malloc(1 << 20);
	struct mallinfo2 m2 = mallinfo2();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	struct mallinfo m = mallinfo(); /* deprecated, still exported */
#pragma GCC diagnostic pop

	cr_assert_not_null(p);
	cr_assert_geq((size_t)m.uordblks, 1u << 20);
	cr_assert_leq((size_t)m.uordblks, m2.uordblks + (1u << 20));
	free(p);
}

Test(malloc_stats, prints_system_bytes_on_stderr)
{
	char *dir = tu_tmpdir(), *path = tu_path(dir, "stderr");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int saved = dup(2);

	cr_assert_geq(fd, 0);
	cr_assert_geq(saved, 0);
	fflush(stderr);
	cr_assert_geq(dup2(fd, 2), 0);
	malloc_stats();
	dup2(saved, 2);
	close(saved);
	close(fd);
	char *text = tu_read_file(path, NULL);
	cr_assert_not_null(text);
	cr_assert_not_null(strstr(text, "system bytes"), "malloc_stats wrote: %s",
			   text);
	cr_assert_not_null(strstr(text, "in use bytes"), "malloc_stats wrote: %s",
			   text);
	free(text);
	tu_rmtree(dir);
	free(path);
	free(dir);
}

/* ---- include/mtalloc.h -------------------------------------------------- */

Test(version, equals_the_package_version)
{
	char want[32];

	cr_assert_str_eq(mtalloc_version(), PACKAGE_VERSION);
	snprintf(want, sizeof(want), "%d.%d.%d", MTALLOC_VERSION_MAJOR,
		 MTALLOC_VERSION_MINOR, MTALLOC_VERSION_PATCH);
	cr_assert_str_eq(mtalloc_version(), want,
			 "the header's version macros disagree with the library");
}

Test(stats, null_pointer_or_short_size_is_einval)
{
	struct mtalloc_stats st;

	errno = 0;
	cr_assert_eq(mtalloc_stats_get(NULL, sizeof(st)), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(mtalloc_stats_get(&st, 8), -1);
	cr_assert_eq(errno, EINVAL);
}

Test(stats, size_of_the_first_two_members_writes_no_further)
{
	size_t n = offsetof(struct mtalloc_stats, live_bytes);
	unsigned char buf[sizeof(struct mtalloc_stats) + 16];

	memset(buf, 0xcd, sizeof(buf));
	cr_assert_eq(mtalloc_stats_get((struct mtalloc_stats *)(void *)buf, n), 0);
	for (size_t i = n; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 0xcd, "byte %zu past the size written", i);
}

/* N malloc+free pairs in this thread, measured from a set-up thread. */
static void malloc_free_loop(size_t size, int n, struct mtalloc_stats *a,
			     struct mtalloc_stats *b)
{
	free(malloc(size));
	*a = stats();
	for (int i = 0; i < n; i++) {
		void *volatile p = malloc(size);
		free(p);
	}
	*b = stats();
}

#define D(field) ((unsigned long long)(b.field - a.field))

Test(stats, loop_of_small_malloc_free_counts_exactly_n_allocs_and_frees)
{
	struct mtalloc_stats a, b;
	const int n = 1000;

	malloc_free_loop(64, n, &a, &b);
	cr_expect_eq(D(thread.frees), (unsigned long long)n);
	cr_expect_eq(D(process.frees), (unsigned long long)n);
	cr_expect_eq(D(thread.allocs), (unsigned long long)n,
		     "thread.allocs grew by %llu after %d malloc(64)",
		     D(thread.allocs), n);
	cr_expect_eq(D(process.allocs), (unsigned long long)n,
		     "process.allocs grew by %llu after %d malloc(64)",
		     D(process.allocs), n);
}

Test(stats, loop_of_large_malloc_free_counts_exactly_n_allocs_and_frees)
{
	struct mtalloc_stats a, b;
	const int n = 500;

	malloc_free_loop(100000, n, &a, &b);
	cr_expect_eq(D(thread.frees), (unsigned long long)n);
	cr_expect_eq(D(process.frees), (unsigned long long)n);
	cr_expect_eq(D(thread.allocs), (unsigned long long)n,
		     "thread.allocs grew by %llu", D(thread.allocs));
	cr_expect_eq(D(process.allocs), (unsigned long long)n,
		     "process.allocs grew by %llu", D(process.allocs));
}

Test(stats, bytes_allocated_grows_by_at_least_n_times_size)
{
	struct mtalloc_stats a, b;
	const int n = 1000;

	malloc_free_loop(200, n, &a, &b);
	cr_assert_geq(D(thread.bytes_allocated), 200ull * n);
	cr_assert_geq(D(thread.bytes_freed), 200ull * n);
	cr_assert_geq(D(process.bytes_allocated), 200ull * n);
	cr_assert_geq(b.process.bytes_allocated, b.thread.bytes_allocated);
}

/* Sampled blocks are kept for reuse by the thread that freed them, out of
 * jemalloc's sight (object.c): the byte counts must still see every one.
 * malloc(200) sampled is a 256-byte block (200 + a 32-byte header). */
Test(stats, sampled_blocks_reused_count_every_byte)
{
	struct mtalloc_stats a, b;
	const int n = 1000;

	cr_assert_eq(mtalloc_sample_set("all"), 0);
	malloc_free_loop(200, n, &a, &b);
	cr_expect_eq(D(thread.allocs), (unsigned long long)n);
	cr_expect_eq(D(thread.frees), (unsigned long long)n);
	cr_expect_eq(D(thread.bytes_allocated), 256ull * n,
		     "thread.bytes_allocated grew by %llu", D(thread.bytes_allocated));
	cr_expect_eq(D(thread.bytes_freed), 256ull * n,
		     "thread.bytes_freed grew by %llu", D(thread.bytes_freed));
}

Test(stats, every_allocating_function_counts_one_allocation)
{
	struct mtalloc_stats a, b;
	const size_t n = 65536; /* past jemalloc's thread cache: counted at once */
	void *p[9];

	free(malloc(1));
	a = stats();
	p[0] = malloc(n);
	p[1] = calloc(1, n);
	p[2] = realloc(NULL, n);
	p[3] = reallocarray(NULL, 1, n);
	cr_assert_eq(posix_memalign(&p[4], 64, n), 0);
	p[5] = aligned_alloc(64, n);
	p[6] = memalign(64, n);
	p[7] = valloc(n);
	p[8] = pvalloc(n);
	for (int i = 0; i < 9; i++) {
		cr_assert_not_null(p[i], "allocation %d failed", i);
		free(p[i]);
	}
	b = stats();
	cr_assert_eq(D(thread.allocs), 9ull);
	cr_assert_eq(D(thread.frees), 9ull);
}

Test(stats, realloc_that_moves_counts_one_alloc_and_one_free)
{
	struct mtalloc_stats a, b;
	void *p = malloc(100), *q;

	cr_assert_not_null(p);
	a = stats();
	q = realloc(p, 100000); /* small to large: must move */
	b = stats();
	cr_assert_not_null(q);
	cr_assert_neq(q, p);
	cr_assert_eq(D(thread.allocs), 1ull);
	cr_assert_eq(D(thread.frees), 1ull);
	free(q);
}

Test(stats, realloc_in_place_counts_nothing)
{
	struct mtalloc_stats a, b;
	void *p, *q;

	/* A sampled block is never resized in place: sample nothing here. */
	cr_assert_eq(mtalloc_sample_set("off"), 0);
	p = malloc(100000);

	cr_assert_not_null(p);
	cr_assert_geq(malloc_usable_size(p), 100001);
	a = stats();
	q = realloc(p, 100001); /* same size class: stays */
	b = stats();
	cr_assert_eq(q, p, "precondition: jemalloc resizes within a size class "
			   "in place");
	cr_assert_eq(D(thread.allocs), 0ull);
	cr_assert_eq(D(thread.frees), 0ull);
	free(q);
}

static unsigned live_tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	unsigned n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

Test(stats, each_thread_alive_has_its_own_arena_below_the_cap)
{
	struct mtalloc_stats st;

	free(malloc(10));
	st = stats();
	/* Criterion's runner may have a thread of its own besides this one */
	cr_assert_geq(st.threads_alive, 1);
	cr_assert_leq(st.threads_alive, live_tasks(),
		      "threads_alive=%u but the process has %u threads",
		      st.threads_alive, live_tasks());
	cr_assert_eq(st.arenas_created, st.threads_alive);
	cr_assert_eq(st.arenas_in_use, st.threads_alive);
	cr_assert_geq(st.mapped_bytes, st.active_bytes);
	cr_assert_geq(st.active_bytes, st.live_bytes);
}

/* ---- a program linked with -lmtalloc ------------------------------------- */

Test(linked, program_runs_on_mtalloc_without_preload)
{
	const char *pre = getenv("LD_PRELOAD");
	Dl_info info;
	void *m = dlsym(RTLD_DEFAULT, "malloc");
	struct mtalloc_stats a, b;

	cr_assert(!pre || !strstr(pre, "mtalloc"), "LD_PRELOAD is set: %s", pre);
	cr_assert_not_null(m);
	cr_assert(dladdr(m, &info), "dladdr(malloc) failed");
	cr_assert_not_null(strstr(info.dli_fname, "libmtalloc.so"),
			   "malloc comes from %s", info.dli_fname);
	free(malloc(8));
	a = stats();
	for (int i = 0; i < 100; i++)
		free(malloc(1000));
	b = stats();
	cr_assert_eq(D(thread.frees), 100ull);
	cr_assert_geq(D(thread.bytes_allocated), 100000ull);
}
