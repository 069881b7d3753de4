/* The symbolizer (src/report/symbolize.c) against programs that tell where
 * their own code is (tests/sym/symprog.c): return addresses with the line of
 * their call, function entries with their line range, an inline chain, a
 * shared object, C++ names; then the same binaries stripped, with their
 * debug files found by build-id, in a debuginfod cache and by debuglink;
 * and files that must give no frame (a wrong build-id, missing paths,
 * garbage) without crashing.  Scratch files go to a fresh directory under
 * $TMPDIR. */
#include "config.h"

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "report/symbolize.h"
#include "testutil.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define SYMPROG SYM_HELPERS "/symprog"
#define SYMPROG_OPT SYM_HELPERS "/symprog-opt"
#define SYMCXX SYM_HELPERS "/symcxx"
#define SYMLIB SYM_HELPERS "/.libs/symlib.so"
#define SRC_SUFFIX "tests/sym/symprog.c"

/* ---- what a helper says about itself ------------------------------------------ */

struct mod {
	char path[4096];
	uint8_t id[64];
	uint32_t id_len;
};

struct site {
	char kind[8];       /* func, call, inline */
	char mod[8];        /* main, lib */
	uint64_t off;       /* from the load bias; call/inline: a return address */
	int a, b, c;        /* func: first, last; call: line; inline: 3 lines */
	char name[256];
};

struct truth {
	struct mod main, lib;
	struct site sites[32];
	int n;
};

static void parse_id(const char *hex, struct mod *m)
{
	m->id_len = 0;
	if (strcmp(hex, "-") == 0)
		return;
	for (size_t i = 0; hex[2 * i] && hex[2 * i + 1] && i < sizeof(m->id); i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		m->id[m->id_len++] = (uint8_t)v;
	}
}

static void run_helper(const char *prog, const char *arg, struct truth *t)
{
	char cmd[8192], line[8192];

	memset(t, 0, sizeof(*t));
	snprintf(cmd, sizeof(cmd), "'%s' %s%s%s", prog, arg ? "'" : "", arg ? arg : "",
		 arg ? "'" : "");
	FILE *f = popen(cmd, "r");
	cr_assert(f, "popen %s", cmd);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char kind[8], which[8], path[4096], hex[256];
		uintptr_t bias;
		int used = 0;
		if (sscanf(line, "module %7s %4095s %" SCNxPTR " %255s", which, path, &bias,
			   hex) == 4) {
			struct mod *m = strcmp(which, "lib") == 0 ? &t->lib : &t->main;
			snprintf(m->path, sizeof(m->path), "%s", path);
			parse_id(hex, m);
			continue;
		}
		cr_assert_lt(t->n, 32);
		struct site *s = &t->sites[t->n];
		if (sscanf(line, "%7s %7s %" SCNx64 " %n", kind, which, &s->off, &used) != 3)
			cr_assert_fail("bad line from %s: %s", prog, line);
		snprintf(s->kind, sizeof(s->kind), "%s", kind);
		snprintf(s->mod, sizeof(s->mod), "%s", which);
		const char *rest = line + used;
		int k = 0;
		if (strcmp(kind, "func") == 0)
			cr_assert_eq(sscanf(rest, "%d %d %n", &s->a, &s->b, &k), 2);
		else if (strcmp(kind, "call") == 0)
			cr_assert_eq(sscanf(rest, "%d %n", &s->a, &k), 1);
		else if (strcmp(kind, "inline") == 0)
			cr_assert_eq(sscanf(rest, "%d %d %d%n", &s->a, &s->b, &s->c, &k), 3);
		snprintf(s->name, sizeof(s->name), "%s", rest + k);
		t->n++;
	}
	cr_assert_eq(pclose(f), 0, "%s failed", cmd);
	cr_assert(t->main.path[0], "%s printed no module line", prog);
}

static const struct site *site(const struct truth *t, const char *kind,
			       const char *mod, const char *name)
{
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->sites[i].kind, kind) == 0 && strcmp(t->sites[i].mod, mod) == 0 &&
		    (!name || strcmp(t->sites[i].name, name) == 0))
			return &t->sites[i];
	cr_assert_fail("no %s %s %s", kind, mod, name ? name : "");
	return NULL;
}

static struct mt_sym_module as_module(const struct mod *m)
{
	return (struct mt_sym_module){
		.path = m->path,
		.build_id = m->id_len ? m->id : NULL,
		.build_id_len = m->id_len,
	};
}

/* ---- scratch directory and commands -------------------------------------------- */

static char tmp[4096];

static void setup(void)
{
	char *made = tu_tmpdir();

	cr_assert_lt(strlen(made), sizeof(tmp));
	strcpy(tmp, made);
	free(made);
}

static void teardown(void)
{
	if (tmp[0])
		tu_rmtree(tmp);
}

