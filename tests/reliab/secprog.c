/* secprog: the program of the security tests, linked with -lmtalloc (a
 * set-user-ID program gets no LD_PRELOAD).  It prints its real and
 * effective ids, optionally stops itself (SIGSTOP) after its first
 * allocations so that the test can learn its pid and plant files where its
 * shards will go, then allocates 8 MiB in blocks of 1..64 KiB (enough for
 * the default policy to sample) and exits normally.
 *
 *   secprog [stop] */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	void *first = malloc(100);
	unsigned long total = 0;

	printf("uid %d euid %d gid %d egid %d pid %d\n", (int)getuid(), (int)geteuid(),
	       (int)getgid(), (int)getegid(), (int)getpid());
	fflush(stdout);
	if (argc > 1 && !strcmp(argv[1], "stop"))
		raise(SIGSTOP);
	for (unsigned i = 0; total < (8ul << 20); i++) {
		size_t n = 1 + (i * 7919u) % (64u << 10);
		char *p = malloc(n);
		if (!p)
			return 1;
		memset(p, 1, n);
		free(p);
		total += n;
	}
	free(first);
	return 0;
}
