/* symprog: tells where its own code is, for the symbolizer's tests.  Built
 * twice from this file: symprog (-g -O0) and symprog-opt (-g -O2).
 *
 *   symprog [LIB]      LIB: a shared object to dlopen (symlib.c)
 *
 * Prints, one item per line, offsets in hex from the load bias of the
 * module that holds them:
 *
 *   module M PATH BIAS BUILD-ID        M is main or lib; BUILD-ID in hex
 *   func M OFFSET FIRST LAST NAME      a function's entry, the lines of its
 *                                      first and last line
 *   call M OFFSET LINE NAME            a return address and the line of
 *                                      its call, inside function NAME
 *   inline M OFFSET L0 L1 L2           a return address inside in_inner,
 *                                      inlined into in_middle, inlined into
 *                                      in_outer: the line of the call in
 *                                      each, innermost first */
#define _GNU_SOURCE
/* The build's CFLAGS (-g -O2 by default) come after the target's own -O in
 * the compile command: the level this build is for is set here. */
#if defined(SYM_O0)
#pragma GCC optimize("O0")
#elif defined(SYM_O2)
#pragma GCC optimize("O2")
#endif
#include <dlfcn.h>
#include <elf.h>
#include <inttypes.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "probe.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

struct module {
	uintptr_t addr;       /* in: an address inside it */
	uintptr_t bias;       /* out: dlpi_addr */
	char path[4096];
	char build_id[129];   /* hex */
};

static int find_module(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct module *m = arg;
	int inside = 0;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && m->addr >= lo && m->addr < lo + ph->p_memsz)
			inside = 1;
	}
	if (!inside)
		return 0;
	m->bias = info->dlpi_addr;
	if (info->dlpi_name && info->dlpi_name[0]) {
		snprintf(m->path, sizeof(m->path), "%s", info->dlpi_name);
	} else {
		ssize_t n = readlink("/proc/self/exe", m->path, sizeof(m->path) - 1);
		m->path[n > 0 ? n : 0] = '\0';
	}
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const unsigned char *p = (const void *)(info->dlpi_addr + ph->p_vaddr);
		const unsigned char *e = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= e) {
			const ElfW(Nhdr) *n = (const void *)p;
			const unsigned char *d = p + sizeof(*n) + ((n->n_namesz + 3) & ~3u);
			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
			    memcmp(p + sizeof(*n), "GNU", 4) == 0 && n->n_descsz <= 64) {
				for (unsigned k = 0; k < n->n_descsz; k++)
					sprintf(m->build_id + 2 * k, "%02x", d[k]);
				return 1;
			}
			p = d + ((n->n_descsz + 3) & ~3u);
		}
	}
	strcpy(m->build_id, "-");
	return 1;
}

static struct module main_mod, lib_mod;

static uintptr_t offset_in(const struct module *m, const void *p)
{
	return (uintptr_t)p - m->bias;
}

/* --- plain functions ------------------------------------------------------ */

static struct probe leaf_probe, caller_probe;

enum { LEAF_FIRST = __LINE__ + 1 };
PROBE_NOINLINE int sym_leaf(int x)
{
	PROBE(&leaf_probe);
	return x + 1;
}
enum { LEAF_LAST = __LINE__ - 1 };

enum { CALLER_FIRST = __LINE__ + 1 };
PROBE_NOINLINE int sym_caller(int x)
{
	int y = x * 2;

	PROBE(&caller_probe);
	return sym_leaf(y) + 1;
}
enum { CALLER_LAST = __LINE__ - 1 };

/* --- an inline chain ---------------------------------------------------------- */

static struct probe inline_probe;
static int line_inner_call, line_middle_call;

ALWAYS_INLINE int in_inner(int x)
{
	PROBE(&inline_probe);
	return x * 3;
}

ALWAYS_INLINE int in_middle(int x)
{
	int y = in_inner(x); line_inner_call = __LINE__;
	return y + 2;
}

PROBE_NOINLINE int in_outer(int x)
{
	int y = in_middle(x); line_middle_call = __LINE__;
	return y - 1;
}

int main(int argc, char **argv)
{
	struct probe lib_probe = { 0 };
	int (*lib_leaf)(int, struct probe *) = NULL;
	int first = 0, last = 0;

	main_mod.addr = (uintptr_t)&sym_leaf;
	dl_iterate_phdr(find_module, &main_mod);
	if (argc > 1) {
		void *h = dlopen(argv[1], RTLD_NOW);
		int *lines;
		if (!h || !(lib_leaf = (int (*)(int, struct probe *))dlsym(h, "symlib_leaf")) ||
		    !(lines = dlsym(h, "symlib_leaf_lines"))) {
			fprintf(stderr, "symprog: %s\n", dlerror());
			return 1;
		}
		first = lines[0];
		last = lines[1];
		lib_mod.addr = (uintptr_t)lib_leaf;
		dl_iterate_phdr(find_module, &lib_mod);
	}

	volatile int v = sym_caller(1) + in_outer(2);
	(void)v;

	printf("module main %s %" PRIxPTR " %s\n", main_mod.path, main_mod.bias,
	       main_mod.build_id);
	printf("func main %" PRIxPTR " %d %d sym_leaf\n",
	       offset_in(&main_mod, (void *)&sym_leaf), LEAF_FIRST, LEAF_LAST);
	printf("func main %" PRIxPTR " %d %d sym_caller\n",
	       offset_in(&main_mod, (void *)&sym_caller), CALLER_FIRST, CALLER_LAST);
	printf("call main %" PRIxPTR " %d sym_leaf\n",
	       offset_in(&main_mod, leaf_probe.ra), leaf_probe.line);
	printf("call main %" PRIxPTR " %d sym_caller\n",
	       offset_in(&main_mod, caller_probe.ra), caller_probe.line);
	printf("inline main %" PRIxPTR " %d %d %d\n",
	       offset_in(&main_mod, inline_probe.ra), inline_probe.line,
	       line_inner_call, line_middle_call);
	if (lib_leaf) {
		lib_leaf(3, &lib_probe);
		printf("module lib %s %" PRIxPTR " %s\n", lib_mod.path, lib_mod.bias,
		       lib_mod.build_id);
		printf("func lib %" PRIxPTR " %d %d symlib_leaf\n",
		       offset_in(&lib_mod, (void *)lib_leaf), first, last);
		printf("call lib %" PRIxPTR " %d symlib_leaf\n",
		       offset_in(&lib_mod, lib_probe.ra), lib_probe.line);
	}
	return 0;
}
