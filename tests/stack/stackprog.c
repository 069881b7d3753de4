/* stackprog: stacks of many shapes, each with libunwind's own answer, for
 * tests/unit/test_stack.c.  Run preloaded with MTALLOC=sample:all.
 *
 *   stackprog MODE [ARGS]
 *   depths        probes at depths 1..100 and back, through frames of
 *                 several kinds (frame pointer or not, a variable-length
 *                 array, a 64 KiB
 *                 frame, mutual recursion), then in a scrambled order,
 *                 then each depth of 1..40 twice in a row
 *   inner         probes 30 frames down, each through an inner path of
 *                 0..5 frames of its own (the outer frames stay where
 *                 they were)
 *   dlopen LIB    probes through LIB's plug_call (loaded after start)
 *   reload A B    probes through A's plug_call, dlcloses A, dlopens B at
 *                 the same address (same layout, other frame sizes), and
 *                 probes through B's
 *   signal        probes from a signal handler, on the thread's stack and
 *                 on an alternate one
 *   thread        probes from a thread with a 64 KiB stack
 *   nocfi         probes through a function without unwind information
 *   zero          probes under a frame whose return address reads 0
 *   undef         probes under a frame whose CFI leaves rbp undefined
 *   sigmark       probes through a frame marked as a signal frame
 *                 (.cfi_signal_frame) but otherwise ordinary
 *   alike         probes from two callers with frames alike, in turns
 *                 and twice in a row: the probe's own frame (return
 *                 address, stack and frame pointer) is the same from
 *                 both, the frames beyond it differ; prints "alike N",
 *                 how many probes ran in the first one's frame
 *
 * For each probe it prints
 *   probe SIZE N PC0 PC1 ... PC(N-1)
 * with libunwind's stack taken in the probe right before malloc(SIZE)
 * (PC0 is the probe's own return address; SIZE is unique and over 10^6).
 * In reload mode it prints "bases A B" (the two load addresses), and at
 * the end "fallbacks F": how many times libmtalloc called unw_backtrace
 * (this program interposes it), that is, stacks its own walk left to
 * libunwind.  Reload mode takes its references with unw_step and
 * libunwind's caches off: libunwind's own per-thread cache would still
 * hold the unloaded library's rules. */
#include "config.h"

#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXF 300

static int (*real_backtrace)(void **, int);
static unsigned long fallbacks;
static int slow_reference; /* reload mode: unw_step, no caches */
static size_t next_size = 1000003;
static uintptr_t probe_at; /* a local of the last probe (its address) */

/* libmtalloc's calls to libunwind land here (the program exports it with
 * --export-dynamic-symbol): counted, then passed on. */
__attribute__((visibility("default"))) int unw_backtrace(void **buf, int n)
{
	__atomic_add_fetch(&fallbacks, 1, __ATOMIC_RELAXED);
	return real_backtrace(buf, n);
}

static __attribute__((noinline)) int reference_slow(void **buf, int max)
{
	unw_context_t uc;
	unw_cursor_t cur;
	unw_word_t ip;
	int n = 0;

	unw_getcontext(&uc);
	if (unw_init_local(&cur, &uc) < 0)
		return 0;
	while (n < max && unw_step(&cur) > 0) {
		if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0)
			break;
		buf[n++] = (void *)ip;
	}
	return n;
}

/* Takes libunwind's stack here, then allocates a block of a size of its
 * own, which libmtalloc samples with its stack. */
__attribute__((noinline, visibility("default"))) void probe(void)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	void *buf[MAXF];
	int n = slow_reference ? reference_slow(buf, MAXF) : real_backtrace(buf, MAXF);
	probe_at = (uintptr_t)buf;
	char line[MAXF * 20 + 64];
	size_t len = 0;

	pthread_mutex_lock(&lock);
	size_t size = next_size++;
	pthread_mutex_unlock(&lock);
	void *p = malloc(size);
	__asm__ volatile("" : : "r"(p) : "memory");
	free(p);
	len += (size_t)snprintf(line + len, sizeof(line) - len, "probe %zu %d", size, n);
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " %lx",
					(unsigned long)(uintptr_t)buf[i]);
	line[len++] = '\n';
	fwrite(line, 1, len, stdout); /* one write: handlers may probe too */
}

/* ---- frames of several kinds ---- */

static int kind_of(int d)
{
	return (d * 7) % 5;
}

static void down(int d);

__attribute__((noinline, optimize("omit-frame-pointer"))) static void k_nofp(int d)
{
	down(d - 1);
	__asm__ volatile("" : : : "memory");
}

__attribute__((noinline, optimize("no-omit-frame-pointer"))) static void k_fp(int d)
{
	down(d - 1);
	__asm__ volatile("" : : : "memory");
}

/* A frame of a size known at run time only (its CFA is rbp-based). */
__attribute__((noinline)) static void k_vla(int d)
{
	char p[32 + (d % 7) * 48];
	p[0] = (char)d;
	__asm__ volatile("" : : "r"(p) : "memory");
	down(d - 1);
	__asm__ volatile("" : : "r"(p) : "memory");
}

