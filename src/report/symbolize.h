/* symbolize: turns (module, offset) pairs from shards into function names,
 * inlined frames and file:line, with elfutils' libdwfl, offline: modules are
 * found by build-id first (the debuginfod cache layout and
 * /usr/lib/debug/.build-id), then by their recorded path, whose build-id
 * must match when both are known.  A missing binary or missing debug info
 * gives no frame (the caller prints module+offset), never an error.
 * Results are cached per module and per offset.  Part of mtreport only. */
#ifndef MT_REPORT_SYMBOLIZE_H
#define MT_REPORT_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A module as the shards record it. */
struct mt_sym_module {
	const char *path;         /* as recorded (absolute path, or a soname) */
	const uint8_t *build_id;  /* NULL when unknown */
	uint32_t build_id_len;    /* bytes */
};

/* One source frame.  Strings belong to the symbolizer and live until
 * mt_sym_free. */
struct mt_sym_frame {
	const char *function; /* demangled name; NULL if unknown */
	const char *file;     /* source file; NULL if unknown */
	unsigned line;        /* 0 if unknown */
	bool inlined;         /* an inlined call inside the next frame */
};

struct mt_symbolizer;

/* Creates a symbolizer.  `debug_path` is a colon-separated list of extra
 * directories to search for debug files (NULL: the defaults).  0 or
 * -ENOMEM. */
int mt_sym_new(struct mt_symbolizer **out, const char *debug_path);

/* Frees the symbolizer and every string it returned. */
void mt_sym_free(struct mt_symbolizer *s);

/* Resolves the code address at `offset` (bytes from the module's load bias,
 * already adjusted to point into the call instruction) into at most `max`
 * frames, innermost (most inlined) first; the outermost of all frames is
 * the function that contains the address, and when there are more than
 * `max` the innermost `max` are returned.  Returns the number of frames
 * returned (0 when nothing is
 * known about the address).  Thread-compatible: one symbolizer per thread,
 * or external locking. */
int mt_sym_lookup(struct mt_symbolizer *s, const struct mt_sym_module *m,
		  uint64_t offset, struct mt_sym_frame *out, int max);

/* Whether the module was found (binary or debug file), after at least one
 * lookup in it; for the report's notes on what could not be symbolized. */
bool mt_sym_module_found(struct mt_symbolizer *s, const struct mt_sym_module *m);

#endif