TestSuite(symbolize, .init = setup, .fini = teardown, .timeout = 60);

/* Runs a command (argv, NULL-terminated), which must succeed. */
static void run(const char *prog, ...)
{
	const char *argv[16];
	va_list ap;
	int n = 0;

	argv[n++] = prog;
	va_start(ap, prog);
	while (n < 15 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execvp(prog, (char *const *)argv);
		_exit(127);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s %s failed", prog,
		  argv[1]);
}

static const char *tmp_path(char *buf, const char *fmt, ...)
{
	char rel[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	cr_assert_lt(snprintf(buf, 4096, "%s/%s", tmp, rel), 4096);
	return buf;
}

static void make_dirs(const char *path)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0700);
			*s = '/';
		}
	mkdir(p, 0700);
}

static void hex_of(const struct mod *m, char *hex)
{
	for (uint32_t i = 0; i < m->id_len; i++)
		sprintf(hex + 2 * i, "%02x", m->id[i]);
}

/* DIR/.build-id/xx/yyyy.debug for module m, made from `debug`. */
static void place_by_build_id(const char *dir, const struct mod *m, const char *debug)
{
	char hex[129], d[4096], f[4096];

	hex_of(m, hex);
	snprintf(d, sizeof(d), "%s/.build-id/%.2s", dir, hex);
	make_dirs(d);
	cr_assert_lt(snprintf(f, sizeof(f), "%s/%s.debug", d, hex + 2), (int)sizeof(f));
	run("cp", debug, f, NULL);
}

/* ---- checks ---------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = s ? strlen(s) : 0, k = strlen(suffix);

	return s && n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The call at return address `off` (module-relative): one frame, the right
 * function, file and line. */
static void expect_call(struct mt_symbolizer *s, const struct mt_sym_module *m,
			const struct site *c, const char *file_suffix)
{
	struct mt_sym_frame f[8];
	int n = mt_sym_lookup(s, m, c->off - 1, f, 8);

	cr_assert_eq(n, 1, "%s: %d frames", c->name, n);
	cr_assert_str_eq(f[0].function, c->name);
	cr_assert(ends_with(f[0].file, file_suffix), "%s: file %s", c->name, f[0].file);
	cr_assert_eq(f[0].line, (unsigned)c->a, "%s: line %u, want %d", c->name,
		     f[0].line, c->a);
	cr_assert_not(f[0].inlined);
}

static void expect_inline_chain(struct mt_symbolizer *s, const struct mt_sym_module *m,
				const struct site *c)
{
	static const char *names[] = { "in_inner", "in_middle", "in_outer" };
	const int lines[] = { c->a, c->b, c->c };
	struct mt_sym_frame f[8];
	int n = mt_sym_lookup(s, m, c->off - 1, f, 8);

	cr_assert_eq(n, 3, "%d frames", n);
	for (int i = 0; i < 3; i++) {
		cr_assert_str_eq(f[i].function, names[i]);
		cr_assert(ends_with(f[i].file, SRC_SUFFIX), "frame %d: file %s", i, f[i].file);
		cr_assert_eq(f[i].line, (unsigned)lines[i], "frame %d (%s): line %u, want %d",
			     i, names[i], f[i].line, lines[i]);
		cr_assert_eq(f[i].inlined, i < 2, "frame %d inlined", i);
	}
}

/* Everything symprog says about itself resolves as it says. */
static void expect_symprog(struct mt_symbolizer *s, const struct truth *t,
			   const struct mt_sym_module *m)
{
	expect_call(s, m, site(t, "call", "main", "sym_leaf"), SRC_SUFFIX);
	expect_call(s, m, site(t, "call", "main", "sym_caller"), SRC_SUFFIX);
	expect_inline_chain(s, m, site(t, "inline", "main", NULL));
}

/* Names only (the symbol table): no file, no line. */
static void expect_names_only(struct mt_symbolizer *s, const struct truth *t,
			      const struct mt_sym_module *m)
{
	const char *names[] = { "sym_leaf", "sym_caller" };

	for (int i = 0; i < 2; i++) {
		const struct site *c = site(t, "call", "main", names[i]);
		struct mt_sym_frame f[8];
		int n = mt_sym_lookup(s, m, c->off - 1, f, 8);
		cr_assert_eq(n, 1, "%s: %d frames", names[i], n);
		cr_assert_str_eq(f[0].function, names[i]);
		cr_assert_null(f[0].file);
		cr_assert_eq(f[0].line, 0);
		cr_assert_not(f[0].inlined);
	}
}

