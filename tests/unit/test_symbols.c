/* The names libmtalloc.so exports (nm -D --defined-only) are exactly those
 * that src/alloc/libmtalloc.map promises between `global:` and `local:`:
 * no jemalloc or internal name leaks out, and no promised name is missing. */
#include "config.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define MAX_NAMES 512

struct names {
	char *v[MAX_NAMES];
	size_t n;
};

static void add(struct names *s, const char *name, size_t len)
{
	cr_assert_lt(s->n, MAX_NAMES, "too many names");
	s->v[s->n++] = strndup(name, len);
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has(const struct names *s, const char *name)
{
	return bsearch(&name, s->v, s->n, sizeof(s->v[0]), cmp) != NULL;
}

/* Removes C comments in place. */
static void strip_comments(char *s)
{
	char *end;

	while ((s = strstr(s, "/*"))) {
		end = strstr(s + 2, "*/");
		cr_assert_not_null(end, "unterminated comment in the map");
		memset(s, ' ', (size_t)(end + 2 - s));
	}
}

/* The names listed between "global:" and "local:", each ended by ';'. */
static void map_names(struct names *s)
{
	char *path = tu_path(tu_env("MTALLOC_SRCDIR"), "src/alloc/libmtalloc.map");
	char *text = tu_read_file(path, NULL);
	char *g, *l;

	cr_assert_not_null(text, "cannot read %s", path);
	strip_comments(text);
	g = strstr(text, "global:");
	cr_assert_not_null(g, "no global: in %s", path);
	l = strstr(g, "local:");
	cr_assert_not_null(l, "no local: in %s", path);
	*l = '\0';
	for (char *p = g + strlen("global:"); *p;) {
		while (*p && (isspace((unsigned char)*p) || *p == ';'))
			p++;
		char *start = p;
		while (*p && !isspace((unsigned char)*p) && *p != ';')
			p++;
		if (p > start) {
			cr_assert(strchr("*?[", *start) == NULL,
				  "wildcard in global: %.*s", (int)(p - start),
				  start);
			add(s, start, (size_t)(p - start));
		}
	}
	qsort(s->v, s->n, sizeof(s->v[0]), cmp);
	free(text);
	free(path);
}

/* The defined dynamic symbols of the built library, as nm prints them
 * ("ADDRESS TYPE NAME", NAME possibly with @VERSION). */
static void exported_names(struct names *s)
{
	const char *nm = getenv("NM");
	char *cmd;
	struct tu_proc p;

	if (!nm || !*nm)
		nm = "nm";
	cr_assert(asprintf(&cmd, "%s -D --defined-only \"$0\"", nm) > 0);
	const char *argv[] = { "sh", "-c", cmd, tu_lib(), NULL };
	struct tu_spawn sp = { .argv = argv };
	cr_assert_eq(tu_run(&sp, &p), 0);
	cr_assert(tu_exited_ok(&p), "%s: %s\n%s", cmd, tu_status_str(p.status),
		  p.err);
	for (char *line = strtok(p.out, "\n"); line; line = strtok(NULL, "\n")) {
		char addr[64], type[8], name[512];
		if (sscanf(line, "%63s %7s %511s", addr, type, name) != 3)
			continue;
		add(s, name, strcspn(name, "@"));
	}
	qsort(s->v, s->n, sizeof(s->v[0]), cmp);
	tu_proc_free(&p);
	free(cmd);
}

Test(symbols, exported_names_are_exactly_those_of_the_version_script,
     .timeout = 30)
{
	struct names promised = { 0 }, exported = { 0 };
	char missing[4096] = "", extra[4096] = "";

	map_names(&promised);
	exported_names(&exported);
	cr_assert_geq(promised.n, 20, "parsed only %zu names from the map",
		      promised.n);
	for (size_t i = 0; i < promised.n; i++)
		if (!has(&exported, promised.v[i]))
			snprintf(missing + strlen(missing),
				 sizeof(missing) - strlen(missing), " %s",
				 promised.v[i]);
	for (size_t i = 0; i < exported.n; i++)
		if (!has(&promised, exported.v[i]))
			snprintf(extra + strlen(extra),
				 sizeof(extra) - strlen(extra), " %s",
				 exported.v[i]);
	cr_expect_str_empty(missing, "promised but not exported:%s", missing);
	cr_expect_str_empty(extra, "exported but not promised:%s", extra);
	cr_expect_eq(exported.n, promised.n);
}

Test(symbols, every_cxx_operator_and_malloc_family_name_is_promised,
     .timeout = 30)
{
	/* the twenty operators and the C interface a drop-in malloc needs */
	static const char *const need[] = {
		"malloc", "free", "calloc", "realloc", "reallocarray",
		"posix_memalign", "aligned_alloc", "memalign", "valloc",
		"pvalloc", "malloc_usable_size", "mtalloc_version",
		"mtalloc_stats_get",
		"_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t",
		"_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
		"_ZnwmSt11align_val_tRKSt9nothrow_t",
		"_ZnamSt11align_val_tRKSt9nothrow_t",
		"_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
		"_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t",
		"_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t",
		"_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
		"_ZdlPvSt11align_val_tRKSt9nothrow_t",
		"_ZdaPvSt11align_val_tRKSt9nothrow_t",
	};
	struct names promised = { 0 };

	map_names(&promised);
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		cr_expect(has(&promised, need[i]), "%s is not in the map",
			  need[i]);
}
