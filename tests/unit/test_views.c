/* mtreport's views for other tools: collapsed stacks (flame graphs), and
 * their totals against the JSON report's, on the committed golden shards
 * (tests/golden) and on live runs.  Paths come from AM_TESTS_ENVIRONMENT
 * (tests/common/testutil.h). */
#include "config.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdbool.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "json.h"
#include "pprof_decode.h"
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

/* ---- pprof ------------------------------------------------------------------------ */

TestSuite(pprof, .init = setup, .fini = teardown, .timeout = 120);

static struct json *golden_json(const char *name)
{
	char *d = golden_dir(name);
	char *js = mtreport(0, "--no-symbols", "-f", "json", d, NULL);
	struct json *j = json_parse(js);
	cr_assert_not_null(j);
	free(js);
	free(d);
	return j;
}

static const char *pprof_of(const char *name)
{
	static char out[4096];
	char *d = golden_dir(name);
	char *o = tu_path(tmp, "p.pb.gz");
	snprintf(out, sizeof(out), "%s", o);
	free(mtreport(0, "--no-symbols", "-f", "pprof", "-o", out, d, NULL));
	free(o);
	free(d);
	return out;
}

static const char *const pp_types[4][3] = {
	{ "alloc_objects", "count", "totals.sampled.allocs.value" },
	{ "alloc_space", "bytes", "totals.sampled.bytes.value" },
	{ "inuse_objects", "count", "totals.sampled.live_objects.value" },
	{ "inuse_space", "bytes", "totals.sampled.live_bytes.value" },
};

static void pprof_structure(const char *name)
{
	size_t len;
	char *data = tu_read_file(pprof_of(name), &len);
	cr_assert_not_null(data);
	struct pp_profile p;
	char err[128];
	cr_assert_eq(pp_decode(data, len, &p, err, sizeof(err)), 0, "%s: %s", name, err);
	cr_assert_gt(p.nstr, 0);
	cr_assert_str_eq(p.str[0], "", "string_table[0] is not empty");
	cr_assert_eq(p.ntypes, 4);
	for (size_t i = 0; i < 4; i++) {
		cr_assert_str_eq(pp_str(&p, p.type[i]), pp_types[i][0]);
		cr_assert_str_eq(pp_str(&p, p.unit[i]), pp_types[i][1]);
	}
	cr_assert_str_eq(pp_str(&p, p.default_sample_type), "alloc_space");
	cr_assert_str_eq(pp_str(&p, p.period_type), "space");
	cr_assert_str_eq(pp_str(&p, p.period_unit), "bytes");
	cr_assert_gt(p.period, 0);
	cr_assert_gt(p.time_nanos, 0);

	/* every reference resolves */
	for (size_t i = 0; i < p.nloc; i++) {
		cr_assert_eq(p.loc[i].id, i + 1, "location ids are 1..n");
		cr_assert_gt(p.loc[i].nline, 0);
		for (size_t k = 0; k < p.loc[i].nline; k++) {
			uint64_t f = p.loc[i].function_id[k];
			cr_assert(f >= 1 && f <= p.nfn, "function %" PRIu64, f);
			cr_assert_eq(p.fn[f - 1].id, f);
			cr_assert_not_null(pp_str(&p, p.fn[f - 1].name));
		}
		if (p.loc[i].mapping_id) {
			bool found = false;
			for (size_t m = 0; m < p.nmap; m++)
				if (p.map[m].id == p.loc[i].mapping_id) {
					found = true;
					cr_assert(p.loc[i].address >= p.map[m].start &&
						  p.loc[i].address < p.map[m].limit);
					cr_assert_not_null(pp_str(&p, p.map[m].filename));
				}
			cr_assert(found, "mapping %" PRIu64, p.loc[i].mapping_id);
		}
	}
	double sum[4] = { 0 };
	for (size_t i = 0; i < p.nsample; i++) {
		const struct pp_sample *s = &p.sample[i];
		cr_assert_eq(s->nval, 4);
		cr_assert_gt(s->nloc, 0);
		for (size_t k = 0; k < s->nloc; k++)
			cr_assert(s->loc[k] >= 1 && s->loc[k] <= p.nloc);
		for (size_t k = 0; k < 4; k++)
			sum[k] += (double)s->val[k];
		int have = 0;
		for (size_t k = 0; k < s->nlabel; k++) {
			const char *key = pp_str(&p, s->label[k].key);
			cr_assert_not_null(key);
			if (!strcmp(key, "pid") || !strcmp(key, "tid"))
				have += s->label[k].num > 0;
			else if (!strcmp(key, "thread"))
				have += pp_str(&p, s->label[k].str) != NULL;
		}
		cr_assert_eq(have, 3, "labels pid, tid and thread");
	}
	struct json *j = golden_json(name);
	for (size_t k = 0; k < 4; k++) {
		double want = json_num(j, pp_types[k][2]);
		cr_assert_leq(fabs(sum[k] - want), 0.5 * (double)p.nsample + 0.5,
			      "%s %s: pprof %.0f, JSON %.3f", name, pp_types[k][0], sum[k], want);
	}
	json_free(j);
	pp_free(&p);
	free(data);
}