static void expect_nothing(struct mt_symbolizer *s, const struct truth *t,
			   const struct mt_sym_module *m)
{
	struct mt_sym_frame f[8];

	for (int i = 0; i < t->n; i++) {
		cr_assert_eq(mt_sym_lookup(s, m, t->sites[i].off - 1, f, 8), 0,
			     "%s %s gave a frame", t->sites[i].kind, t->sites[i].name);
		cr_assert_eq(mt_sym_lookup(s, m, t->sites[i].off, f, 8), 0);
	}
	cr_assert_not(mt_sym_module_found(s, m));
}

static struct mt_symbolizer *new_sym(const char *debug_path)
{
	struct mt_symbolizer *s = NULL;

	cr_assert_eq(mt_sym_new(&s, debug_path), 0);
	cr_assert_not_null(s);
	return s;
}

/* ---- with debug info ---------------------------------------------------------------- */

Test(symbolize, return_addresses_give_function_file_and_call_line_at_O0)
{
	struct truth t;
	run_helper(SYMPROG, NULL, &t);
	struct mt_sym_module m = as_module(&t.main);
	struct mt_symbolizer *s = new_sym(NULL);

	expect_call(s, &m, site(&t, "call", "main", "sym_leaf"), SRC_SUFFIX);
	expect_call(s, &m, site(&t, "call", "main", "sym_caller"), SRC_SUFFIX);
	cr_assert(mt_sym_module_found(s, &m));
	mt_sym_free(s);
}

Test(symbolize, return_addresses_give_function_file_and_call_line_at_O2)
{
	struct truth t;
	run_helper(SYMPROG_OPT, NULL, &t);
	struct mt_sym_module m = as_module(&t.main);
	struct mt_symbolizer *s = new_sym(NULL);

	expect_call(s, &m, site(&t, "call", "main", "sym_leaf"), SRC_SUFFIX);
	expect_call(s, &m, site(&t, "call", "main", "sym_caller"), SRC_SUFFIX);
	mt_sym_free(s);
}

Test(symbolize, addresses_inside_a_function_name_it_within_its_lines)
{
	const char *progs[] = { SYMPROG, SYMPROG_OPT };

	for (int p = 0; p < 2; p++) {
		struct truth t;
		run_helper(progs[p], NULL, &t);
		struct mt_sym_module m = as_module(&t.main);
		struct mt_symbolizer *s = new_sym(NULL);
		for (int i = 0; i < t.n; i++) {
			const struct site *fn = &t.sites[i];
			if (strcmp(fn->kind, "func") != 0)
				continue;
			for (uint64_t d = 0; d < 5; d++) {
				struct mt_sym_frame f[8];
				int n = mt_sym_lookup(s, &m, fn->off + d, f, 8);
				cr_assert_eq(n, 1, "%s+%" PRIu64 ": %d frames", fn->name, d, n);
				cr_assert_str_eq(f[0].function, fn->name);
				cr_assert(ends_with(f[0].file, SRC_SUFFIX));
				cr_assert(f[0].line >= (unsigned)fn->a && f[0].line <= (unsigned)fn->b,
					  "%s+%" PRIu64 ": line %u outside %d..%d", fn->name, d,
					  f[0].line, fn->a, fn->b);
			}
		}
		mt_sym_free(s);
	}
}

Test(symbolize, inlined_frames_come_innermost_first_with_call_sites)
{
	const char *progs[] = { SYMPROG, SYMPROG_OPT };

	for (int p = 0; p < 2; p++) {
		struct truth t;
		run_helper(progs[p], NULL, &t);
		struct mt_sym_module m = as_module(&t.main);
		struct mt_symbolizer *s = new_sym(NULL);
		expect_inline_chain(s, &m, site(&t, "inline", "main", NULL));
		mt_sym_free(s);
	}
}

Test(symbolize, max_keeps_the_innermost_frames)
{
	struct truth t;
	run_helper(SYMPROG_OPT, NULL, &t);
	struct mt_sym_module m = as_module(&t.main);
	struct mt_symbolizer *s = new_sym(NULL);
	const struct site *c = site(&t, "inline", "main", NULL);
	struct mt_sym_frame f[3] = { { 0 } };

	cr_assert_eq(mt_sym_lookup(s, &m, c->off - 1, f, 0), 0);
	cr_assert_eq(mt_sym_lookup(s, &m, c->off - 1, f, 1), 1);
	cr_assert_str_eq(f[0].function, "in_inner");
	cr_assert_null(f[1].function, "wrote past max");
	cr_assert_eq(mt_sym_lookup(s, &m, c->off - 1, f, 2), 2);
	cr_assert_str_eq(f[1].function, "in_middle");
	mt_sym_free(s);
}

