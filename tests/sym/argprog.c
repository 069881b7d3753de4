/* argprog: the program that mtrun's tests run.  Writes to standard output
 * each argument as "LENGTH:BYTES\n" (so that blanks, quotes and newlines
 * show as they are), then "LD_PRELOAD=..." and "MTALLOC=...", allocates
 * (for the shards), and ends as ARGPROG_END says: "exit:N" (default 0) or
 * "signal:N" (killed by signal N). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *end = getenv("ARGPROG_END");
	const char *preload = getenv("LD_PRELOAD");
	const char *conf = getenv("MTALLOC");
	void *volatile keep[64];

	for (int i = 1; i < argc; i++)
		printf("%zu:%s\n", strlen(argv[i]), argv[i]);
	printf("LD_PRELOAD=%s\n", preload ? preload : "(unset)");
	printf("MTALLOC=%s\n", conf ? conf : "(unset)");
	fflush(stdout);
	for (int i = 0; i < 64; i++)
		keep[i] = malloc(1000 + 100 * (size_t)i);
	for (int i = 0; i < 64; i++)
		free(keep[i]);
	if (end && strncmp(end, "signal:", 7) == 0) {
		signal(atoi(end + 7), SIG_DFL);
		raise(atoi(end + 7));
	}
	return end && strncmp(end, "exit:", 5) == 0 ? atoi(end + 5) : 0;
}
