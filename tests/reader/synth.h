/* A writer of synthetic shards for the reader's tests.  It encodes struct
 * mt_shard_record values (the reader's own types, so that a test compares
 * what it wrote with what it reads) with the delta coding and addr scaling
 * of format.h, and frames them into chunks.  Test code only: it uses
 * msgpack_sbuffer, which the library must not (it calls realloc). */
#ifndef MT_TESTS_SYNTH_H
#define MT_TESTS_SYNTH_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "shard/reader.h"

#define SYNTH_MAX_CHUNKS 64

struct synth {
	msgpack_sbuffer file;      /* the shard so far */
	msgpack_sbuffer chunk;     /* payload of the chunk being built */
	msgpack_packer pk;         /* packs into chunk: tests may add raw records */
	uint32_t seq;              /* number of the next chunk */
	uint64_t seq_acc, time_acc;  /* delta bases */
	uint64_t addr_base;        /* for scaling addr fields */
	size_t nchunks;            /* chunks framed (count) */
	size_t chunk_start[SYNTH_MAX_CHUNKS];  /* file offset of each header */
	size_t chunk_end[SYNTH_MAX_CHUNKS];    /* file offset after its payload */
};

/* Starts a shard whose file header says major.minor and flags. */
void synth_init(struct synth *s, unsigned major, unsigned minor, uint32_t flags);

/* Frees the buffers. */
void synth_destroy(struct synth *s);

/* Starts a chunk with its MT_REC_CHUNK record [12, seq_base, time_base]. */
void synth_begin_chunk(struct synth *s, uint64_t seq_base, uint64_t time_base);

/* Starts a chunk with no MT_REC_CHUNK record (for tests of that mistake). */
void synth_begin_bare_chunk(struct synth *s);

/* Frames the chunk being built (numbered s->seq++) into the file. */
void synth_end_chunk(struct synth *s);

/* Appends a framed chunk with the given number and payload as is. */
void synth_frame(struct synth *s, uint32_t seq, const void *payload, size_t len);

/* Encodes *rec into the current chunk (any kind but MT_REC_CHUNK), time and
 * seq as deltas from the previous record, addr scaled by s->addr_base.  A
 * header record also sets s->addr_base from its addr_base key. */
void synth_record(struct synth *s, const struct mt_shard_record *rec);

/* Packs a delta from *acc to v (negative as a negative int) and sets *acc. */
void synth_pack_delta(struct synth *s, uint64_t *acc, uint64_t v);

/* Writes the shard to path.  0, or -errno. */
int synth_save(const struct synth *s, const char *path);

/* Writes len bytes to path.  0, or -errno. */
int synth_write_file(const char *path, const void *data, size_t len);

#endif
