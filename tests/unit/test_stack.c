/* Stack capture (unwind:libunwind): the stacks libmtalloc records equal
 * libunwind's, frame for frame, and its rules equal libunwind's.
 *
 * The end-to-end tests run tests/stack/stackprog preloaded under
 * sample:all: it prints libunwind's stack at each probe and the number of
 * times libmtalloc handed a stack to libunwind (it interposes
 * unw_backtrace); the stacks are read back from the shards.  The rule test
 * links src/track/unwind_cfi.c and steps libunwind itself over a synthetic
 * stack at thousands of addresses of libc and of this program. */
#include "config.h"

#define UNW_LOCAL_ONLY
#include <criterion/criterion.h>
#include <dirent.h>
#include <libunwind.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "shard/reader.h"
#include "testutil.h"
#include "track/unwind.h"

/* ---- stacks read back from the shards ---- */

struct sampled {
	uint64_t size;   /* bytes asked: the probe's key */
	uint64_t *pcs;   /* its stack */
	uint32_t depth;
};

struct samples {
	struct sampled *v;
	size_t n, cap;
};

static void add_shard(const char *path, struct samples *out)
{
	struct mt_shard_reader *r;
	const struct mt_shard_record *rec;
	struct { uint64_t id; uint64_t *pcs; uint32_t depth; } *st = NULL;
	size_t nst = 0, cap = 0;

	cr_assert_eq(mt_shard_reader_new(&r), 0);
	cr_assert_eq(mt_shard_open(r, path), 0, "%s: %s", path, mt_shard_error(r));
	while (mt_shard_next(r, &rec) == 0 && rec) {
		if (rec->kind == MT_REC_STACK) {
			if (nst == cap) {
				cap = cap ? 2 * cap : 64;
				st = realloc(st, cap * sizeof(*st));
				cr_assert(st);
			}
			st[nst].id = rec->u.stack.id;
			st[nst].depth = rec->u.stack.depth;
			st[nst].pcs = malloc((rec->u.stack.depth + 1) * sizeof(uint64_t));
			cr_assert(st[nst].pcs);
			memcpy(st[nst].pcs, rec->u.stack.pcs,
			       rec->u.stack.depth * sizeof(uint64_t));
			nst++;
		} else if (rec->kind == MT_REC_ALLOC && rec->u.alloc.size > 1000000) {
			size_t k = nst;
			while (k-- > 0 && st[k].id != rec->u.alloc.stack_id)
				;
			cr_assert(k < nst, "%s: allocation of %lu without its stack",
				  path, (unsigned long)rec->u.alloc.size);
			if (out->n == out->cap) {
				out->cap = out->cap ? 2 * out->cap : 256;
				out->v = realloc(out->v, out->cap * sizeof(*out->v));
				cr_assert(out->v);
			}
			struct sampled *s = &out->v[out->n++];
			s->size = rec->u.alloc.size;
			s->depth = st[k].depth;
			s->pcs = malloc((s->depth + 1) * sizeof(uint64_t));
			cr_assert(s->pcs);
			memcpy(s->pcs, st[k].pcs, s->depth * sizeof(uint64_t));
		}
	}
	mt_shard_reader_free(r);
	for (size_t k = 0; k < nst; k++)
		free(st[k].pcs);
	free(st);
}

static void load_samples(const char *dir, struct samples *out)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	memset(out, 0, sizeof(*out));
	cr_assert(d, "no shard directory %s", dir);
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len > 4 && !strcmp(e->d_name + len - 4, ".mts")) {
			char *path = tu_path(dir, e->d_name);
			add_shard(path, out);
			free(path);
		}
	}
	closedir(d);
}

/* ---- stackprog ---- */

struct outcome {
	unsigned probes;      /* probes compared */
	unsigned long fallbacks; /* stacks libmtalloc left to libunwind */
	unsigned long bases[2];  /* reload mode: A's and B's load address */
	unsigned max_depth;   /* frames of the deepest probe */
	unsigned alike;       /* alike mode: probes in the first one's frame */
};

/* Runs stackprog MODE [a] [b] under sample:all,stack_depth:DEPTH and
 * checks every probe's recorded stack against libunwind's (its first
 * DEPTH frames). */