Test(pprof, decodes_with_totals_equal_to_the_json_reports)
{
	pprof_structure("trace-all");
	pprof_structure("trace-fork");
	pprof_structure("wordfreq");
	pprof_structure("trace-sites");
}

/* "Total samples = 5627392B" in go tool pprof -top's output. */
static double go_total(const char *file, const char *index)
{
	char si[64];
	snprintf(si, sizeof(si), "-sample_index=%s", index);
	char *home = tu_path(tmp, "home"), *cache = tu_path(tmp, "gocache");
	char e1[4200], e2[4200];
	snprintf(e1, sizeof(e1), "HOME=%s", home);
	snprintf(e2, sizeof(e2), "GOCACHE=%s", cache);
	const char *env[] = { e1, e2, "PPROF_TMPDIR", NULL };
	const char *argv[] = { "go", "tool", "pprof", "-symbolize=none", "-top", "-unit=B",
			       si, file, NULL };
	struct tu_spawn sp = { .argv = argv, .env = env };
	struct tu_proc pr;
	cr_assert_eq(tu_run(&sp, &pr), 0);
	cr_assert(tu_exited_ok(&pr), "go tool pprof: %s: %s", tu_status_str(pr.status), pr.err);
	const char *t = strstr(pr.out, "Total samples = ");
	cr_assert_not_null(t, "no total in: %s", pr.out);
	double v = strtod(t + 16, NULL);
	tu_proc_free(&pr);
	free(home);
	free(cache);
	return v;
}

Test(pprof, go_tool_pprof_reads_it_with_the_same_totals)
{
	if (!tu_have_program("go")) {
		cr_skip_test("go is not installed (Debian golang-go): go tool pprof not tried");
		return;
	}
	const char *names[] = { "trace-all", "wordfreq" };
	for (size_t n = 0; n < 2; n++) {
		const char *f = pprof_of(names[n]);
		struct json *j = golden_json(names[n]);
		for (size_t k = 0; k < 4; k++) {
			double got = go_total(f, pp_types[k][0]);
			double want = json_num(j, pp_types[k][2]);
			/* pprof prints 4 significant figures for large totals */
			cr_assert_leq(fabs(got - want), fmax(0.001 * want, 1.0) + 500,
				      "%s %s: go tool pprof %.0f, JSON %.3f", names[n],
				      pp_types[k][0], got, want);
		}
		json_free(j);
		/* -traces: every sample with its thread label */
		char *home = tu_path(tmp, "home"), *cache = tu_path(tmp, "gocache");
		char e1[4200], e2[4200];
		snprintf(e1, sizeof(e1), "HOME=%s", home);
		snprintf(e2, sizeof(e2), "GOCACHE=%s", cache);
		const char *env[] = { e1, e2, NULL };
		const char *argv[] = { "go", "tool", "pprof", "-symbolize=none", "-traces", f, NULL };
		struct tu_spawn sp = { .argv = argv, .env = env };
		struct tu_proc pr;
		cr_assert_eq(tu_run(&sp, &pr), 0);
		cr_assert(tu_exited_ok(&pr), "go tool pprof -traces: %s", pr.err);
		cr_assert_not_null(strstr(pr.out, "thread:"), "%s", pr.out);
		cr_assert_not_null(strstr(pr.out, "pid:"));
		tu_proc_free(&pr);
		free(home);
		free(cache);
	}
}

