/* Helpers shared by the Criterion tests: where the built library and the
 * helper programs are, scratch directories, and running a program in its own
 * process with a changed environment and its output captured.
 *
 * The paths come from the environment that tests/tests.am exports through
 * AM_TESTS_ENVIRONMENT, so a test binary run by hand needs
 * MTALLOC_LIB, MTALLOC_BUILDDIR and MTALLOC_SRCDIR set the same way. */
#ifndef MT_TESTUTIL_H
#define MT_TESTUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* The value of environment variable `name`; fails the test when unset. */
const char *tu_env(const char *name);

/* Absolute path of libmtalloc.so (MTALLOC_LIB). */
const char *tu_lib(void);

/* A new path "<MTALLOC_BUILDDIR>/<rel>" (free it); fails the test unless the
 * file exists. */
char *tu_built(const char *rel);

/* A new empty directory under $TMPDIR (or /tmp); free the string after
 * tu_rmtree. */
char *tu_tmpdir(void);

/* Removes a directory tree (best effort). */
void tu_rmtree(const char *dir);

/* A scratch directory per test, for a suite's `.init = tu_dir_make` and
 * `.fini = tu_dir_remove`: tu_dir_make sets tu_dir to a new tu_tmpdir(),
 * tu_dir_remove removes the tree, frees the string and sets tu_dir to NULL. */
extern char *tu_dir;
void tu_dir_make(void);
void tu_dir_remove(void);

/* "<dir>/<name>" in a new string. */
char *tu_path(const char *dir, const char *name);

/* Whole contents of a file, NUL-terminated, or NULL; *len gets the size. */
char *tu_read_file(const char *path, size_t *len);

/* Writes `len` bytes to a new file; fails the test on error. */
void tu_write_file(const char *path, const void *data, size_t len);

/* Number of '\n'-terminated lines in s. */
size_t tu_count_lines(const char *s);

/* A finished child process. */
struct tu_proc {
	int status;   /* as from waitpid */
	char *out;    /* its standard output, NUL-terminated (unless redirected) */
	size_t out_len;
	char *err;    /* its standard error, NUL-terminated */
	size_t err_len;
};

/* How to start one. */
struct tu_spawn {
	const char *const *argv; /* argv[0] is looked up in PATH */
	const char *const *env;  /* "NAME=value" to set, "NAME" to unset */
	const char *cwd;         /* NULL: the test's own */
	const char *stdin_path;  /* NULL: /dev/null */
	const char *stdout_path; /* NULL: captured into out */
	int preload;             /* 1: LD_PRELOAD the library (absolute path) */
};

/* An unnamed scratch file under $TMPDIR (or /tmp), unlinked at once so that
 * nothing is left behind even when the test is killed by its timeout: an
 * open descriptor, or -1 (errno). */
int tu_scratch_fd(void);

/* The whole contents of an open file, read from its start, NUL-terminated;
 * never NULL (fails the test).  *len, when len is not NULL, gets the size. */
char *tu_read_fd(int fd, size_t *len);

/* For a child between fork and exec: makes it die with the test process
 * (PR_SET_PDEATHSIG; _exit(126) when `parent` is already gone), applies env
 * ("NAME=value" sets, "NAME" unsets; _exit(126) on a name of 256 bytes or
 * more) and, with preload, sets LD_PRELOAD to the library. */
void tu_child_setup(pid_t parent, const char *const *env, int preload);

/* Runs a program to its end and fills *p.  The child dies with the test
 * process (PR_SET_PDEATHSIG) so that a test killed by its timeout leaves no
 * orphan behind.  Returns 0, or -1 if it could not start (errno). */
int tu_run(const struct tu_spawn *s, struct tu_proc *p);

/* Frees what tu_run put into *p. */
void tu_proc_free(struct tu_proc *p);

/* 1 if the child exited normally with status 0. */
int tu_exited_ok(const struct tu_proc *p);

/* "exit N" / "signal N" for messages (static buffer). */
const char *tu_status_str(int status);

/* 1 if `prog` is an executable found in PATH. */
int tu_have_program(const char *prog);

#endif