__attribute__((noinline)) static void k_big(int d)
{
	char big[65536];
	big[0] = (char)d;
	big[65535] = (char)d;
	__asm__ volatile("" : : "r"(big) : "memory");
	down(d - 1);
	__asm__ volatile("" : : "r"(big) : "memory");
}

static void k_even(int d);

__attribute__((noinline)) static void k_odd(int d)
{
	if (d > 1 && d % 3)
		k_even(d - 1);
	else
		down(d - 1);
	__asm__ volatile("" : : : "memory");
}

__attribute__((noinline)) static void k_even(int d)
{
	if (d > 1 && d % 4)
		k_odd(d - 1);
	else
		down(d - 1);
	__asm__ volatile("" : : : "memory");
}

/* d more frames, then a probe; big frames at most a few times (the
 * thread mode has a small stack). */
static int big_left;

__attribute__((noinline)) static void down(int d)
{
	if (d <= 0) {
		probe();
		return;
	}
	switch (kind_of(d)) {
	case 0: k_nofp(d); break;
	case 1: k_fp(d); break;
	case 2: k_vla(d); break;
	case 3:
		if (big_left-- > 0)
			k_big(d);
		else
			k_odd(d);
		break;
	default: k_odd(d); break;
	}
	__asm__ volatile("" : : : "memory");
}

static void at_depth(int d, int bigs)
{
	big_left = bigs;
	down(d);
}

static int mode_depths(void)
{
	for (int d = 1; d <= 100; d++)
		at_depth(d, 2);
	for (int d = 100; d >= 1; d--)
		at_depth(d, 2);
	for (int i = 0; i < 200; i++)
		at_depth((i * 37) % 97 + 1, i % 3);
	for (int i = 0; i < 80; i++)
		at_depth(i / 2 + 1, 0);
	return 0;
}

__attribute__((noinline)) static void inner_path(int n)
{
	if (n > 0)
		inner_path(n - 1);
	else
		probe();
	__asm__ volatile("" : : : "memory");
}

__attribute__((noinline)) static void outer(int d)
{
	if (d > 0)
		outer(d - 1);
	else
		for (int i = 0; i < 36; i++)
			inner_path(i % 6);
	__asm__ volatile("" : : : "memory");
}

/* ---- loaded libraries ---- */

typedef void (*plug_fn)(int, void (*)(int), void *);

static void back_in(int d)
{
	down(d);
}

static int mode_dlopen(const char *lib)
{
	void *h = dlopen(lib, RTLD_NOW);
	if (!h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	plug_fn call = (plug_fn)(uintptr_t)dlsym(h, "plug_call");
	for (int i = 0; i < 60; i++)
		call(i % 11 + 1, back_in, NULL);
	return 0;
}

static __attribute__((noinline)) int mode_reload(const char *a, const char *b)
{
	void *decoy = __builtin_return_address(0);
	void *bases[2];
	const char *libs[2] = { a, b };

	slow_reference = 1;
	unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_NONE);
	for (int i = 0; i < 2; i++) {
		void *h = dlopen(libs[i], RTLD_NOW);
		if (!h) {
			fprintf(stderr, "dlopen: %s\n", dlerror());
			return 1;
		}
		plug_fn call = (plug_fn)(uintptr_t)dlsym(h, "plug_call");
		Dl_info info;
		if (!dladdr((void *)(uintptr_t)call, &info))
			return 1;
		bases[i] = info.dli_fbase;
		for (int k = 0; k < 20; k++)
			call(k % 5 + 1, back_in, decoy);
		if (i == 0)
			dlclose(h);
	}
	printf("bases %lx %lx\n", (unsigned long)(uintptr_t)bases[0],
	       (unsigned long)(uintptr_t)bases[1]);
	return 0;
}

/* ---- signals, threads, no unwind information ---- */

static volatile sig_atomic_t handler_depth;

static void on_signal(int sig)
{
	(void)sig;
	at_depth(handler_depth, 0);
}

static int mode_signal(void)
{
	static char alt[1 << 16];
	stack_t ss = { .ss_sp = alt, .ss_size = sizeof(alt) };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGUSR1, &sa, NULL);
	sigaltstack(&ss, NULL);
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR2, &sa, NULL);
	for (int i = 0; i < 10; i++) {
		handler_depth = i + 1;
		/* Delivered to this thread before the calls return. */
		pthread_kill(pthread_self(), SIGUSR1);
		pthread_kill(pthread_self(), SIGUSR2);
	}
	return 0;
}

static void *thread_main(void *arg)
{
	(void)arg;
	for (int d = 1; d <= 60; d++)
		at_depth(d, 0);
	for (int d = 60; d >= 1; d--)
		at_depth(d, 0);
	return NULL;
}

static int mode_thread(void)
{
	pthread_attr_t a;
	pthread_t t;

	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 64 << 10);
	if (pthread_create(&t, &a, thread_main, NULL))
		return 1;
	pthread_join(t, NULL);
	return 0;
}