Test(symbolize, offsets_in_a_shared_object_resolve)
{
	struct truth t;
	run_helper(SYMPROG, SYMLIB, &t);
	struct mt_sym_module m = as_module(&t.lib);
	struct mt_symbolizer *s = new_sym(NULL);

	cr_assert(ends_with(t.lib.path, "/symlib.so"), "%s", t.lib.path);
	cr_assert_gt(t.lib.id_len, 0);
	expect_call(s, &m, site(&t, "call", "lib", "symlib_leaf"), "tests/sym/symlib.c");
	const struct site *fn = site(&t, "func", "lib", "symlib_leaf");
	struct mt_sym_frame f[8];
	cr_assert_eq(mt_sym_lookup(s, &m, fn->off, f, 8), 1);
	cr_assert_str_eq(f[0].function, "symlib_leaf");
	cr_assert(f[0].line >= (unsigned)fn->a && f[0].line <= (unsigned)fn->b);
	/* the program, in the same symbolizer */
	struct mt_sym_module pm = as_module(&t.main);
	expect_symprog(s, &t, &pm);
	mt_sym_free(s);
}

Test(symbolize, cxx_names_are_demangled)
{
	struct truth t;
	run_helper(SYMCXX, NULL, &t);
	struct mt_sym_module m = as_module(&t.main);
	struct mt_symbolizer *s = new_sym(NULL);

	expect_call(s, &m, site(&t, "call", "main", "mt_test::Widget::grow(int)"),
		    "tests/sym/symcxx.cc");
	expect_call(s, &m, site(&t, "call", "main", "int mt_test::twice<int>(int)"),
		    "tests/sym/symcxx.cc");
	mt_sym_free(s);
}

Test(symbolize, a_c_library_function_is_named)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	cr_assert_not_null(libc);
	void *fn = dlsym(libc, "qsort");
	Dl_info info;
	struct link_map *lm;
	cr_assert(fn && dladdr1(fn, &info, (void **)&lm, RTLD_DL_LINKMAP));
	struct mt_sym_module m = { .path = lm->l_name };
	struct mt_symbolizer *s = new_sym(NULL);
	struct mt_sym_frame f[8];

	int n = mt_sym_lookup(s, &m, (uintptr_t)fn - lm->l_addr + 1, f, 8);
	cr_assert_geq(n, 1, "%s: no frame", lm->l_name);
	cr_assert(f[n - 1].function && strstr(f[n - 1].function, "sort"), "%s",
		  f[n - 1].function);
	mt_sym_free(s);
	dlclose(libc);
}

/* ---- without debug info, or with it elsewhere ---------------------------------------- */

Test(symbolize, names_come_from_the_symbol_table_without_debug_info)
{
	struct truth t;
	char stripped[4096];
	run_helper(SYMPROG, NULL, &t);
	run(OBJCOPY, "--strip-debug", t.main.path, tmp_path(stripped, "nodebug"), NULL);
	struct mt_symbolizer *s = new_sym(tmp);

	struct mt_sym_module m = as_module(&t.main);
	m.path = stripped;
	expect_names_only(s, &t, &m);
	cr_assert(mt_sym_module_found(s, &m));
	m.build_id = NULL; /* the path alone */
	m.build_id_len = 0;
	expect_names_only(s, &t, &m);
	mt_sym_free(s);
}

Test(symbolize, a_debug_file_is_found_by_build_id)
{
	const char *progs[] = { SYMPROG, SYMPROG_OPT };

	for (int p = 0; p < 2; p++) {
		struct truth t;
		char stripped[4096], debug[4096], dir[4096];
		run_helper(progs[p], NULL, &t);
		run(OBJCOPY, "--strip-debug", t.main.path, tmp_path(stripped, "stripped%d", p),
		    NULL);
		run(OBJCOPY, "--only-keep-debug", t.main.path, tmp_path(debug, "d%d", p), NULL);
		tmp_path(dir, "debug-root");
		place_by_build_id(dir, &t.main, debug);
		struct mt_symbolizer *s = new_sym(dir);
		struct mt_sym_module m = as_module(&t.main);
		m.path = stripped;
		expect_symprog(s, &t, &m);
		mt_sym_free(s);
	}
}

Test(symbolize, the_debug_file_alone_serves_when_the_binary_is_gone)
{
	struct truth t;
	char debug[4096], gone[4096];
	run_helper(SYMPROG_OPT, NULL, &t);
	run(OBJCOPY, "--only-keep-debug", t.main.path, tmp_path(debug, "d"), NULL);
	place_by_build_id(tmp, &t.main, debug);
	struct mt_symbolizer *s = new_sym(tmp);
	struct mt_sym_module m = as_module(&t.main);
	m.path = tmp_path(gone, "no/such/program");

	expect_symprog(s, &t, &m);
	cr_assert(mt_sym_module_found(s, &m));
	mt_sym_free(s);
}

