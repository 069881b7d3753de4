/* The MTALLOC option parser, driven through real processes: allocprog runs
 * under LD_PRELOAD with MTALLOC set, 8 threads alive at once, and prints the
 * arena figures; confprog is linked with -lmtalloc and compiles in
 * mtalloc_conf = "arenas:2".
 *
 * Bad options must each give exactly one line on stderr that names the
 * option and what was expected, and leave the program running as if the
 * option had not been given. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define THREADS "8"

struct figures {
	unsigned alive, created, in_use;
};

/* Runs prog ("allocprog" preloaded, or "confprog") with `mtalloc` as the
 * MTALLOC variable (NULL: unset), checks it exited 0 and parses its line. */
static struct figures run_prog(const char *prog, const char *mtalloc,
			       char **err_out)
{
	char *rel, *path, *env_set = NULL;
	const char *env[2] = { "MTALLOC", NULL };
	struct tu_proc p;
	struct figures f;
	int preload = strcmp(prog, "allocprog") == 0;

	cr_assert(asprintf(&rel, "tests/integration/%s", prog) > 0);
	path = tu_built(rel);
	if (mtalloc) {
		cr_assert(asprintf(&env_set, "MTALLOC=%s", mtalloc) > 0);
		env[0] = env_set;
	}
	const char *argv[] = { path, "threads", THREADS, NULL };
	struct tu_spawn s = { .argv = argv, .env = env, .preload = preload };
	cr_assert_eq(tu_run(&s, &p), 0, "cannot start %s", path);
	cr_assert(tu_exited_ok(&p), "%s with MTALLOC=%s: %s; stderr:\n%s", prog,
		  mtalloc ? mtalloc : "(unset)", tu_status_str(p.status), p.err);
	cr_assert_eq(sscanf(p.out, "threads_alive=%u arenas_created=%u "
				   "arenas_in_use=%u",
			    &f.alive, &f.created, &f.in_use),
		     3, "unexpected output: %s", p.out);
	/* the main thread and the 8 workers */
	cr_assert_eq(f.alive, 9, "threads_alive=%u with 8 workers alive", f.alive);
	*err_out = p.err;
	p.err = NULL;
	tu_proc_free(&p);
	free(env_set);
	free(path);
	free(rel);
	return f;
}

/* Checks that stderr is exactly one line, from mtalloc about MTALLOC, and
 * that it contains each of the given strings. */
static void expect_one_line(const char *err, const char *const *words)
{
	cr_assert_eq(tu_count_lines(err), 1, "want one line on stderr, got:\n%s",
		     err);
	cr_assert_eq(strncmp(err, "mtalloc: MTALLOC: ", 18), 0,
		     "the line does not say it comes from mtalloc's MTALLOC: %s",
		     err);
	for (; *words; words++)
		cr_assert_not_null(strstr(err, *words), "'%s' missing from: %s",
				   *words, err);
}

Test(conf, no_option_gives_one_arena_per_thread_up_to_the_default_cap, .timeout = 30)
{
	char *err;
	struct figures f = run_prog("allocprog", NULL, &err);

	cr_assert_str_empty(err, "stderr: %s", err);
	/* the control for the caps below: 9 threads, a default cap of >= 8 */
	cr_assert_geq(f.created, 8, "arenas_created=%u", f.created);
	free(err);
}

Test(conf, bad_arenas_value_gives_one_line_and_is_ignored, .timeout = 30)
{
	static const char *const words[] = { "'arenas:bogus'", "per-thread",
					      "shared", "arenas:N", NULL };
	char *err;
	struct figures f = run_prog("allocprog", "arenas:bogus", &err);

	expect_one_line(err, words);
	cr_assert_geq(f.created, 8, "the default should stay: arenas_created=%u",
		      f.created);
	free(err);
}

Test(conf, unknown_option_gives_one_line_listing_the_known_ones, .timeout = 30)
{
	static const char *const words[] = { "'nosuch'", "off", "arenas", NULL };
	char *err;
	struct figures f = run_prog("allocprog", "nosuch", &err);

	expect_one_line(err, words);
	cr_assert_geq(f.created, 8, "arenas_created=%u", f.created);
	free(err);
}

Test(conf, zero_arenas_gives_one_line_with_the_valid_range, .timeout = 30)
{
	static const char *const words[] = { "'arenas:0'", "arenas:N", "1..",
					      NULL };
	char *err;
	struct figures f = run_prog("allocprog", "arenas:0", &err);

	expect_one_line(err, words);
	cr_assert_geq(f.created, 8, "arenas_created=%u", f.created);
	free(err);
}

Test(conf, each_bad_option_gives_its_own_line_and_good_ones_still_apply, .timeout = 30)
{
	char *err;
	struct figures f = run_prog("allocprog", "nosuch,arenas:bogus,arenas:2",
				    &err);

	cr_assert_eq(tu_count_lines(err), 2, "want two lines, got:\n%s", err);
	cr_assert_not_null(strstr(err, "'nosuch'"), "%s", err);
	cr_assert_not_null(strstr(err, "'arenas:bogus'"), "%s", err);
	cr_assert_leq(f.created, 2, "arenas:2 ignored: arenas_created=%u",
		      f.created);
	free(err);
}

Test(conf, arena_cap_with_off_is_accepted_and_caps_arenas, .timeout = 30)
{
	char *err;
	struct figures f = run_prog("allocprog", "arenas:3,off", &err);

	cr_assert_str_empty(err, "stderr: %s", err);
	cr_assert_leq(f.created, 3, "arenas_created=%u with arenas:3", f.created);
	cr_assert_geq(f.created, 1, "no per-thread arena at all");
	cr_assert_leq(f.in_use, 3);
	free(err);
}

Test(conf, empty_items_are_harmless, .timeout = 30)
{
	char *err;
	struct figures f = run_prog("allocprog", ",arenas:3,,", &err);

	cr_assert_str_empty(err, "stderr: %s", err);
	cr_assert_leq(f.created, 3, "arenas_created=%u", f.created);
	free(err);
}

Test(conf, shared_arenas_create_none, .timeout = 30)
{
	char *err;
	struct figures f = run_prog("allocprog", "arenas:shared", &err);

	cr_assert_str_empty(err, "stderr: %s", err);
	cr_assert_eq(f.created, 0, "arenas_created=%u with arenas:shared",
		     f.created);
	cr_assert_eq(f.in_use, 0);
	free(err);
}

Test(conf, compiled_in_mtalloc_conf_caps_arenas, .timeout = 30)
{
	char *err;
	struct figures f = run_prog("confprog", NULL, &err);

	cr_assert_str_empty(err, "stderr: %s", err);
	cr_assert_leq(f.created, 2, "mtalloc_conf = \"arenas:2\" ignored: "
				    "arenas_created=%u", f.created);
	cr_assert_geq(f.created, 1);
	free(err);
}

Test(conf, environment_overrides_compiled_in_mtalloc_conf, .timeout = 30)
{
	char *err;
	struct figures f = run_prog("confprog", "arenas:shared", &err);

	cr_assert_str_empty(err, "stderr: %s", err);
	cr_assert_eq(f.created, 0, "arenas_created=%u", f.created);
	free(err);
}
