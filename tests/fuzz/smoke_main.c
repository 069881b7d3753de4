/* Runs a fuzz target's LLVMFuzzerTestOneInput over its seed corpus and its
 * regression inputs, without libFuzzer: the `make check` version of a fuzz
 * target, so that builds without clang exercise the same entry point.
 *
 *   smoke_<target> [DIR|FILE ...]
 *
 * Without arguments it reads $MTALLOC_SRCDIR/tests/fuzz/corpus/<target> and
 * $MTALLOC_SRCDIR/tests/fuzz/regress/<target> (FUZZ_TARGET names the target
 * at compile time).  A crash or a failed check aborts the process: the test
 * fails.  It prints how many inputs it ran. */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long ran;

static void run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0, r;

	if (!f) {
		perror(path);
		exit(1);
	}
	do {
		if (cap - n < 65536) {
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap);
			if (!buf)
				exit(1);
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
	} while (r);
	fclose(f);
	/* an exact-size copy, as libFuzzer gives, so that reads past the end
	 * are caught by a sanitizer */
	uint8_t *exact = malloc(n ? n : 1);
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	ran++;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void run_path(const char *path, int required)
{
	struct stat st;
	struct dirent **list;
	int n;

	if (stat(path, &st) < 0) {
		if (required) {
			perror(path);
			exit(1);
		}
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		run_file(path);
		return;
	}
	n = scandir(path, &list, NULL, by_name);
	for (int i = 0; i < n; i++) {
		if (list[i]->d_name[0] != '.') {
			char *p;
			if (asprintf(&p, "%s/%s", path, list[i]->d_name) < 0)
				exit(1);
			run_file(p);
			free(p);
		}
		free(list[i]);
	}
	free(list);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			run_path(argv[i], 1);
	} else {
		const char *src = getenv("MTALLOC_SRCDIR");
		char *p;
		if (!src)
			src = ".";
		if (asprintf(&p, "%s/tests/fuzz/corpus/%s", src, FUZZ_TARGET) < 0)
			return 1;
		run_path(p, 1);
		free(p);
		if (asprintf(&p, "%s/tests/fuzz/regress/%s", src, FUZZ_TARGET) < 0)
			return 1;
		run_path(p, 0);
		free(p);
	}
	printf("%s: %lu inputs, no crash\n", FUZZ_TARGET, ran);
	return ran ? 0 : 1;
}