Test(symbolize, the_debuginfod_cache_layout_is_searched)
{
	struct truth t;
	char stripped[4096], dir[4096], hex[129];
	run_helper(SYMPROG_OPT, NULL, &t);
	hex_of(&t.main, hex);
	make_dirs(tmp_path(dir, "cache/%s", hex));
	run(OBJCOPY, "--only-keep-debug", t.main.path, tmp_path(dir, "cache/%s/debuginfo", hex),
	    NULL);
	run(OBJCOPY, "--strip-all", t.main.path, tmp_path(stripped, "stripped"), NULL);
	struct mt_symbolizer *s = new_sym(tmp_path(dir, "cache"));
	struct mt_sym_module m = as_module(&t.main);
	m.path = stripped;

	expect_symprog(s, &t, &m);
	mt_sym_free(s);

	/* the executable from the cache too, when the path is gone */
	run("mv", stripped, tmp_path(dir, "cache/%s/executable", hex), NULL);
	s = new_sym(tmp_path(dir, "cache"));
	expect_symprog(s, &t, &m);
	mt_sym_free(s);
}

Test(symbolize, a_debuglink_beside_the_binary_is_followed)
{
	struct truth t;
	char bin[4096], debug[4096], dir[4096];
	run_helper(SYMPROG, NULL, &t);
	make_dirs(tmp_path(dir, "bin/.debug"));
	run(OBJCOPY, "--only-keep-debug", t.main.path, tmp_path(debug, "bin/.debug/symprog.dbg"),
	    NULL);
	/* objcopy wants the debug file at the name given: link from its dir */
	run("sh", "-c", "cd \"$1\" && \"$2\" --strip-debug --add-gnu-debuglink=.debug/symprog.dbg \"$3\" symprog",
	    "sh", tmp_path(dir, "bin"), OBJCOPY, t.main.path, NULL);
	struct mt_symbolizer *s = new_sym(NULL);
	struct mt_sym_module m = as_module(&t.main);
	m.path = tmp_path(bin, "bin/symprog");

	expect_symprog(s, &t, &m);
	mt_sym_free(s);
}

Test(symbolize, a_debuglink_without_build_id_is_checked_by_crc)
{
	struct truth t, other;
	char dir[4096], bin[4096], debug[4096], wrong[4096];
	run_helper(SYMPROG, NULL, &t);
	run_helper(SYMPROG_OPT, NULL, &other);
	make_dirs(tmp_path(dir, "bin"));
	run(OBJCOPY, "--only-keep-debug", "--remove-section=.note.gnu.build-id", t.main.path,
	    tmp_path(debug, "bin/symprog.dbg"), NULL);
	run("sh", "-c", "cd \"$1\" && \"$2\" --strip-debug --remove-section=.note.gnu.build-id --add-gnu-debuglink=symprog.dbg \"$3\" symprog",
	    "sh", tmp_path(dir, "bin"), OBJCOPY, t.main.path, NULL);
	struct mt_sym_module m = { .path = tmp_path(bin, "bin/symprog") };
	struct mt_symbolizer *s = new_sym(NULL);

	expect_symprog(s, &t, &m);
	mt_sym_free(s);

	/* another program's debug file under that name: names only */
	run(OBJCOPY, "--only-keep-debug", "--remove-section=.note.gnu.build-id",
	    other.main.path, tmp_path(wrong, "bin/symprog.dbg"), NULL);
	s = new_sym(NULL);
	expect_names_only(s, &t, &m);
	mt_sym_free(s);
}

static struct mod build_id_of(const char *path)
{
	struct mod m = { .id_len = 0 };
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "%s", path);
	elf_version(EV_CURRENT);
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	const void *id = NULL;
	ssize_t n = elf ? dwelf_elf_gnu_build_id(elf, &id) : -1;
	cr_assert(n > 0 && (size_t)n <= sizeof(m.id), "%s: no build-id", path);
	memcpy(m.id, id, (size_t)n);
	m.id_len = (uint32_t)n;
	elf_end(elf);
	close(fd);
	return m;
}

Test(symbolize, dwz_alt_files_are_found_by_name_and_build_id)
{
	struct truth t, o;
	char a[4096], b[4096], dir[4096], alt[4096];

	if (system("command -v dwz >/dev/null 2>&1") != 0)
		cr_skip_test("dwz is not installed");
	run_helper(SYMPROG, NULL, &t);
	run_helper(SYMPROG_OPT, NULL, &o);
	run("cp", t.main.path, tmp_path(a, "a"), NULL);
	run("cp", o.main.path, tmp_path(b, "b"), NULL);
	/* the DWARF the two share moves to common.debug, named relatively */
	run("sh", "-c", "cd \"$1\" && dwz -m common.debug -M common.debug a b", "sh", tmp,
	    NULL);
	struct mt_sym_module m = as_module(&o.main);
	m.path = b;
	struct mt_symbolizer *s = new_sym(NULL);
	expect_symprog(s, &o, &m);
	mt_sym_free(s);

	/* gone from beside it: found by its build-id */
	struct mod common = build_id_of(tmp_path(alt, "common.debug"));
	place_by_build_id(tmp_path(dir, "dbg"), &common, alt);
	cr_assert_eq(unlink(alt), 0);
	s = new_sym(dir);
	expect_symprog(s, &o, &m);
	mt_sym_free(s);
}

