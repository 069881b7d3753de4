/* dlopen_main: a C program, not linked with libstdc++, that loads the C++
 * library libcxxplugin.so with dlopen and has it new/delete N objects.
 * Meant to run under LD_PRELOAD=libmtalloc.so.  Prints
 *
 *   stdcxx_before_dlopen=0|1
 *   new_from=PATH
 *   allocs=A frees=F bytes=B  (growth of mtalloc's process counters)
 *
 * and exits 0; exits 2 when mtalloc_stats_get cannot be found (not running
 * on mtalloc), 1 on other errors. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "mtalloc.h"

int main(int argc, char **argv)
{
	int (*get)(struct mtalloc_stats *, size_t);
	long (*churn)(long);
	const char *(*origin)(void);
	size_t (*node_size)(void);
	struct mtalloc_stats a, b;
	void *h;
	long n;

	if (argc != 3) {
		fprintf(stderr, "usage: dlopen_main PLUGIN N\n");
		return 1;
	}
	n = atol(argv[2]);
	*(void **)&get = dlsym(RTLD_DEFAULT, "mtalloc_stats_get");
	if (!get) {
		fprintf(stderr, "dlopen_main: mtalloc_stats_get not found\n");
		return 2;
	}
	printf("stdcxx_before_dlopen=%d\n",
	       dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_NOLOAD) != NULL);
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "dlopen_main: %s\n", dlerror());
		return 1;
	}
	*(void **)&churn = dlsym(h, "plugin_churn");
	*(void **)&origin = dlsym(h, "plugin_operator_new_origin");
	*(void **)&node_size = dlsym(h, "plugin_node_size");
	if (!churn || !origin || !node_size) {
		fprintf(stderr, "dlopen_main: plugin symbols missing\n");
		return 1;
	}
	printf("new_from=%s\n", origin());
	printf("node_size=%zu\n", node_size());
	fflush(stdout);
	churn(10); /* warm up: the plugin's first calls bind its symbols */
	if (get(&a, sizeof(a)))
		return 1;
	long sum = churn(n);
	if (get(&b, sizeof(b)))
		return 1;
	if (sum < n * (n - 1) / 2) {
		fprintf(stderr, "dlopen_main: bad checksum %ld\n", sum);
		return 1;
	}
	printf("allocs=%llu frees=%llu bytes=%llu\n",
	       (unsigned long long)(b.process.allocs - a.process.allocs),
	       (unsigned long long)(b.process.frees - a.process.frees),
	       (unsigned long long)(b.process.bytes_allocated -
				    a.process.bytes_allocated));
	dlclose(h);
	return 0;
}
