/* libFuzzer target for the shard reader (src/shard/reader.c): every byte
 * of a shard is hostile.
 *
 * An input is the shard itself, or ('F' inputs) chunk payloads framed into
 * a shard (file header, chunk headers with the right CRC-32C) as
 * tests/fuzz/fuzzutil.h describes.
 *
 * The file is read to its end with mt_shard_next; every string, array and
 * stat the reader hands back is touched and checked against the bounds
 * reader.h promises, so a sanitizer sees any out-of-bounds pointer.  The
 * same function runs without libFuzzer in `make check` (smoke_main.c). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NAME "fuzz_shard"
#include "fuzzutil.h"
#include "shard/reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads every byte of a string the reader returned. */
static unsigned touch_str(const struct mt_shard_str *s, uint32_t max)
{
	unsigned sum = 0;

	if (!s->ptr) {
		CHECK(s->len == 0);
		return 0;
	}
	CHECK(s->len <= max);
	for (uint32_t i = 0; i < s->len; i++)
		sum += (unsigned char)s->ptr[i];
	CHECK(s->ptr[s->len] == '\0');
	return sum;
}

static unsigned touch_header(const struct mt_shard_header *h)
{
	unsigned sum = 0;

	sum += touch_str(&h->version, MT_SHARD_MAX_STR);
	sum += touch_str(&h->host, MT_SHARD_MAX_STR);
	sum += touch_str(&h->thread, MT_SHARD_MAX_STR);
	sum += touch_str(&h->exe, MT_SHARD_MAX_STR);
	sum += touch_str(&h->clock, MT_SHARD_MAX_STR);
	sum += touch_str(&h->policy_name, MT_SHARD_MAX_STR);
	sum += touch_str(&h->unwind, MT_SHARD_MAX_STR);
	CHECK(h->argc <= MT_SHARD_MAX_ARGV);
	CHECK(h->argc == 0 || h->argv);
	for (uint32_t i = 0; i < h->argc; i++)
		sum += touch_str(&h->argv[i], MT_SHARD_MAX_STR);
	CHECK(h->policy <= MT_SHARD_POLICY_OFF);
	return sum;
}

static unsigned touch(const struct mt_shard_reader *r,
		      const struct mt_shard_record *rec)
{
	unsigned sum = 0;
	double w;

	CHECK(mt_shard_kind_name(rec->kind) != NULL);
	CHECK(rec->kind != MT_REC_CHUNK);
	switch (rec->kind) {
	case MT_REC_HEADER:
		sum += touch_header(&rec->u.header);
		break;
	case MT_REC_MODULE:
		sum += touch_str(&rec->u.module.path, MT_SHARD_MAX_STR);
		CHECK(rec->u.module.build_id_len <= MT_SHARD_MAX_STR);
		for (uint32_t i = 0; i < rec->u.module.build_id_len; i++)
			sum += rec->u.module.build_id[i];
		break;
	case MT_REC_STACK:
		CHECK(rec->u.stack.depth <= MT_SHARD_MAX_FRAMES);
		for (uint32_t i = 0; i < rec->u.stack.depth; i++)
			sum += (unsigned)rec->u.stack.pcs[i];
		break;
	case MT_REC_ALLOC:
		/* any header (or none) and any record: never a crash */
		if (mt_shard_alloc_weight(mt_shard_header(r), &rec->u.alloc, &w) == 0)
			CHECK(!isnan(w));
		break;
	case MT_REC_CLASSES:
		CHECK(rec->u.classes.n <= MT_SHARD_MAX_CLASSES);
		for (uint32_t i = 0; i < rec->u.classes.n; i++)
			sum += (unsigned)(rec->u.classes.v[i].size + rec->u.classes.v[i].requests);
		break;
	case MT_REC_MARK:
	case MT_REC_THREAD_NAME:
	case MT_REC_END:
		sum += touch_str(&rec->u.mark.str, MT_SHARD_MAX_STR);
		break;
	case MT_REC_THREAD_EXIT:
		sum += touch_str(&rec->u.thread_exit.name, MT_SHARD_MAX_STR);
		break;
	default:
		break;
	}
	return sum;
}

static void read_all(struct mt_shard_reader *r, const char *path,
		     size_t file_len)
{
	const struct mt_shard_record *rec;
	const struct mt_shard_stats *st;
	uint64_t n = 0;
	volatile unsigned sink = 0;
	char small[7], line[512];
	int rc;

	rc = mt_shard_open(r, path);
	if (rc < 0) {
		CHECK(rc == -ENODATA || rc == -EINVAL || rc == -EPROTONOSUPPORT);
		CHECK(mt_shard_error(r)[0] != '\0');
		return;
	}
	while ((rc = mt_shard_next(r, &rec)) == 0 && rec) {
		sink += touch(r, rec);
		n++;
		/* a record takes at least 2 bytes of a chunk */
		CHECK(n <= file_len);
		CHECK(rec->chunk_offset + MT_CHUNK_HEADER <= file_len);
	}
	CHECK(rc == 0 || rc == -ENOMEM);
	if (mt_shard_header(r))
		sink += touch_header(mt_shard_header(r));
	st = mt_shard_stats(r);
	CHECK(st->file_bytes == file_len);
	CHECK(st->records == n);
	CHECK(st->bytes_skipped <= file_len);
	CHECK(st->chunks_read * MT_CHUNK_HEADER <= file_len);
	if (st->torn_tail)
		CHECK(st->torn_offset + st->torn_bytes == file_len);
	if (st->chunks_corrupt)
		CHECK(st->first_corrupt < file_len);
	/* the damage line, whole and truncated */
	rc = mt_shard_describe(r, line, sizeof(line));
	CHECK(rc >= 0);
	CHECK(strlen(line) < sizeof(line));
	mt_shard_describe(r, small, sizeof(small));
	CHECK(strlen(small) < sizeof(small));
	mt_shard_close(r);
	CHECK(mt_shard_next(r, &rec) == -EBADF);
	(void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_format shard = {
		"fuzz_shard", MT_SHARD_MAGIC, MT_SHARD_MAJOR, MT_SHARD_MINOR
	};
	static struct mt_shard_reader *r;
	size_t len;
	const char *path;

	if (!r)
		CHECK(mt_shard_reader_new(&r) == 0);
	path = fuzz_file(&shard, data, size, &len);
	/* one reader for every input, as mtreport reuses one: state left
	 * behind by a previous file must not matter */
	if (path)
		read_all(r, path, len);
	return 0;
}