static struct outcome run_depth(const char *mode, const char *a, const char *b,
				unsigned depth)
{
	char *dir = tu_tmpdir(), *prog = tu_built("tests/stack/stackprog"), *env;
	struct tu_proc p;
	struct samples got;
	struct outcome o = { 0 };

	cr_assert(asprintf(&env, "MTALLOC=dir:%s,sample:all,stack_depth:%u", dir,
			   depth) > 0);
	const char *argv[] = { prog, mode, a, b, NULL };
	const char *envv[] = { env, NULL };
	struct tu_spawn s = { .argv = argv, .env = envv, .preload = 1 };
	cr_assert_eq(tu_run(&s, &p), 0);
	cr_assert(tu_exited_ok(&p), "stackprog %s: %s\n%s", mode,
		  tu_status_str(p.status), p.err);
	load_samples(dir, &got);

	for (char *line = p.out, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (sscanf(line, "fallbacks %lu", &o.fallbacks) == 1 ||
		    sscanf(line, "alike %u", &o.alike) == 1 ||
		    sscanf(line, "bases %lx %lx", &o.bases[0], &o.bases[1]) == 2)
			continue;
		unsigned long size;
		int n, at;
		cr_assert(sscanf(line, "probe %lu %d%n", &size, &n, &at) == 2,
			  "stackprog: %s", line);
		cr_assert(n > 1 && n <= 256, "probe %lu: %d frames", size, n);
		uint64_t want[256];
		char *q = line + at;
		for (int i = 0; i < n; i++)
			want[i] = strtoull(q, &q, 16);
		const struct sampled *sm = NULL;
		for (size_t i = 0; i < got.n && !sm; i++)
			if (got.v[i].size == size)
				sm = &got.v[i];
		cr_assert(sm, "probe %lu: no sample", size);
		/* Frame 0 returns into the probe from malloc, want[0] from
		 * libunwind: both in the probe, a few calls apart. */
		if ((unsigned)n > depth)
			n = (int)depth;
		cr_assert_eq(sm->depth, (uint32_t)n, "probe %lu: %u frames, libunwind %d",
			     size, sm->depth, n);
		cr_assert(sm->pcs[0] - want[0] + 256 < 512,
			  "probe %lu: frame 0 at %lx, libunwind's at %lx", size,
			  (unsigned long)sm->pcs[0], (unsigned long)want[0]);
		for (int i = 1; i < n; i++)
			cr_assert_eq(sm->pcs[i], want[i],
				     "probe %lu (%s): frame %d of %d is %lx, libunwind's %lx",
				     size, mode, i, n, (unsigned long)sm->pcs[i],
				     (unsigned long)want[i]);
		o.probes++;
		if (sm->depth > o.max_depth)
			o.max_depth = sm->depth;
	}
	for (size_t i = 0; i < got.n; i++)
		free(got.v[i].pcs);
	free(got.v);
	tu_proc_free(&p);
	tu_rmtree(dir);
	free(dir);
	free(prog);
	free(env);
	return o;
}

static struct outcome run_probes(const char *mode, const char *a, const char *b)
{
	return run_depth(mode, a, b, 256);
}

/* Runs stackprog MODE [a] [b]: every probe's stack equals libunwind's,
 * there are `probes` of them, and libmtalloc left `fallbacks` stacks to
 * libunwind (0: it walked all of them itself). */
static struct outcome expect_mode(const char *mode, const char *a, const char *b,
				  unsigned probes, unsigned long fallbacks)
{
	struct outcome o = run_probes(mode, a, b);

	cr_expect_eq(o.probes, probes, "%s: %u probes", mode, o.probes);
	cr_expect_eq(o.fallbacks, fallbacks, "%s: %lu stacks left to libunwind",
		     mode, o.fallbacks);
	return o;
}

Test(stack, sampled_stacks_equal_libunwind_at_depths_1_to_100, .timeout = 120)
{
	struct outcome o = expect_mode("depths", NULL, NULL, 480, 0);

	cr_expect_gt(o.max_depth, 100);
}

Test(stack, stacks_cut_at_stack_depth_are_libunwinds_first_frames, .timeout = 120)
{
	struct outcome o = run_depth("depths", NULL, NULL, 5);

	cr_expect_eq(o.probes, 480);
	cr_expect_eq(o.max_depth, 5);
	cr_expect_eq(o.fallbacks, 0, "%lu stacks left to libunwind", o.fallbacks);
}

/* Walks that meet the last one's outer frames after inner frames of their
 * own, kept whole and cut at 12 frames (where the last walk stopped
 * elsewhere). */
Test(stack, stacks_joining_the_last_walk_equal_libunwind, .timeout = 60)
{
	expect_mode("inner", NULL, NULL, 36, 0);
	struct outcome o = run_depth("inner", NULL, NULL, 12);

	cr_expect_eq(o.probes, 36);
	cr_expect_eq(o.max_depth, 12);
	cr_expect_eq(o.fallbacks, 0, "%lu stacks left to libunwind", o.fallbacks);
}