/* ---- what must give no frame ---------------------------------------------------------- */

Test(symbolize, a_rebuilt_binary_gives_no_frame)
{
	struct truth t, other;
	run_helper(SYMPROG, NULL, &t);
	run_helper(SYMPROG_OPT, NULL, &other);
	struct mt_symbolizer *s = new_sym(NULL);
	struct mt_sym_module m = as_module(&t.main);

	/* the recorded build-id is another one's: the file at the path is not
	 * the one that ran */
	m.build_id = other.main.id;
	expect_nothing(s, &t, &m);
	uint8_t flipped[64];
	memcpy(flipped, t.main.id, t.main.id_len);
	flipped[t.main.id_len - 1] ^= 1;
	m.build_id = flipped;
	expect_nothing(s, &t, &m);
	m.build_id_len = 4; /* a prefix of the right one is not it either */
	m.build_id = t.main.id;
	expect_nothing(s, &t, &m);
	/* the right one still works in the same symbolizer */
	m = as_module(&t.main);
	expect_symprog(s, &t, &m);
	mt_sym_free(s);
}

Test(symbolize, missing_and_relative_paths_give_no_frame)
{
	struct truth t;
	run_helper(SYMPROG, NULL, &t);
	const char *paths[] = { "/nonexistent/mtsym/prog", "symprog", "libc.so.6",
				"linux-vdso.so.1", "", NULL };
	struct mt_symbolizer *s = new_sym(NULL);

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct mt_sym_module m = as_module(&t.main);
		m.path = paths[i];
		expect_nothing(s, &t, &m);
		m.build_id = NULL;
		m.build_id_len = 0;
		expect_nothing(s, &t, &m);
	}
	mt_sym_free(s);
}

Test(symbolize, a_program_replaced_while_it_ran_is_read_at_its_path)
{
	struct truth t;
	char path[4200];
	run_helper(SYMPROG, NULL, &t);
	struct mt_symbolizer *s = new_sym(NULL);
	struct mt_sym_module m = as_module(&t.main);

	/* what /proc/PID/exe reads then; the build-id tells if it is the one */
	snprintf(path, sizeof(path), "%s (deleted)", t.main.path);
	m.path = path;
	expect_symprog(s, &t, &m);
	mt_sym_free(s);
}

Test(symbolize, module_found_needs_a_lookup_first)
{
	struct truth t;
	run_helper(SYMPROG, NULL, &t);
	struct mt_symbolizer *s = new_sym(NULL);
	struct mt_sym_module m = as_module(&t.main);
	struct mt_sym_frame f[4];

	cr_assert_not(mt_sym_module_found(s, &m));
	mt_sym_lookup(s, &m, 0, f, 4);
	cr_assert(mt_sym_module_found(s, &m));
	/* a copy of the key is the same module */
	char path[4096];
	uint8_t id[64];
	snprintf(path, sizeof(path), "%s", t.main.path);
	memcpy(id, t.main.id, t.main.id_len);
	struct mt_sym_module copy = { path, id, t.main.id_len };
	cr_assert(mt_sym_module_found(s, &copy));
	cr_assert_not(mt_sym_module_found(s, NULL));
	cr_assert_not(mt_sym_module_found(NULL, &m));
	mt_sym_free(s);
}

Test(symbolize, huge_and_outside_offsets_give_no_frame)
{
	struct truth t;
	run_helper(SYMPROG, NULL, &t);
	struct mt_symbolizer *s = new_sym(NULL);
	struct mt_sym_module m = as_module(&t.main);
	const uint64_t offs[] = { UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 4096,
				  1ull << 63, 1ull << 40, 1ull << 32, 16u << 20 };
	struct mt_sym_frame f[4];

	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		cr_assert_eq(mt_sym_lookup(s, &m, offs[i], f, 4), 0, "offset %#" PRIx64,
			     offs[i]);
	expect_symprog(s, &t, &m);
	cr_assert_eq(mt_sym_lookup(NULL, &m, 0, f, 4), 0);
	cr_assert_eq(mt_sym_lookup(s, NULL, 0, f, 4), 0);
	cr_assert_eq(mt_sym_lookup(s, &m, 0, NULL, 4), 0);
	cr_assert_eq(mt_sym_lookup(s, &m, 0, f, -1), 0);
	mt_sym_free(s);
}

/* Lookups at offsets that matter in an ELF file and around the helper's
 * code, in every module: must not crash, whatever they return. */
