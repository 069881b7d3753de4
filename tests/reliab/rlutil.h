/* Helpers of the reliability tests (tests/unit/test_reliability*.c), on top
 * of tests/common/testutil.h: running a program under a watchdog with a
 * hook in the child (rlimits, signals), the stress scale, and accounting
 * for every record in a directory of shards. */
#ifndef MT_RLUTIL_H
#define MT_RLUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shard/reader.h"
#include "testutil.h"

/* MTALLOC_STRESS as a number >= 1 (1 when unset): `make check` runs at 1,
 * `make check-stress` at 10, the scale the figures are stated at. */
unsigned rl_scale(void);

/* How to run a program (see tu_spawn; argv[0] is a path or looked up). */
struct rl_spawn {
	const char *const *argv;
	const char *const *env;  /* "NAME=value" to set, "NAME" to unset */
	int preload;             /* 1: LD_PRELOAD libmtalloc */
	unsigned timeout_s;      /* watchdog: SIGKILL to the whole group */
	void (*hook)(void *);    /* runs in the child before exec (may be NULL) */
	void *hook_arg;
};

/* Runs s->argv[0] in a process group of its own; kills the group when it
 * outlives the timeout (p->status is then that of SIGKILL and the return
 * value 1) and, in any case, after it exits (no orphans of a fork storm
 * survive).  Output is captured as tu_run does.  0 when it finished, 1 on
 * timeout, -1 when it could not start. */
int rl_run(const struct rl_spawn *s, struct tu_proc *p);

/* Starts a program the same way without waiting: returns its pid (the
 * group's id too); stdout and stderr go to /dev/null unless out_fd/err_fd
 * are >= 0. */
pid_t rl_start(const struct rl_spawn *s, int out_fd, int err_fd);

/* The truth line a tests/stress program printed for pid (NULL: the first):
 * "truth pid P allocs A frees F live L inherited I threads T". */
struct rl_truth {
	long pid, allocs, frees, live, inherited, threads;
};
/* Parses every truth line of out into a new array; *n gets the count. */
struct rl_truth *rl_truths(const char *out, size_t *n);

/* What the shards of one process say. */
struct rl_proc {
	uint64_t pid, ppid, fork_seq;
	uint64_t shards;          /* files (count) */
	uint64_t ends;            /* shards with an MT_REC_END (count) */
	uint64_t allocs;          /* MT_REC_ALLOC in the band */
	uint64_t frees;           /* MT_REC_FREE of an allocation in the band */
	uint64_t inherited;       /* ... of those, allocated by an ancestor */
	uint64_t unmatched;       /* MT_REC_FREE whose allocation is nowhere */
	uint64_t dup_seq;         /* allocations whose seq was seen before */
	uint64_t all_allocs;      /* MT_REC_ALLOC of any size */
	uint64_t thread_exits;    /* MT_REC_THREAD_EXIT */
	uint64_t dropped;         /* records MT_REC_DROPPED says were lost */
	/* damage, added over the process's shards (reader stats) */
	uint64_t chunks, corrupt, torn, missing, malformed;
};

struct rl_acct {
	struct rl_proc *p;
	size_t n;
	uint64_t files;     /* .mts files read */
	uint64_t bad_files; /* ... that mt_shard_open refused */
};

/* Reads every *.mts file of dir; allocations with lo <= size < hi are the
 * band.  Frees are matched to allocations by (pid, alloc_seq), through the
 * parents' shards for seqs at or below a child's fork_seq. */
void rl_account(const char *dir, uint64_t lo, uint64_t hi, struct rl_acct *a);

/* The process pid in a, or NULL. */
struct rl_proc *rl_proc_of(struct rl_acct *a, uint64_t pid);

void rl_acct_free(struct rl_acct *a);

/* Number of *.mts files in dir. */
size_t rl_count_shards(const char *dir);

#endif