/* A walk whose first frame (return address, stack and frame pointers) is
 * that of the last walk is proven along it: from two callers alike, the
 * frames beyond differ and must be seen to. */
Test(stack, a_first_frame_met_again_under_other_callers_equals_libunwind,
     .timeout = 60)
{
	struct outcome o = expect_mode("alike", NULL, NULL, 12, 0);

	cr_expect_eq(o.alike, 11, "only %u probes in the first one's frame", o.alike);
}

Test(stack, stacks_through_a_dlopened_library_equal_libunwind, .timeout = 60)
{
	char *lib = tu_built("tests/stack/.libs/plug.so");

	expect_mode("dlopen", lib, NULL, 60, 0);
	free(lib);
}

Test(stack, a_library_loaded_where_an_unloaded_one_was_gets_its_own_rules,
     .timeout = 60)
{
	char *a = tu_built("tests/stack/.libs/libswapa.so");
	char *b = tu_built("tests/stack/.libs/libswapb.so");
	struct outcome o = expect_mode("reload", a, b, 40, 0);

	/* Only meaningful if B took A's place: its plug_call then returns to
	 * the address A's did, whose cached rule (A's) must not be used. */
	cr_expect_eq(o.bases[0], o.bases[1], "B at %lx, A was at %lx",
		     o.bases[1], o.bases[0]);
	free(a);
	free(b);
}

/* A signal frame is libunwind's business: every probe, and only those
 * (the process's other samples never cross one), on the thread's stack
 * and on an alternate one. */
Test(stack, signal_handler_stacks_are_left_to_libunwind, .timeout = 60)
{
	expect_mode("signal", NULL, NULL, 20, 20);
}

Test(stack, a_thread_with_a_64k_stack_walks_exactly, .timeout = 60)
{
	expect_mode("thread", NULL, NULL, 120, 0);
}

Test(stack, frames_without_unwind_information_are_left_to_libunwind, .timeout = 60)
{
	expect_mode("nocfi", NULL, NULL, 10, 10);
}

Test(stack, a_return_address_of_0_ends_the_stack_as_for_libunwind, .timeout = 60)
{
	expect_mode("zero", NULL, NULL, 10, 0);
}

Test(stack, an_undefined_rbp_ends_the_stack_as_for_libunwind, .timeout = 60)
{
	expect_mode("undef", NULL, NULL, 10, 0);
}

Test(stack, frames_marked_as_signal_frames_are_left_to_libunwind, .timeout = 60)
{
	expect_mode("sigmark", NULL, NULL, 10, 10);
}

/* ---- rules against libunwind's own step ---- */

#define WORDS 32768             /* the synthetic stack (words) */
#define AT_RSP 64               /* where rsp points (word) */
#define AT_RBP (WORDS / 2)      /* where rbp points (word) */
#define MARK 0x7e0000000000ull  /* word i holds MARK + 8 * i */

static uintptr_t fake[WORDS];

__attribute__((noinline)) static void entry_of_a_function(void)
{
	__asm__ volatile("");
}

/* libunwind's step from the frame that returns to pc, on fake: the first
 * frame is a function's entry (CFA = rsp + 8) whose return address is pc.
 * Returns unw_step's result for pc's frame, with the registers after it. */
static int libunwind_step(uintptr_t pc, uintptr_t *ip, uintptr_t *sp, uintptr_t *bp)
{
	unw_context_t uc;
	unw_cursor_t cur;
	unw_word_t v;

	for (unsigned i = 0; i < WORDS; i++)
		fake[i] = MARK + 8 * i;
	fake[AT_RSP] = pc;
	unw_getcontext(&uc);
	uc.uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)entry_of_a_function;
	uc.uc_mcontext.gregs[REG_RSP] = (greg_t)(uintptr_t)&fake[AT_RSP];
	uc.uc_mcontext.gregs[REG_RBP] = (greg_t)(uintptr_t)&fake[AT_RBP];
	/* As for a signal frame: the first frame is looked up at its ip, not
	 * at ip - 1 as a return address would be. */
	cr_assert_eq(unw_init_local2(&cur, &uc, UNW_INIT_SIGNAL_FRAME), 0);
	cr_assert_gt(unw_step(&cur), 0);
	unw_get_reg(&cur, UNW_REG_IP, &v);
	cr_assert_eq(v, pc);
	int r = unw_step(&cur);
	unw_get_reg(&cur, UNW_REG_IP, &v);
	*ip = v;
	unw_get_reg(&cur, UNW_REG_SP, &v);
	*sp = v;
	unw_get_reg(&cur, UNW_X86_64_RBP, &v);
	*bp = v;
	return r;
}