/* ---- diff ------------------------------------------------------------------------- */

TestSuite(diff, .init = setup, .fini = teardown, .timeout = 120);

static char *diffprog_run(const char *sub, const char *arg)
{
	char *d = tu_path(tmp, sub);
	char env[4200];
	snprintf(env, sizeof(env), "MTALLOC=sample:all,seed:1,dir:%s", d);
	const char *envv[] = { env, NULL };
	const char *argv[] = { DIFFPROG, arg, NULL };
	struct tu_spawn sp = { .argv = argv, .env = envv, .preload = 1 };
	struct tu_proc p;
	cr_assert_eq(tu_run(&sp, &p), 0);
	cr_assert(tu_exited_ok(&p), "diffprog: %s: %s", tu_status_str(p.status), p.err);
	tu_proc_free(&p);
	return d;
}

static int mtreport_status(const char *const *args)
{
	const char *argv[16];
	char *exe = tu_built("mtreport");
	int n = 0;
	argv[n++] = exe;
	for (int i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	struct tu_spawn sp = { .argv = argv };
	struct tu_proc p;
	cr_assert_eq(tu_run(&sp, &p), 0);
	int st = WIFEXITED(p.status) ? WEXITSTATUS(p.status) : 128;
	tu_proc_free(&p);
	free(exe);
	return st;
}

Test(diff, finds_exactly_the_extra_allocation_site)
{
	char *base = diffprog_run("base", "plain");
	char *nw = diffprog_run("new", "extra");
	char *js = mtreport(0, "diff", "-f", "json", base, nw, NULL);
	struct json *j = json_parse(js);
	cr_assert_not_null(j, "not JSON: %.300s", js);
	cr_assert_str_eq(json_str(j, "schema"), "mtreport-diff-1");
	cr_assert_eq(json_num(j, "stacks.new"), 1, "%s", js);
	cr_assert_eq(json_num(j, "stacks.gone"), 0, "%s", js);
	cr_assert_eq(json_num(j, "stacks.grew"), 0, "%s", js);
	cr_assert_eq(json_num(j, "stacks.shrank"), 0, "%s", js);
	const struct json *s = json_get(j, "sites");
	cr_assert(s && s->n == 1, "%s", js);
	cr_assert_str_eq(json_str(j, "sites.0.status"), "new");
	cr_assert_eq(json_num(j, "sites.0.bytes.delta"), 7 * 12345.0);
	cr_assert_eq(json_num(j, "sites.0.allocs.delta"), 7);
	cr_assert_eq(json_num(j, "sites.0.live_bytes.delta"), 7 * 12345.0);
	cr_assert_eq(json_num(j, "totals.bytes.delta"), 7 * 12345.0);
	cr_assert_eq(json_num(j, "totals.live_objects.delta"), 7);
	const char *label = json_str(j, "sites.0.label");
	cr_assert_not_null(label);
	if (strncmp(label, "diffprog+", 9)) /* symbolized */
		cr_assert_not_null(strstr(label, "extra_site"), "label %s", label);

	/* text names it too */
	char *txt = mtreport(0, "diff", base, nw, NULL);
	cr_assert_not_null(strstr(txt, "1 new, 0 gone, 0 grew, 0 shrank"), "%s", txt);
	cr_assert_not_null(strstr(txt, label), "%s", txt);

	/* CI: exit 3 beyond the threshold, 0 within it or with no change */
	const char *fail[] = { "diff", "--fail-if-growth=1", base, nw, NULL };
	cr_assert_eq(mtreport_status(fail), 3);
	const char *pass[] = { "diff", "--fail-if-growth=100000", base, nw, NULL };
	cr_assert_eq(mtreport_status(pass), 0);
	const char *same[] = { "diff", "--fail-if-growth=0", base, base, NULL };
	cr_assert_eq(mtreport_status(same), 0);
	const char *shrink[] = { "diff", "--fail-if-growth=0", nw, base, NULL };
	cr_assert_eq(mtreport_status(shrink), 0);
	const char *bad[] = { "diff", base, NULL };
	cr_assert_eq(mtreport_status(bad), 1);
	free(txt);
	json_free(j);
	free(js);
	free(base);
	free(nw);
}

/* ---- HTML ------------------------------------------------------------------------- */

TestSuite(html, .init = setup, .fini = teardown, .timeout = 180);

static size_t count(const char *s, const char *what)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, what)); p++)
		n++;
	return n;
}