static void poke(struct mt_symbolizer *s, const struct mt_sym_module *m,
		 const struct truth *t)
{
	const uint64_t offs[] = { 0, 1, 16, 64, 0x1000, 0x1fff, 0x10000, UINT64_MAX };
	struct mt_sym_frame f[8];

	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		int n = mt_sym_lookup(s, m, offs[i], f, 8);
		cr_assert(n >= 0 && n <= 8);
	}
	for (int i = 0; i < t->n; i++) {
		int n = mt_sym_lookup(s, m, t->sites[i].off - 1, f, 8);
		cr_assert(n >= 0 && n <= 8);
		for (int k = 0; k < n; k++)
			if (f[k].function)
				cr_assert_gt(strlen(f[k].function), 0);
	}
	(void)mt_sym_module_found(s, m);
}

Test(symbolize, garbage_files_never_crash)
{
	struct truth t;
	char p[4096];
	run_helper(SYMPROG, NULL, &t);
	struct mt_symbolizer *s = new_sym(tmp);
	unsigned char junk[8192];
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < sizeof(junk); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		junk[i] = (unsigned char)x;
	}
	tu_write_file(tmp_path(p, "empty"), "", 0);
	tu_write_file(tmp_path(p, "junk"), junk, sizeof(junk));
	memcpy(junk, "\177ELF\2\1\1", 7); /* an ELF header's start, then junk */
	tu_write_file(tmp_path(p, "elfjunk"), junk, sizeof(junk));
	make_dirs(tmp_path(p, "a-directory"));
	cr_assert_eq(mkfifo(tmp_path(p, "fifo"), 0600), 0);

	/* the real program cut short at many lengths */
	FILE *in = fopen(t.main.path, "rb");
	cr_assert_not_null(in);
	static unsigned char whole[4 << 20];
	size_t size = fread(whole, 1, sizeof(whole), in);
	fclose(in);
	cr_assert_gt(size, 4096);
	const size_t cuts[] = { 4, 52, 63, 64, 65, 200, 1000, 4096, size / 3, size / 2,
				size - 4096, size - 100, size - 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		tu_write_file(tmp_path(p, "cut%zu", i), whole, cuts[i]);
	/* and with its section header table pointing past the end */
	memset(whole + 0x28, 0xff, 8);
	tu_write_file(tmp_path(p, "badshoff"), whole, size);

	const char *names[] = { "empty", "junk", "elfjunk", "a-directory", "fifo",
				"badshoff", "cut0", "cut1", "cut2", "cut3", "cut4", "cut5",
				"cut6", "cut7", "cut8", "cut9", "cut10", "cut11", "cut12" };
	const char *dev[] = { "/dev/null", "/dev/zero", "/proc/self/maps", "/" };
	for (int with_id = 0; with_id < 2; with_id++) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			struct mt_sym_module m = as_module(&t.main);
			m.path = tmp_path(p, "%s", names[i]);
			if (!with_id) {
				m.build_id = NULL;
				m.build_id_len = 0;
			}
			poke(s, &m, &t);
		}
		for (size_t i = 0; i < sizeof(dev) / sizeof(dev[0]); i++) {
			struct mt_sym_module m = as_module(&t.main);
			m.path = dev[i];
			if (!with_id)
				m.build_id_len = 0;
			poke(s, &m, &t);
			cr_assert_not(mt_sym_module_found(s, &m), "%s", dev[i]);
		}
	}
	/* garbage where debug files are looked for */
	place_by_build_id(tmp, &t.main, tmp_path(p, "junk"));
	struct mt_sym_module m = as_module(&t.main);
	m.path = tmp_path(p, "gone");
	poke(s, &m, &t);
	cr_assert_not(mt_sym_module_found(s, &m));
	mt_sym_free(s);
}

Test(symbolize, every_offset_of_a_program_can_be_looked_up)
{
	struct truth t;
	run_helper(SYMPROG_OPT, NULL, &t);
	struct mt_symbolizer *s = new_sym(NULL);
	struct mt_sym_module m = as_module(&t.main);
	struct mt_sym_frame f[8];
	int named = 0;

	for (uint64_t off = 0; off < 0x8000; off++) {
		int n = mt_sym_lookup(s, &m, off, f, 8);
		cr_assert(n >= 0 && n <= 8);
		named += n > 0 && f[n - 1].function;
	}
	cr_assert_gt(named, 256, "only %d offsets named", named);
	expect_symprog(s, &t, &m);
	mt_sym_free(s);
}

/* ---- the cache ------------------------------------------------------------------------ */

static int open_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 4096; fd++)
		n += fcntl(fd, F_GETFD) != -1;
	return n;
}