struct tally {
	unsigned step, last, slow, big; /* rules met, by kind */
};

/* Compares our rule for return address pc with libunwind's step. */
static void compare_at(uintptr_t pc, struct tally *t)
{
	struct mt_cfi_rule rule;
	struct mt_cfi_gen gen;
	uintptr_t ip, sp, bp;

	mt_cfi_rule_for(pc, true, &rule, &gen);
	if (rule.how == MT_CFI_SLOW) {
		t->slow++;
		return;
	}
	if (rule.how == MT_CFI_LAST) {
		t->last++;
		cr_assert_eq(libunwind_step(pc, &ip, &sp, &bp), 0,
			     "%lx: ours is the last frame, libunwind goes on",
			     (unsigned long)pc);
		return;
	}
	uintptr_t base = (rule.how & MT_CFI_RBP_BASE) ? (uintptr_t)&fake[AT_RBP]
						      : (uintptr_t)&fake[AT_RSP + 1];
	uintptr_t cfa = base + (uintptr_t)(intptr_t)rule.cfa_off;
	if (cfa < (uintptr_t)&fake[40] || cfa > (uintptr_t)&fake[WORDS - 8]) {
		t->big++;
		return; /* outside the synthetic stack */
	}
	t->step++;
	int r = libunwind_step(pc, &ip, &sp, &bp);
	cr_assert_gt(r, 0, "%lx: libunwind stops, ours goes on", (unsigned long)pc);
	cr_assert_eq(sp, cfa, "%lx: CFA %lx, libunwind's %lx", (unsigned long)pc,
		     (unsigned long)cfa, (unsigned long)sp);
	cr_assert_eq(ip, *(const uintptr_t *)(cfa - 8), "%lx: return address",
		     (unsigned long)pc);
	uintptr_t rbp = (rule.how & MT_CFI_RBP_SAVED)
		? *(const uintptr_t *)(cfa + rule.rbp_off) : (uintptr_t)&fake[AT_RBP];
	cr_assert_eq(bp, rbp, "%lx: rbp %lx, libunwind's %lx", (unsigned long)pc,
		     (unsigned long)rbp, (unsigned long)bp);
}

struct object {
	const char *want;    /* a substring of its path; "" for the program */
	const uint8_t *hdr;  /* its .eh_frame_hdr */
};

static int find_hdr(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct object *o = arg;

	(void)size;
	if (*o->want ? !strstr(info->dlpi_name, o->want) : *info->dlpi_name != '\0')
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_GNU_EH_FRAME)
			o->hdr = (const uint8_t *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
	return o->hdr != NULL;
}

/* Every stride-th address from the start of each FDE to the next one's
 * (the binary-search table gives the starts). */
static void compare_object(const char *want, unsigned stride, struct tally *t)
{
	struct object o = { want, NULL };
	int32_t start, next;
	uint32_t count;

	dl_iterate_phdr(find_hdr, &o);
	cr_assert(o.hdr, "no .eh_frame_hdr in %s", *want ? want : "the program");
	/* version 1, eh_frame_ptr sdata4 pcrel, fde_count udata4, table
	 * datarel sdata4: what binutils writes. */
	cr_assert(o.hdr[0] == 1 && o.hdr[1] == 0x1b && o.hdr[2] == 0x03 && o.hdr[3] == 0x3b);
	memcpy(&count, o.hdr + 8, 4);
	const uint8_t *table = o.hdr + 12;
	for (uint32_t i = 0; i + 1 < count; i++) {
		memcpy(&start, table + 8 * i, 4);
		memcpy(&next, table + 8 * (i + 1), 4);
		for (int32_t a = start; a < next; a += (int32_t)stride)
			compare_at((uintptr_t)(o.hdr + a) + 1, t);
	}
}

Test(unwind, rules_equal_libunwinds_steps_over_libc_and_this_program, .timeout = 300)
{
	struct tally t = { 0 };

	compare_object("", 3, &t);
	compare_object("libc.so.6", 29, &t);
	cr_log_info("rules: %u standard, %u last, %u left to libunwind, %u too "
		    "big to check", t.step, t.last, t.slow, t.big);
	cr_expect_gt(t.step, 20000);
	cr_expect_gt(t.last, 0);
}
