/* C++ operator new/delete on mtalloc: runs each subcommand of
 * tests/integration/cxx_ops.cc (see there for what each one checks) in its
 * own process, once as cxx_ops_linked (linked with -lmtalloc) and once as
 * cxx_ops under LD_PRELOAD. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void run_cxx_ops(const char *sub, int linked)
{
	char *path = tu_built(linked ? "tests/integration/cxx_ops_linked"
				     : "tests/integration/cxx_ops");
	const char *argv[] = { path, sub, NULL };
	struct tu_spawn s = { .argv = argv, .preload = !linked };
	struct tu_proc p;

	cr_assert_eq(tu_run(&s, &p), 0, "cannot start %s", path);
	cr_assert(tu_exited_ok(&p), "cxx_ops%s %s: %s\n%s",
		  linked ? "_linked" : " (preloaded)", sub,
		  tu_status_str(p.status), p.err);
	cr_assert_not_null(strstr(p.out, "ok "), "output: %s", p.out);
	tu_proc_free(&p);
	free(path);
}

#define CXX_TEST(name, sub)                                                \
	Test(cxx_linked, name, .timeout = 60) { run_cxx_ops(sub, 1); }     \
	Test(cxx_preloaded, name, .timeout = 60) { run_cxx_ops(sub, 0); }

CXX_TEST(every_new_delete_variant_returns_aligned_memory_from_mtalloc,
	 "variants")
CXX_TEST(new_of_impossible_size_throws_bad_alloc_and_nothrow_returns_null,
	 "huge")
CXX_TEST(new_handler_freeing_a_reserve_lets_the_retry_succeed, "handler")
CXX_TEST(nothrow_new_returns_null_when_the_handler_throws, "nothrow-handler")
CXX_TEST(new_and_delete_move_mtalloc_counters, "counts")