/* Calls fn(d) from a frame the assembler gives no unwind information (no
 * .cfi directives): libunwind walks it by its frame pointer. */
void nocfi_call(int d, void (*fn)(int));
__asm__(".text\n.globl nocfi_call\n.type nocfi_call,@function\n"
	"nocfi_call:\n\tpush %rbp\n\tmov %rsp,%rbp\n\tmov %rsi,%rax\n"
	"\tcall *%rax\n\tpop %rbp\n\tret\n.size nocfi_call,.-nocfi_call\n");

/* Calls fn(d) with its own return address read as 0 meanwhile: libunwind
 * ends a stack at a return address below 0x4000. */
void zero_call(int d, void (*fn)(int));
__asm__(".text\n.globl zero_call\n.type zero_call,@function\nzero_call:\n"
	"\t.cfi_startproc\n\tpush %rbx\n\t.cfi_def_cfa_offset 16\n"
	"\t.cfi_offset rbx, -16\n\tmov 8(%rsp), %rbx\n\tmovq $0, 8(%rsp)\n"
	"\tmov %rsi, %rax\n\tcall *%rax\n\tmov %rbx, 8(%rsp)\n\tpop %rbx\n"
	"\t.cfi_def_cfa_offset 8\n\tret\n\t.cfi_endproc\n.size zero_call,.-zero_call\n");

/* Calls fn(d) from a frame whose CFI says rbp is undefined: the end of
 * the chain for libunwind (x86-64 ABI). */
void undef_call(int d, void (*fn)(int));
__asm__(".text\n.globl undef_call\n.type undef_call,@function\nundef_call:\n"
	"\t.cfi_startproc\n\tsub $8, %rsp\n\t.cfi_def_cfa_offset 16\n"
	"\t.cfi_undefined rbp\n\tmov %rsi, %rax\n\tcall *%rax\n"
	"\tadd $8, %rsp\n\t.cfi_def_cfa_offset 8\n\tret\n\t.cfi_endproc\n"
	".size undef_call,.-undef_call\n");

/* Calls fn(d) from a frame marked as a signal frame (its caller is then
 * looked up at its return address itself). */
void sigmark_call(int d, void (*fn)(int));
__asm__(".text\n.globl sigmark_call\n.type sigmark_call,@function\nsigmark_call:\n"
	"\t.cfi_startproc\n\t.cfi_signal_frame\n\tsub $8, %rsp\n"
	"\t.cfi_def_cfa_offset 16\n\tmov %rsi, %rax\n\tcall *%rax\n"
	"\tadd $8, %rsp\n\t.cfi_def_cfa_offset 8\n\tret\n\t.cfi_endproc\n"
	".size sigmark_call,.-sigmark_call\n");

/* Each depth twice in a row: the second walk can follow the first. */
static int mode_through(void (*call)(int, void (*)(int)))
{
	for (int i = 0; i < 10; i++)
		call(i / 2 % 4 + 1, back_in);
	return 0;
}

/* Two callers alike but for what follows the call (so that they are not
 * merged into one). */
__attribute__((noinline)) static void via_a(void)
{
	probe();
	__asm__ volatile("" : : : "memory");
}

__attribute__((noinline)) static void via_b(void)
{
	probe();
	__asm__ volatile("nop" : : : "memory");
}

static int mode_alike(void)
{
	const char *order = "aabbababbbaa";
	uintptr_t first = 0;
	unsigned alike = 0;

	for (const char *c = order; *c; c++) {
		(*c == 'a' ? via_a : via_b)();
		if (!first)
			first = probe_at;
		else if (probe_at == first)
			alike++;
	}
	printf("alike %u\n", alike);
	return 0;
}

int main(int argc, char **argv)
{
	int r = 2;

	real_backtrace = (int (*)(void **, int))(uintptr_t)dlsym(RTLD_NEXT, "unw_backtrace");
	if (!real_backtrace || argc < 2)
		return 2;
	setvbuf(stdout, NULL, _IOFBF, 1 << 20);
	if (!strcmp(argv[1], "depths"))
		r = mode_depths();
	else if (!strcmp(argv[1], "inner"))
		r = (outer(30), 0);
	else if (!strcmp(argv[1], "dlopen") && argc > 2)
		r = mode_dlopen(argv[2]);
	else if (!strcmp(argv[1], "reload") && argc > 3)
		r = mode_reload(argv[2], argv[3]);
	else if (!strcmp(argv[1], "signal"))
		r = mode_signal();
	else if (!strcmp(argv[1], "thread"))
		r = mode_thread();
	else if (!strcmp(argv[1], "nocfi"))
		r = mode_through(nocfi_call);
	else if (!strcmp(argv[1], "zero"))
		r = mode_through(zero_call);
	else if (!strcmp(argv[1], "undef"))
		r = mode_through(undef_call);
	else if (!strcmp(argv[1], "sigmark"))
		r = mode_through(sigmark_call);
	else if (!strcmp(argv[1], "alike"))
		r = mode_alike();
	printf("fallbacks %lu\n", __atomic_load_n(&fallbacks, __ATOMIC_RELAXED));
	return r;
}