Test(symbolize, many_modules_keep_few_files_open)
{
	struct truth t;
	char first[4096];
	run_helper(SYMPROG, NULL, &t);
	run(OBJCOPY, "--strip-debug", t.main.path, tmp_path(first, "m0"), NULL);
	const struct site *leaf = site(&t, "call", "main", "sym_leaf");
	const struct site *caller = site(&t, "call", "main", "sym_caller");
	struct mt_symbolizer *s = new_sym(NULL);
	enum { MODULES = 400 };
	static char paths[MODULES][4096];
	int before = open_fds();

	for (int i = 0; i < MODULES; i++) {
		tmp_path(paths[i], "m%d", i);
		if (i)
			cr_assert_eq(link(first, paths[i]), 0, "link: %s", strerror(errno));
		struct mt_sym_module m = as_module(&t.main);
		m.path = paths[i];
		struct mt_sym_frame f[4];
		cr_assert_eq(mt_sym_lookup(s, &m, leaf->off - 1, f, 4), 1, "module %d", i);
		cr_assert_str_eq(f[0].function, "sym_leaf");
	}
	int during = open_fds();
	cr_log_info("%d modules: %d descriptors open", MODULES, during - before);
	cr_assert_leq(during - before, 3 * 128, "%d descriptors open", during - before);
	/* the first modules' sessions were closed: they reopen for new
	 * addresses, and what was cached stays */
	for (int i = 0; i < 4; i++) {
		struct mt_sym_module m = as_module(&t.main);
		m.path = paths[i];
		struct mt_sym_frame f[4];
		cr_assert_eq(mt_sym_lookup(s, &m, caller->off - 1, f, 4), 1);
		cr_assert_str_eq(f[0].function, "sym_caller");
		cr_assert_eq(mt_sym_lookup(s, &m, leaf->off - 1, f, 4), 1);
		cr_assert_str_eq(f[0].function, "sym_leaf");
		cr_assert(mt_sym_module_found(s, &m));
	}
	mt_sym_free(s);
	cr_assert_eq(open_fds(), before, "descriptors left open");
}

Test(symbolize, repeated_lookups_return_the_same_strings)
{
	struct truth t;
	run_helper(SYMPROG_OPT, NULL, &t);
	struct mt_symbolizer *s = new_sym(NULL);
	struct mt_sym_module m = as_module(&t.main);
	const struct site *c = site(&t, "inline", "main", NULL);
	struct mt_sym_frame a[8], b[8];

	int n = mt_sym_lookup(s, &m, c->off - 1, a, 8);
	cr_assert_eq(n, 3);
	cr_assert_eq(mt_sym_lookup(s, &m, c->off - 1, b, 8), n);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(a[i].function, b[i].function);
		cr_assert_eq(a[i].file, b[i].file);
		cr_assert_eq(a[i].line, b[i].line);
	}
	/* one copy of each name: the same file string for every frame */
	cr_assert_eq(a[0].file, a[1].file);
	mt_sym_free(s);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

Test(symbolize, cached_lookups_cost_a_hash_probe)
{
	struct truth t, lt;
	run_helper(SYMPROG_OPT, NULL, &t);
	run_helper(SYMPROG, SYMLIB, &lt);
	struct mt_symbolizer *s = new_sym(NULL);
	struct mt_sym_module m[2] = { as_module(&t.main), as_module(&lt.lib) };
	uint64_t base = site(&t, "func", "main", "sym_leaf")->off;
	struct mt_sym_frame f[8];
	enum { DISTINCT = 4096, ROUNDS = 500 };

	if (RUNNING_ON_VALGRIND)
		cr_skip_test("timing under valgrind");

	for (uint64_t i = 0; i < DISTINCT; i++)
		mt_sym_lookup(s, &m[i & 1], base + i / 2, f, 8);
	double t0 = now_s();
	uint64_t frames = 0;
	for (int r = 0; r < ROUNDS; r++)
		for (uint64_t i = 0; i < DISTINCT; i++)
			frames += (uint64_t)mt_sym_lookup(s, &m[i & 1], base + i / 2, f, 8);
	double ns = (now_s() - t0) * 1e9 / (ROUNDS * (double)DISTINCT);
	cr_log_info("cached lookup: %.1f ns (%" PRIu64 " frames)", ns, frames);
	cr_assert_gt(frames, 0);
	cr_assert_lt(ns, 1000.0, "cached lookups take %.0f ns", ns);
	mt_sym_free(s);
}

Test(symbolize, debug_path_may_be_messy)
{
	struct mt_symbolizer *s = NULL;

	cr_assert_eq(mt_sym_new(&s, "::/nonexistent:::relative/dir:/tmp/"), 0);
	mt_sym_free(s);
	cr_assert_eq(mt_sym_new(&s, ""), 0);
	mt_sym_free(s);
	mt_sym_free(NULL);
}
