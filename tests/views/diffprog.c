/* diffprog: a program with known allocation sites for mtreport diff's
 * test.  Every run allocates the same; with the argument "extra" it also
 * allocates 7 blocks of 12,345 bytes at extra_site() and keeps them; with
 * "hostile" it names its thread with markup (the HTML report's test). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

static void *volatile keep[64];

__attribute__((noinline)) static void common_site(void)
{
	for (int i = 0; i < 100; i++) {
		char *p = malloc(1000);
		memset(p, i, 1000);
		free(p);
	}
	for (int i = 0; i < 10; i++)
		keep[i] = malloc(5000);
}

__attribute__((noinline)) static void extra_site(void)
{
	for (int i = 0; i < 7; i++)
		keep[20 + i] = malloc(12345);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "hostile"))
		prctl(PR_SET_NAME, "<script>\"'&x", 0, 0, 0);
	common_site();
	if (argc > 1 && !strcmp(argv[1], "extra"))
		extra_site();
	return 0;
}
