/* A C program (tests/integration/dlopen_main.c, no libstdc++) dlopens a C++
 * library (libcxxplugin.so) whose code does new/delete in a loop, under
 * LD_PRELOAD of mtalloc: the plugin's operator new must be mtalloc's, and
 * the process counters must show its allocations. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

#define LOOPS 20000

struct result {
	int stdcxx_before;
	char new_from[1024];
	size_t node_size;
	unsigned long long allocs, frees, bytes;
};

static struct tu_proc run_main(int preload)
{
	char *prog = tu_built("tests/integration/dlopen_main");
	char *plugin = tu_built("tests/integration/.libs/libcxxplugin.so");
	char loops[32];
	struct tu_proc p;

	snprintf(loops, sizeof(loops), "%d", LOOPS);
	const char *argv[] = { prog, plugin, loops, NULL };
	struct tu_spawn s = { .argv = argv, .preload = preload };
	cr_assert_eq(tu_run(&s, &p), 0, "cannot start %s", prog);
	free(prog);
	free(plugin);
	return p;
}

static struct result run_preloaded(void)
{
	struct tu_proc p = run_main(1);
	struct result r;

	cr_assert(tu_exited_ok(&p), "dlopen_main: %s\n%s", tu_status_str(p.status),
		  p.err);
	cr_assert_eq(sscanf(p.out,
			    "stdcxx_before_dlopen=%d\nnew_from=%1023[^\n]\n"
			    "node_size=%zu\nallocs=%llu frees=%llu bytes=%llu",
			    &r.stdcxx_before, r.new_from, &r.node_size, &r.allocs,
			    &r.frees, &r.bytes),
		     6, "unexpected output:\n%s", p.out);
	tu_proc_free(&p);
	return r;
}

Test(dlopen, cxx_plugin_of_a_c_program_calls_mtallocs_operator_new,
     .timeout = 60)
{
	struct result r = run_preloaded();

	cr_assert_eq(r.stdcxx_before, 0,
		     "libstdc++ was loaded before dlopen: the test proves nothing");
	cr_assert_not_null(strstr(r.new_from, "libmtalloc.so"),
			   "the plugin's operator new comes from %s", r.new_from);
}

Test(dlopen, cxx_plugin_deletes_are_counted_as_frees, .timeout = 60)
{
	struct result r = run_preloaded();

	cr_assert_geq(r.frees, LOOPS, "process frees grew by %llu for %d deletes",
		      r.frees, LOOPS);
	cr_assert_geq(r.bytes, (unsigned long long)LOOPS * r.node_size,
		      "process bytes allocated grew by %llu", r.bytes);
}

Test(dlopen, cxx_plugin_news_are_counted_as_allocations, .timeout = 60)
{
	struct result r = run_preloaded();

	cr_assert_geq(r.allocs, LOOPS,
		      "process allocs grew by %llu for %d news (frees: %llu)",
		      r.allocs, LOOPS, r.frees);
}

Test(dlopen, without_mtalloc_the_program_says_so, .timeout = 60)
{
	struct tu_proc p = run_main(0);

	cr_assert(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 2,
		  "dlopen_main without mtalloc: %s\n%s", tu_status_str(p.status),
		  p.err);
	tu_proc_free(&p);
}