#define HOSTILE_EXE "evil<script>alert(1)<\\script>\"q'&"
#define HOSTILE_ARG "<img src=x onerror=alert(2)>"

/* diffprog copied under a name full of markup, run with a hostile argument
 * and thread name; the HTML report of it. */
static char *hostile_report(void)
{
	size_t len;
	char *bin = tu_read_file(DIFFPROG, &len);
	cr_assert_not_null(bin);
	char *exe = tu_path(tmp, HOSTILE_EXE);
	tu_write_file(exe, bin, len);
	chmod(exe, 0755);
	free(bin);
	char *d = tu_path(tmp, "hostile");
	char env[4200];
	snprintf(env, sizeof(env), "MTALLOC=sample:all,seed:1,dir:%s", d);
	const char *envv[] = { env, NULL };
	const char *argv[] = { exe, "hostile", HOSTILE_ARG, NULL };
	struct tu_spawn sp = { .argv = argv, .env = envv, .preload = 1 };
	struct tu_proc p;
	cr_assert_eq(tu_run(&sp, &p), 0);
	cr_assert(tu_exited_ok(&p), "%s: %s", tu_status_str(p.status), p.err);
	tu_proc_free(&p);
	char *html = tu_path(tmp, "hostile.html");
	free(mtreport(0, "-f", "html", "-o", html, d, NULL));
	free(d);
	free(exe);
	return html;
}

Test(html, is_self_contained_and_carries_hostile_strings_only_as_data)
{
	char *path = hostile_report();
	char *h = tu_read_file(path, NULL);
	cr_assert_not_null(h);
	/* two script elements, ours: the data and the code */
	cr_assert_eq(count(h, "<script"), 2, "script elements: %zu", count(h, "<script"));
	cr_assert_null(strstr(h, "<img"));
	cr_assert_null(strstr(h, "alert(1)<"));
	cr_assert_not_null(strstr(h, "evil\\u003cscript\\u003ealert(1)"), "the name is in the data");
	/* nothing to fetch, outside the data (which holds the argument) */
	char *data = strstr(h, "id=\"mt-data\">");
	cr_assert_not_null(data);
	char *dend = strstr(data, "</script>");
	cr_assert_not_null(dend);
	memmove(data, dend, strlen(dend) + 1);
	cr_assert_null(strstr(h, " src="));
	cr_assert_null(strstr(h, " href="));
	cr_assert_null(strstr(h, "@import"));
	cr_assert_null(strstr(h, "url("));
	cr_assert_null(strstr(h, "https://"));
	free(h);
	free(path);
}

/* Runs headless chromium on file#frag: the DOM after the scripts ran, or a
 * screenshot.  The browser's stderr into *err. */
static char *chromium(const char *file, const char *frag, const char *shot, char **err)
{
	char url[4300], prof[4200], shotarg[4300];
	snprintf(url, sizeof(url), "file://%s%s", file, frag);
	snprintf(prof, sizeof(prof), "--user-data-dir=%s/chromium", tmp);
	snprintf(shotarg, sizeof(shotarg), "--screenshot=%s", shot ? shot : "");
	const char *argv[] = { "chromium", "--headless", "--no-sandbox", "--disable-gpu",
			       "--disable-background-networking", "--no-first-run",
			       "--disable-component-update", "--disable-sync", prof,
			       "--enable-logging=stderr", "--v=0", "--window-size=1280,1800",
			       shot ? shotarg : "--dump-dom", url, NULL };
	struct tu_spawn sp = { .argv = argv };
	struct tu_proc p;
	cr_assert_eq(tu_run(&sp, &p), 0);
	cr_assert(tu_exited_ok(&p), "chromium: %s: %s", tu_status_str(p.status), p.err);
	char *out = p.out;
	*err = p.err;
	p.out = p.err = NULL;
	tu_proc_free(&p);
	return out;
}

static const char *attr(const char *dom, const char *what, char *buf, size_t len)
{
	const char *p = strstr(dom, what);
	if (!p)
		return NULL;
	p += strlen(what);
	size_t n = strcspn(p, "\"");
	snprintf(buf, len, "%.*s", (int)n, p);
	return buf;
}

