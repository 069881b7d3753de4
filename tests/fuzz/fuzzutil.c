/* See fuzzutil.h. */
#include "config.h"

#include "fuzzutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shard/format.h"

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Builds the framed file of an 'F' input into a new buffer. */
static uint8_t *frame(const struct fuzz_format *fmt, const uint8_t *data,
		      size_t size, size_t *out_len)
{
	uint8_t flags = size > 1 ? data[1] : 0;
	size_t cap = MT_SHARD_FILE_HEADER + size + (size / 2 + 1) * MT_CHUNK_HEADER;
	uint8_t *f = malloc(cap), *h;
	size_t n = MT_SHARD_FILE_HEADER;
	uint32_t seq = flags & 2 ? 1 : 0;

	if (!f)
		return NULL;
	memcpy(f, fmt->magic, 8);
	f[8] = flags & 4 ? (uint8_t)(flags >> 4) : fmt->major;
	f[9] = 0;
	f[10] = fmt->minor;
	f[11] = 0;
	put_le32(f + 12, 0);
	for (size_t i = 2; i < size;) {
		size_t len = size - i >= 2 ? (size_t)data[i] | (size_t)data[i + 1] << 8 : 0;
		i += size - i >= 2 ? 2 : size - i;
		if (len > size - i)
			len = size - i;
		h = f + n;
		put_le32(h, MT_CHUNK_MAGIC);
		put_le32(h + 4, (uint32_t)len);
		put_le32(h + 8, seq++);
		put_le32(h + 12, mt_crc32c(0, data + i, len));
		put_le32(h + 16, 0);
		put_le32(h + 20, mt_crc32c(0, h, 20));
		memcpy(h + MT_CHUNK_HEADER, data + i, len);
		n += MT_CHUNK_HEADER + len;
		i += len;
	}
	if (flags & 1 && n > MT_SHARD_FILE_HEADER)
		n--;
	*out_len = n;
	return f;
}

/* Aborts as CHECK does, with the target's name known only at run time. */
static void need(const struct fuzz_format *fmt, int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "%s: check failed: %s (%s)\n", fmt->name, what,
			__FILE__);
		abort();
	}
}

const char *fuzz_file(const struct fuzz_format *fmt, const uint8_t *data,
		      size_t size, size_t *len)
{
	static int memfd = -1;
	static char memfd_path[64];
	const uint8_t *file = data;
	uint8_t *framed = NULL;

	if (memfd < 0) {
		memfd = memfd_create(fmt->name, MFD_CLOEXEC);
		need(fmt, memfd >= 0, "memfd_create");
		snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
	}
	*len = size;
	if (size >= 1 && data[0] == 'F') {
		framed = frame(fmt, data, size, len);
		if (!framed)
			return NULL;
		file = framed;
	}
	need(fmt, ftruncate(memfd, 0) == 0, "ftruncate");
	need(fmt, *len == 0 || pwrite(memfd, file, *len, 0) == (ssize_t)*len,
	     "pwrite");
	free(framed);
	return memfd_path;
}
