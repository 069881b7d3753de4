/* mtreport's views for other tools: collapsed stacks (flame graphs), and
 * their totals against the JSON report's, on the committed golden shards
 * (tests/golden) and on live runs.  Paths come from AM_TESTS_ENVIRONMENT
 * (tests/common/testutil.h). */
#include "config.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "json.h"
#include "testutil.h"

static char *tmp;

static void setup(void)
{
	tmp = tu_tmpdir();
}

static void teardown(void)
{
	tu_rmtree(tmp);
	free(tmp);
}

TestSuite(collapsed, .init = setup, .fini = teardown, .timeout = 120);

/* Runs mtreport with args (NULL-terminated); its standard output. */
static char *mtreport(int want, const char *a0, ...)
{
	const char *argv[32];
	int n = 0;
	va_list ap;
	char *exe = tu_built("mtreport");

	argv[n++] = exe;
	va_start(ap, a0);
	for (const char *s = a0; s && n < 31; s = va_arg(ap, const char *))
		argv[n++] = s;
	va_end(ap);
	argv[n] = NULL;
	struct tu_spawn sp = { .argv = argv };
	struct tu_proc p;
	cr_assert_eq(tu_run(&sp, &p), 0);
	cr_assert(WIFEXITED(p.status) && WEXITSTATUS(p.status) == want,
		  "mtreport %s: %s: %s", a0, tu_status_str(p.status), p.err);
	char *out = p.out;
	p.out = NULL;
	tu_proc_free(&p);
	free(exe);
	return out;
}

static char *golden_dir(const char *name)
{
	char *d = tu_path(tu_env("MTALLOC_SRCDIR"), "tests/golden");
	char *r = tu_path(d, name);
	free(d);
	return r;
}

/* Sum of the values of collapsed lines; checks each line's shape. */
static double collapsed_sum(const char *text, size_t *lines)
{
	double sum = 0;
	*lines = 0;
	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		cr_assert_not_null(e, "unterminated line");
		const char *sp = e;
		while (sp > p && sp[-1] != ' ')
			sp--;
		cr_assert(sp > p + 1, "no stack before the value: %.*s", (int)(e - p), p);
		char *end;
		unsigned long long v = strtoull(sp, &end, 10);
		cr_assert_eq(end, e, "not an integer value: %.*s", (int)(e - p), p);
		cr_assert_gt(v, 0);
		sum += (double)v;
		(*lines)++;
		p = e + 1;
	}
	return sum;
}

static void totals_match(const char *name)
{
	char *d = golden_dir(name);
	char *js = mtreport(0, "--no-symbols", "-f", "json", d, NULL);
	struct json *j = json_parse(js);
	cr_assert_not_null(j);
	static const struct {
		const char *value, *key;
	} m[] = {
		{ "bytes", "totals.sampled.bytes.value" },
		{ "count", "totals.sampled.allocs.value" },
		{ "live", "totals.sampled.live_bytes.value" },
	};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		char opt[32];
		snprintf(opt, sizeof(opt), "--value=%s", m[i].value);
		char *c = mtreport(0, "--no-symbols", "-f", "collapsed", opt, d, NULL);
		size_t lines;
		double sum = collapsed_sum(c, &lines);
		double want = json_num(j, m[i].key);
		/* each line is rounded once: the sum is within half a unit
		 * per line of the total */
		cr_assert_leq(fabs(sum - want), 0.5 * (double)lines + 0.5,
			      "%s %s: collapsed %.0f, JSON %.3f", name, m[i].value, sum, want);
		free(c);
	}
	json_free(j);
	free(js);
	free(d);
}

Test(collapsed, totals_equal_the_json_reports_for_exact_weights)
{
	totals_match("trace-all");
	totals_match("trace-fork");
}

Test(collapsed, totals_equal_the_json_reports_for_sampled_runs)
{
	totals_match("wordfreq");
	totals_match("trace-sites");
}

Test(collapsed, matches_the_hand_checked_golden_file)
{
	char *d = golden_dir("trace-all");
	char *want_path = tu_path(d, "expected.collapsed");
	char *want = tu_read_file(want_path, NULL);
	cr_assert_not_null(want, "%s is missing", want_path);
	char *got = mtreport(0, "--no-symbols", "-f", "collapsed", d, NULL);
	cr_assert_str_eq(got, want);
	free(got);
	free(want);
	free(want_path);
	free(d);
}

Test(collapsed, rejects_an_unknown_value)
{
	char *d = golden_dir("trace-all");
	char *out = mtreport(1, "-f", "collapsed", "--value=weight", d, NULL);
	free(out);
	free(d);
}