static void page_checks(const char *html, const char *json_dir, bool hostile)
{
	char *err;
	char *dom = chromium(html, "#selftest", NULL, &err);
	char b[256];
	cr_assert_not_null(strstr(dom, "data-state=\"ready\""), "the page did not finish: %.500s", dom);
	cr_assert_null(strstr(dom, "data-errors="), "script errors: %s",
		       attr(dom, "data-errors=\"", b, sizeof(b)));
	cr_assert_null(strstr(err, "Uncaught"), "console: %s", err);
	cr_assert_not_null(attr(dom, "data-selftest=\"", b, sizeof(b)));
	cr_assert(!strncmp(b, "zoomed:", 7), "a click on a frame did not zoom: %s", b);
	/* the numbers of the JSON report */
	char *js = mtreport(0, "-f", "json", json_dir, NULL);
	struct json *j = json_parse(js);
	cr_assert_not_null(j);
	double want = json_num(j, "totals.sampled.bytes.value");
	cr_assert_not_null(attr(dom, "id=\"total-bytes\" data-value=\"", b, sizeof(b)));
	cr_assert_eq(strtod(b, NULL), llround(want), "headline %s, JSON %.0f", b, want);
	cr_assert_not_null(attr(dom, "data-total=\"", b, sizeof(b)), "no flame graph");
	cr_assert_eq(strtod(b, NULL), llround(want), "flame graph %s, JSON %.0f", b, want);
	const struct json *sites = json_get(j, "sites");
	cr_assert_not_null(sites);
	/* the sites table: a row per site (each with 7 cells), plus the headers */
	const char *t = strstr(dom, "id=\"t-sites\"");
	cr_assert_not_null(t, "no sites table");
	const char *tend = strstr(t, "id=\"t-threads\"");
	cr_assert_not_null(tend);
	size_t rows = 0;
	for (const char *p = t; (p = strstr(p, "<tr>")) && p < tend; p++)
		rows++;
	cr_assert_eq(rows, sites->n + 1, "sites table rows %zu, JSON sites %zu", rows, sites->n);
	cr_assert_not_null(strstr(dom, "<polyline"), "no timeline");
	cr_assert_not_null(strstr(dom, "id=\"t-threads\""));
	cr_assert_not_null(strstr(dom, "id=\"t-sizes\""));
	cr_assert_not_null(strstr(dom, "id=\"t-life\""));
	if (hostile) {
		/* shown as text: serialised escaped, no element of theirs */
		cr_assert_not_null(strstr(dom, "evil&lt;script&gt;alert(1)"), "exe name not shown");
		cr_assert_not_null(strstr(dom, "&lt;img src=x onerror=alert(2)&gt;"), "argument not shown");
		cr_assert_not_null(strstr(dom, "&lt;script&gt;\"'&amp;x"), "thread name not shown");
		cr_assert_null(strstr(dom, "<img"));
		cr_assert_eq(count(dom, "<script"), 2);
	}
	json_free(j);
	free(js);
	free(dom);
	free(err);
}

Test(html, opens_in_headless_chromium_with_the_json_reports_numbers)
{
	if (!tu_have_program("chromium")) {
		cr_skip_test("chromium is not installed (Debian chromium): the HTML report was not opened");
		return;
	}
	char *path = hostile_report();
	char *d = tu_path(tmp, "hostile");
	page_checks(path, d, true);
	free(d);
	free(path);

	/* the bundled example's profile (tests/golden/wordfreq) */
	char *g = golden_dir("wordfreq");
	char *html = tu_path(tmp, "wordfreq.html");
	free(mtreport(0, "-f", "html", "-o", html, g, NULL));
	page_checks(html, g, false);
	/* the screenshot, a test artefact: tests/views/report.png in the build tree */
	char *shot = tu_path(tu_env("MTALLOC_BUILDDIR"), "tests/views/report.png");
	char *err;
	free(chromium(html, "", shot, &err));
	free(err);
	size_t n = 0;
	char *png = tu_read_file(shot, &n);
	cr_assert(png && n > 1000 && !memcmp(png, "\x89PNG", 4), "no screenshot at %s", shot);
	free(png);
	free(shot);
	free(html);
	free(g);
}
