/* Synthetic shards for the reader's tests (synth.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "synth.h"

static void put_le(msgpack_sbuffer *b, uint64_t v, unsigned n)
{
	unsigned char p[8];

	for (unsigned i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
	msgpack_sbuffer_write(b, (const char *)p, n);
}

void synth_init(struct synth *s, unsigned major, unsigned minor, uint32_t flags)
{
	memset(s, 0, sizeof(*s));
	msgpack_sbuffer_init(&s->file);
	msgpack_sbuffer_init(&s->chunk);
	msgpack_packer_init(&s->pk, &s->chunk, msgpack_sbuffer_write);
	msgpack_sbuffer_write(&s->file, MT_SHARD_MAGIC, 8);
	put_le(&s->file, major, 2);
	put_le(&s->file, minor, 2);
	put_le(&s->file, flags, 4);
}

void synth_destroy(struct synth *s)
{
	msgpack_sbuffer_destroy(&s->file);
	msgpack_sbuffer_destroy(&s->chunk);
}

void synth_begin_bare_chunk(struct synth *s)
{
	msgpack_sbuffer_clear(&s->chunk);
}

void synth_begin_chunk(struct synth *s, uint64_t seq_base, uint64_t time_base)
{
	msgpack_sbuffer_clear(&s->chunk);
	msgpack_pack_array(&s->pk, 3);
	msgpack_pack_uint8(&s->pk, MT_REC_CHUNK);
	msgpack_pack_uint64(&s->pk, seq_base);
	msgpack_pack_uint64(&s->pk, time_base);
	s->seq_acc = seq_base;
	s->time_acc = time_base;
}

void synth_frame(struct synth *s, uint32_t seq, const void *payload, size_t len)
{
	msgpack_sbuffer h;

	msgpack_sbuffer_init(&h);
	put_le(&h, MT_CHUNK_MAGIC, 4);
	put_le(&h, len, 4);
	put_le(&h, seq, 4);
	put_le(&h, mt_crc32c(0, payload, len), 4);
	put_le(&h, 0, 4);
	put_le(&h, mt_crc32c(0, h.data, 20), 4);
	if (s->nchunks < SYNTH_MAX_CHUNKS)
		s->chunk_start[s->nchunks] = s->file.size;
	msgpack_sbuffer_write(&s->file, h.data, h.size);
	msgpack_sbuffer_write(&s->file, payload, len);
	if (s->nchunks < SYNTH_MAX_CHUNKS)
		s->chunk_end[s->nchunks] = s->file.size;
	s->nchunks++;
	msgpack_sbuffer_destroy(&h);
}

void synth_end_chunk(struct synth *s)
{
	synth_frame(s, s->seq++, s->chunk.data, s->chunk.size);
	msgpack_sbuffer_clear(&s->chunk);
}

void synth_pack_delta(struct synth *s, uint64_t *acc, uint64_t v)
{
	uint64_t d = v - *acc;

	if ((int64_t)d < 0)
		msgpack_pack_int64(&s->pk, (int64_t)d);
	else
		msgpack_pack_uint64(&s->pk, d);
	*acc = v;
}

static void pack_str(msgpack_packer *pk, const struct mt_shard_str *v)
{
	msgpack_pack_str(pk, v->len);
	msgpack_pack_str_body(pk, v->ptr, v->len);
}

static void pack_key(msgpack_packer *pk, const char *k)
{
	msgpack_pack_str(pk, strlen(k));
	msgpack_pack_str_body(pk, k, strlen(k));
}

static unsigned popcount(uint32_t v)
{
	return (unsigned)__builtin_popcount(v);
}

static void pack_header(struct synth *s, const struct mt_shard_header *h)
{
	msgpack_packer *pk = &s->pk;
	uint32_t top = h->present & ((1u << 20) - 1);
	uint32_t tiers = h->present & ~((1u << 20) - 1);

	msgpack_pack_array(pk, 2);
	msgpack_pack_uint8(pk, MT_REC_HEADER);
	msgpack_pack_map(pk, popcount(top));
#define S(bit, key, field) \
	if (h->present & bit) { pack_key(pk, key); pack_str(pk, &h->field); }
#define U(bit, key, field) \
	if (h->present & bit) { pack_key(pk, key); msgpack_pack_uint64(pk, h->field); }
#define D(bit, key, field) \
	if (h->present & bit) { pack_key(pk, key); msgpack_pack_double(pk, h->field); }
	S(MT_SHARD_H_VERSION, MT_KEY_VERSION, version)
	S(MT_SHARD_H_HOST, MT_KEY_HOST, host)
	U(MT_SHARD_H_PID, MT_KEY_PID, pid)
	U(MT_SHARD_H_PPID, MT_KEY_PPID, ppid)
	U(MT_SHARD_H_TID, MT_KEY_TID, tid)
	S(MT_SHARD_H_THREAD, MT_KEY_THREAD, thread)
	S(MT_SHARD_H_EXE, MT_KEY_EXE, exe)
	if (h->present & MT_SHARD_H_ARGV) {
		pack_key(pk, MT_KEY_ARGV);
		msgpack_pack_array(pk, h->argc);
		for (uint32_t i = 0; i < h->argc; i++)
			pack_str(pk, &h->argv[i]);
	}
	U(MT_SHARD_H_START_REAL, MT_KEY_START_REAL, start_realtime_ns)
	U(MT_SHARD_H_START_MONO, MT_KEY_START_MONO, start_mono_ns)
	S(MT_SHARD_H_CLOCK, MT_KEY_CLOCK, clock)
	S(MT_SHARD_H_POLICY, MT_KEY_POLICY, policy_name)
	U(MT_SHARD_H_MEAN, MT_KEY_MEAN, mean)
	if (h->present & MT_SHARD_H_TIERS) {
		pack_key(pk, MT_KEY_TIERS);
		msgpack_pack_map(pk, popcount(tiers));
		U(MT_SHARD_H_LARGE, MT_KEY_LARGE, large)
		U(MT_SHARD_H_MEDIUM, MT_KEY_MEDIUM, medium)
		D(MT_SHARD_H_MEDIUM_RATE, MT_KEY_MEDIUM_RATE, medium_rate)
		D(MT_SHARD_H_SMALL_RATE, MT_KEY_SMALL_RATE, small_rate)
		U(MT_SHARD_H_BOOST_THRESHOLD, MT_KEY_BOOST_THRESHOLD, boost_threshold)
		D(MT_SHARD_H_BOOST_MAX, MT_KEY_BOOST_MAX, boost_max)
	}
	U(MT_SHARD_H_SEED, MT_KEY_SEED, seed)
	U(MT_SHARD_H_DEPTH, MT_KEY_DEPTH, stack_depth)
	S(MT_SHARD_H_UNWIND, MT_KEY_UNWIND, unwind)
	U(MT_SHARD_H_SHARD_SEQ, MT_KEY_SHARD_SEQ, shard_seq)
	U(MT_SHARD_H_ADDR_BASE, MT_KEY_ADDR_BASE, addr_base)
	U(MT_SHARD_H_BUFFER, MT_KEY_BUFFER, buffer)
#undef S
#undef U
#undef D
	if (h->present & MT_SHARD_H_ADDR_BASE)
		s->addr_base = h->addr_base;
}

static void pack_timed_str(struct synth *s, int kind,
			   const struct mt_shard_timed_str *x)
{
	msgpack_pack_array(&s->pk, 3);
	msgpack_pack_uint8(&s->pk, (uint8_t)kind);
	synth_pack_delta(s, &s->time_acc, x->time_ns);
	pack_str(&s->pk, &x->str);
}

void synth_record(struct synth *s, const struct mt_shard_record *rec)
{
	msgpack_packer *pk = &s->pk;
	const typeof(rec->u) *u = &rec->u;

	switch (rec->kind) {
	case MT_REC_HEADER:
		pack_header(s, &u->header);
		break;
	case MT_REC_MODULE:
		msgpack_pack_array(pk, 6);
		msgpack_pack_uint8(pk, MT_REC_MODULE);
		msgpack_pack_uint64(pk, u->module.id);
		pack_str(pk, &u->module.path);
		msgpack_pack_bin(pk, u->module.build_id_len);
		msgpack_pack_bin_body(pk, u->module.build_id, u->module.build_id_len);
		msgpack_pack_uint64(pk, u->module.base);
		msgpack_pack_uint64(pk, u->module.size);
		break;
	case MT_REC_STACK:
		msgpack_pack_array(pk, 3);
		msgpack_pack_uint8(pk, MT_REC_STACK);
		msgpack_pack_uint64(pk, u->stack.id);
		msgpack_pack_array(pk, u->stack.depth);
		for (uint32_t i = 0; i < u->stack.depth; i++)
			msgpack_pack_uint64(pk, u->stack.pcs[i]);
		break;
	case MT_REC_ALLOC:
		msgpack_pack_array(pk, u->alloc.has_weight ? 8 : 7);
		msgpack_pack_uint8(pk, MT_REC_ALLOC);
		synth_pack_delta(s, &s->seq_acc, u->alloc.seq);
		synth_pack_delta(s, &s->time_acc, u->alloc.time_ns);
		msgpack_pack_uint64(pk, (u->alloc.addr - s->addr_base) >> MT_ADDR_SHIFT);
		msgpack_pack_uint64(pk, u->alloc.size);
		msgpack_pack_uint64(pk, u->alloc.slack);
		msgpack_pack_uint64(pk, u->alloc.stack_id);
		if (u->alloc.has_weight)
			msgpack_pack_double(pk, u->alloc.weight);
		break;
	case MT_REC_FREE:
		msgpack_pack_array(pk, 5);
		msgpack_pack_uint8(pk, MT_REC_FREE);
		synth_pack_delta(s, &s->seq_acc, u->free.seq);
		synth_pack_delta(s, &s->time_acc, u->free.time_ns);
		msgpack_pack_uint64(pk, (u->free.addr - s->addr_base) >> MT_ADDR_SHIFT);
		msgpack_pack_uint64(pk, u->free.alloc_seq);
		break;
	case MT_REC_TOTALS:
		msgpack_pack_array(pk, 7);
		msgpack_pack_uint8(pk, MT_REC_TOTALS);
		synth_pack_delta(s, &s->time_acc, u->totals.time_ns);
		msgpack_pack_uint64(pk, u->totals.allocs);
		msgpack_pack_uint64(pk, u->totals.frees);
		msgpack_pack_uint64(pk, u->totals.bytes_allocated);
		msgpack_pack_uint64(pk, u->totals.bytes_freed);
		if (u->totals.shared)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case MT_REC_CLASSES:
		msgpack_pack_array(pk, 3);
		msgpack_pack_uint8(pk, MT_REC_CLASSES);
		synth_pack_delta(s, &s->time_acc, u->classes.time_ns);
		msgpack_pack_array(pk, u->classes.n);
		for (uint32_t i = 0; i < u->classes.n; i++) {
			msgpack_pack_array(pk, 2);
			msgpack_pack_uint64(pk, u->classes.v[i].size);
			msgpack_pack_uint64(pk, u->classes.v[i].requests);
		}
		break;
	case MT_REC_TIMELINE:
		msgpack_pack_array(pk, 7);
		msgpack_pack_uint8(pk, MT_REC_TIMELINE);
		synth_pack_delta(s, &s->time_acc, u->timeline.time_ns);
		msgpack_pack_uint64(pk, u->timeline.allocated);
		msgpack_pack_uint64(pk, u->timeline.active);
		msgpack_pack_uint64(pk, u->timeline.resident);
		msgpack_pack_uint64(pk, u->timeline.mapped);
		msgpack_pack_uint64(pk, (uint64_t)u->timeline.live_estimate);
		break;
	case MT_REC_MARK:
		pack_timed_str(s, MT_REC_MARK, &u->mark);
		break;
	case MT_REC_THREAD_NAME:
		pack_timed_str(s, MT_REC_THREAD_NAME, &u->thread_name);
		break;
	case MT_REC_END:
		pack_timed_str(s, MT_REC_END, &u->end);
		break;
	case MT_REC_DROPPED:
		msgpack_pack_array(pk, 3);
		msgpack_pack_uint8(pk, MT_REC_DROPPED);
		msgpack_pack_uint64(pk, u->dropped.records);
		msgpack_pack_uint64(pk, u->dropped.bytes);
		break;
	case MT_REC_THREAD_EXIT:
		msgpack_pack_array(pk, 7);
		msgpack_pack_uint8(pk, MT_REC_THREAD_EXIT);
		msgpack_pack_uint64(pk, u->thread_exit.tid);
		pack_str(pk, &u->thread_exit.name);
		msgpack_pack_uint64(pk, u->thread_exit.allocs);
		msgpack_pack_uint64(pk, u->thread_exit.frees);
		msgpack_pack_uint64(pk, u->thread_exit.bytes_allocated);
		msgpack_pack_uint64(pk, u->thread_exit.bytes_freed);
		break;
	case MT_REC_CHUNK:
		abort(); /* synth_begin_chunk writes it */
	}
}

int synth_write_file(const char *path, const void *data, size_t len)
{
	const char *p = data;
	int fd, rc = 0;

	/* A new file rather than O_TRUNC: ext4 flushes a truncated file's data
	 * on close (auto_da_alloc), 20 times slower for the tests' rewrites. */
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t k = write(fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = -errno;
			goto out_close;
		}
		p += k;
		len -= (size_t)k;
	}
out_close:
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

int synth_save(const struct synth *s, const char *path)
{
	return synth_write_file(path, s->file.data, s->file.size);
}
