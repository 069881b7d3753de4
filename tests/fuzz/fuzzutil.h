/* Helpers of the libFuzzer targets (tests/fuzz/fuzz_*.c): the failed-check
 * abort, and the input framing that lets the file readers' targets reach
 * the msgpack records without the fuzzer having to find checksums.
 *
 * A reader target's input is one of two things, told apart by its first
 * byte:
 *
 *   'F' flags payloads   framed: fuzz_file builds a file of the target's
 *                        format around the payloads (the 16-byte file
 *                        header, chunk headers with the right CRC-32C).
 *                        payloads = { u16 length (LE), bytes }*; a length
 *                        past the end takes what is left.  flags bit 0:
 *                        cut the file's last byte (a torn tail); bit 1:
 *                        number the chunks from 1 (a missing chunk 0);
 *                        bit 2: write major version flags>>4 in the header
 *   anything else        raw: the input is the file itself.
 *
 * tests/fuzz/mkseeds.sh writes seeds in the framed form. */
#ifndef MT_FUZZUTIL_H
#define MT_FUZZUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Aborts, naming the target, the expression and where, unless x holds.
 * The including file defines FUZZ_NAME ("fuzz_shard") first. */
#define CHECK(x)                                                        \
	do {                                                            \
		if (!(x)) {                                             \
			fprintf(stderr, FUZZ_NAME ": check failed: %s (%s:%d)\n", \
				#x, __FILE__, __LINE__);                \
			abort();                                        \
		}                                                       \
	} while (0)

/* The file format a framed input is built in. */
struct fuzz_format {
	const char *name;    /* the target ("fuzz_shard"): memfd name, messages */
	const char *magic;   /* the file header's magic (8 bytes) */
	uint8_t major, minor; /* the version the header states */
};

/* Puts the file that an input stands for (framed in fmt, or raw) into a
 * memfd made on the first call, and returns the path that opens it
 * ("/proc/self/fd/N", the same for every input); *len gets the file's size
 * (bytes).  NULL when the framed copy cannot be allocated: skip the input.
 * Aborts when the memfd cannot be made or written. */
const char *fuzz_file(const struct fuzz_format *fmt, const uint8_t *data,
		      size_t size, size_t *len);

#endif
