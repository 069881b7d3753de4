/* shard reader: framing (file header, chunks, resynchronisation) and record
 * decoding.  reader.h has the contracts, doc/format.md the format.
 *
 * Two layers:
 *   - load_chunk() reads the next chunk whose header and payload checksums
 *     hold into r->buf (one payload, <= MT_CHUNK_MAX), skipping corrupt
 *     regions by scanning for the next valid chunk header, and recognising
 *     a torn tail;
 *   - decode_next() takes one record from r->buf.  A small scanner of our
 *     own (mp_scan) first finds the record's extent, counts its objects and
 *     bounds its nesting without allocating, so that msgpack-c, which
 *     allocates an array's slots from the count the input claims, only ever
 *     sees records whose counts are backed by bytes.  msgpack-c then
 *     unpacks the record into r->zone and typed getters turn the objects
 *     into struct mt_shard_record.  Nothing recurses on the input.
 *     ALLOC and FREE records of the writer's usual shape, nearly all of a
 *     shard, take a fast path first (decode_fast) that reads them straight
 *     from the bytes and leaves anything unusual to the general path. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "reader.h"

#define SCAN_BLOCK (64u << 10) /* bytes read at a time while resynchronising */
#define ZONE_CHUNK 8192        /* bytes: msgpack zone allocation unit */

struct mt_shard_reader {
	int fd;                 /* -1: no file open */
	int err;                /* sticky -errno of mt_shard_next, or 0 */
	uint64_t size;          /* bytes in the file */
	uint64_t off;           /* file offset of the next chunk header */

	/* the current chunk */
	uint8_t *buf;           /* its payload */
	size_t cap;             /* bytes allocated at buf */
	size_t len;             /* payload bytes */
	size_t pos;             /* offset of the next record in buf */
	uint32_t chunk_seq;     /* its number */
	uint64_t chunk_off;     /* file offset of its header */
	uint64_t next_seq;      /* chunk number expected next */

	/* delta chains of the current chunk */
	uint64_t seq_acc, time_acc;  /* last absolute seq and time */
	bool seq_ok, time_ok;        /* based by an MT_REC_CHUNK, unbroken */

	/* decoding */
	msgpack_zone zone;
	char *scratch;          /* copies of the record's strings */
	size_t scratch_cap, scratch_used;  /* bytes */
	uint64_t *frames;       /* MT_SHARD_MAX_FRAMES */
	struct mt_shard_str *argv;         /* MT_SHARD_MAX_ARGV */
	struct mt_shard_class *classes;    /* MT_SHARD_MAX_CLASSES */
	struct mt_shard_record rec;

	/* the first header, deep-copied */
	struct mt_shard_header header;
	void *header_mem;
	uint64_t addr_base;

	uint8_t *scan;          /* SCAN_BLOCK + MT_CHUNK_HEADER bytes */
	struct mt_shard_stats stats;
	char msg[256];
};

/* ---- small helpers ------------------------------------------------------- */

static int fail(struct mt_shard_reader *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct mt_shard_reader *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	return err;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Reads exactly n bytes at off.  0, or -errno (-EIO when the file ends
 * early: it shrank while being read). */
static int read_at(struct mt_shard_reader *r, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t k = pread(r->fd, p, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return fail(r, -errno, "read at offset %" PRIu64 ": %s",
				    off, strerror(errno));
		if (k == 0)
			return fail(r, -EIO, "file shrank while being read "
				    "(offset %" PRIu64 ")", off);
		p += k;
		off += (uint64_t)k;
		n -= (size_t)k;
	}
	return 0;
}

/* ---- framing ------------------------------------------------------------- */

struct chunk_header {
	uint32_t length, seq, crc;
};

/* True when the 24 bytes at p are a chunk header whose magic, header CRC
 * and length bound hold. */
static bool chunk_header_valid(const uint8_t *p, struct chunk_header *h)
{
	if (le32(p) != MT_CHUNK_MAGIC)
		return false;
	if (mt_crc32c(0, p, 20) != le32(p + 20))
		return false;
	if (le32(p + 4) > MT_CHUNK_MAX)
		return false;
	if (h) {
		h->length = le32(p + 4);
		h->seq = le32(p + 8);
		h->crc = le32(p + 12);
	}
	return true;
}

/* Finds the first valid chunk header at or after `from`: *found is its
 * offset, or the file size when there is none.  0 or -errno. */
static int resync(struct mt_shard_reader *r, uint64_t from, uint64_t *found)
{
	uint64_t base = from;

	while (base < r->size && r->size - base >= MT_CHUNK_HEADER) {
		uint64_t left = r->size - base;
		size_t want = left < SCAN_BLOCK + MT_CHUNK_HEADER - 1 ?
				      (size_t)left : SCAN_BLOCK + MT_CHUNK_HEADER - 1;
		size_t last = want - MT_CHUNK_HEADER; /* last candidate index */
		int rc = read_at(r, r->scan, want, base);
		if (rc < 0)
			return rc;
		for (size_t i = 0; i <= last; i++) {
			const uint8_t *m = memchr(r->scan + i, 'M', last - i + 1);
			if (!m)
				break;
			i = (size_t)(m - r->scan);
			if (chunk_header_valid(m, NULL)) {
				*found = base + i;
				return 0;
			}
		}
		base += last + 1;
	}
	*found = r->size;
	return 0;
}

static void note_corrupt(struct mt_shard_reader *r, uint64_t from, uint64_t to)
{
	if (!r->stats.chunks_corrupt)
		r->stats.first_corrupt = from;
	r->stats.chunks_corrupt++;
	r->stats.bytes_skipped += to - from;
}

static void note_torn(struct mt_shard_reader *r, uint64_t from)
{
	r->stats.torn_tail = true;
	r->stats.torn_offset = from;
	r->stats.torn_bytes = r->size - from;
}

/* Skips the corrupt region that begins at r->off, up to the next valid chunk
 * header or the end of the file.  0 or -errno. */
static int skip_corrupt(struct mt_shard_reader *r)
{
	uint64_t next;
	int rc = resync(r, r->off + 1, &next);

	if (rc < 0)
		return rc;
	note_corrupt(r, r->off, next);
	r->off = next;
	return 0;
}

static int grow_buf(struct mt_shard_reader *r, size_t need)
{
	size_t cap = r->cap ? r->cap : 64u << 10;
	uint8_t *p;

	if (need <= r->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	p = realloc(r->buf, cap);
	if (!p)
		return fail(r, -ENOMEM, "out of memory for a %zu-byte chunk", need);
	r->buf = p;
	r->cap = cap;
	return 0;
}

/* Reads the next good chunk into r->buf.  1 when one was loaded, 0 at the
 * end of the file, or -errno. */
static int load_chunk(struct mt_shard_reader *r)
{
	uint8_t hb[MT_CHUNK_HEADER];
	struct chunk_header h;
	int rc;

	r->len = r->pos = 0;
	while (r->off < r->size) {
		uint64_t left = r->size - r->off;

		if (left < MT_CHUNK_HEADER) {
			/* A chunk header begins here: is it a torn one? */
			size_t cmp = left < 4 ? (size_t)left : 4;
			uint8_t magic[4] = { 'M', 'T', 'C', 'K' };
			if ((rc = read_at(r, hb, (size_t)left, r->off)) < 0)
				return rc;
			if (memcmp(hb, magic, cmp) == 0)
				note_torn(r, r->off);
			else
				note_corrupt(r, r->off, r->size);
			r->off = r->size;
			break;
		}
		if ((rc = read_at(r, hb, sizeof(hb), r->off)) < 0)
			return rc;
		if (!chunk_header_valid(hb, &h)) {
			if ((rc = skip_corrupt(r)) < 0)
				return rc;
			continue;
		}
		if (h.length > left - MT_CHUNK_HEADER) {
			/* The file ends inside this chunk: a torn tail, unless
			 * a good chunk follows (then this header lied). */
			uint64_t next;
			if ((rc = resync(r, r->off + 1, &next)) < 0)
				return rc;
			if (next < r->size) {
				note_corrupt(r, r->off, next);
				r->off = next;
				continue;
			}
			note_torn(r, r->off);
			r->off = r->size;
			break;
		}
		if ((rc = grow_buf(r, h.length)) < 0)
			return rc;
		if ((rc = read_at(r, r->buf, h.length, r->off + MT_CHUNK_HEADER)) < 0)
			return rc;
		if (mt_crc32c(0, r->buf, h.length) != h.crc) {
			if ((rc = skip_corrupt(r)) < 0)
				return rc;
			continue;
		}
		if (h.seq > r->next_seq)
			r->stats.chunks_missing += h.seq - r->next_seq;
		else if (h.seq < r->next_seq)
			r->stats.seq_backwards++;
		r->next_seq = (uint64_t)h.seq + 1;
		r->stats.chunks_read++;
		r->chunk_seq = h.seq;
		r->chunk_off = r->off;
		r->off += MT_CHUNK_HEADER + (uint64_t)h.length;
		r->len = h.length;
		r->seq_ok = r->time_ok = false;
		return 1;
	}
	return 0;
}

/* ---- a bounded msgpack scanner ------------------------------------- */

struct mp_extent {
	size_t bytes;      /* the object's encoded size */
	uint64_t objects;  /* objects in it, containers included */
	bool too_deep;     /* nested deeper than MT_SHARD_MAX_DEPTH */
};

/* Finds the extent of the msgpack object at p (n bytes available) without
 * allocating.  0, or -1 when it is incomplete or holds the unused byte
 * 0xc1.  Every iteration consumes a byte or closes a level, so this ends
 * after at most 2n steps whatever the counts claim. */
static int mp_scan(const uint8_t *p, size_t n, struct mp_extent *e)
{
	uint64_t left[MT_SHARD_MAX_DEPTH + 1]; /* items left per open level */
	unsigned d = 1;
	size_t i = 0;

	left[0] = 1;
	e->objects = 0;
	e->too_deep = false;
	while (d) {
		uint64_t skip = 0, items = 0;
		unsigned lenb = 0, extra = 0;
		uint8_t b;

		if (!left[d - 1]) {
			d--;
			continue;
		}
		left[d - 1]--;
		if (i >= n)
			return -1;
		b = p[i++];
		e->objects++;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
			;
		else if ((b & 0xf0) == 0x80)
			items = 2u * (b & 0x0f);
		else if ((b & 0xf0) == 0x90)
			items = b & 0x0f;
		else if ((b & 0xe0) == 0xa0)
			skip = b & 0x1f;
		else {
			switch (b) {
			case 0xc4: case 0xd9: lenb = 1; break; /* bin8, str8 */
			case 0xc5: case 0xda: lenb = 2; break;
			case 0xc6: case 0xdb: lenb = 4; break;
			case 0xc7: lenb = 1; extra = 1; break; /* ext8: len, type */
			case 0xc8: lenb = 2; extra = 1; break;
			case 0xc9: lenb = 4; extra = 1; break;
			case 0xca: skip = 4; break;            /* float32 */
			case 0xcb: skip = 8; break;
			case 0xcc: case 0xd0: skip = 1; break; /* (u)int8 */
			case 0xcd: case 0xd1: skip = 2; break;
			case 0xce: case 0xd2: skip = 4; break;
			case 0xcf: case 0xd3: skip = 8; break;
			case 0xd4: skip = 2; break;            /* fixext1: type, data */
			case 0xd5: skip = 3; break;
			case 0xd6: skip = 5; break;
			case 0xd7: skip = 9; break;
			case 0xd8: skip = 17; break;
			case 0xdc: case 0xde: lenb = 2; break; /* array16, map16 */
			case 0xdd: case 0xdf: lenb = 4; break;
			default: return -1;                    /* 0xc1 */
			}
			if (lenb) {
				uint64_t v;
				if (n - i < lenb)
					return -1;
				v = be(p + i, lenb);
				i += lenb;
				if (b >= 0xdc)
					items = b >= 0xde ? 2 * v : v;
				else
					skip = v + extra;
			}
		}
		if (skip > n - i)
			return -1;
		i += (size_t)skip;
		if (items) {
			if (d <= MT_SHARD_MAX_DEPTH) {
				left[d++] = items;
			} else {
				/* Deeper than we track: count its items at this
				 * level, which still finds the end. */
				left[d - 1] += items;
				e->too_deep = true;
			}
		}
	}
	e->bytes = i;
	return 0;
}

/* The kind of the record at p (a complete object, per mp_scan): the first
 * element of a non-empty array, a non-negative integer.  0, or -1. */
static int mp_kind(const uint8_t *p, uint64_t *kind)
{
	uint8_t b = *p;
	uint64_t count;
	unsigned h;

	if ((b & 0xf0) == 0x90) {
		count = b & 0x0f;
		h = 1;
	} else if (b == 0xdc) {
		count = be(p + 1, 2);
		h = 3;
	} else if (b == 0xdd) {
		count = be(p + 1, 4);
		h = 5;
	} else {
		return -1;
	}
	if (!count)
		return -1;
	p += h;
	b = *p;
	if (b <= 0x7f)
		*kind = b;
	else if (b >= 0xcc && b <= 0xcf)
		*kind = be(p + 1, 1u << (b - 0xcc));
	else if (b >= 0xd0 && b <= 0xd3 && !(p[1] & 0x80))
		*kind = be(p + 1, 1u << (b - 0xd0));
	else
		return -1;
	return 0;
}

/* ---- typed getters over msgpack objects ---------------------------- */

#define BAD (-EBADMSG)

static int get_uint(const msgpack_object *o, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return BAD;
	*v = o->via.u64;
	return 0;
}

/* A number: float, or an integer taken as one. */
static int get_double(const msgpack_object *o, double *v)
{
	switch (o->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		*v = o->via.f64;
		return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		*v = (double)o->via.u64;
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*v = (double)o->via.i64;
		return 0;
	default:
		return BAD;
	}
}

static int get_bool(const msgpack_object *o, bool *v)
{
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return BAD;
	*v = o->via.boolean;
	return 0;
}

/* Copies a str (or, with bin, a bin) object into the record's scratch,
 * NUL-terminated.  decode_next() sized the scratch for the whole record. */
static int copy_bytes(struct mt_shard_reader *r, const msgpack_object *o,
		      bool bin, struct mt_shard_str *s)
{
	const char *src;
	uint32_t n;
	char *dst;

	if (!bin && o->type == MSGPACK_OBJECT_STR) {
		src = o->via.str.ptr;
		n = o->via.str.size;
	} else if (bin && o->type == MSGPACK_OBJECT_BIN) {
		src = o->via.bin.ptr;
		n = o->via.bin.size;
	} else {
		return BAD;
	}
	if (n > MT_SHARD_MAX_STR || n + 1 > r->scratch_cap - r->scratch_used)
		return BAD;
	dst = r->scratch + r->scratch_used;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
	r->scratch_used += n + 1;
	s->ptr = dst;
	s->len = n;
	return 0;
}

static int get_str(struct mt_shard_reader *r, const msgpack_object *o,
		   struct mt_shard_str *s)
{
	return copy_bytes(r, o, false, s);
}

/* Adds the delta o to *acc (modulo 2^64: a negative delta, or a uint that
 * wraps, goes backwards). */
static int add_delta(const msgpack_object *o, uint64_t *acc)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		*acc += o->via.u64;
	else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		*acc += (uint64_t)o->via.i64;
	else
		return BAD;
	return 0;
}

/* Applies the d time field at a[1] (and, with seq, the d seq at a[1] and d
 * time at a[2]), breaking the chain when the field is missing or of the
 * wrong type.  A record without a based chain is malformed. */
static int deltas(struct mt_shard_reader *r, const msgpack_object *a,
		  uint32_t n, uint64_t *seq, uint64_t *time)
{
	uint32_t ti = seq ? 2 : 1;

	if (seq) {
		if (!r->seq_ok)
			return BAD;
		if (n <= 1 || add_delta(&a[1], &r->seq_acc)) {
			r->seq_ok = false;
			return BAD;
		}
		*seq = r->seq_acc;
	}
	if (!r->time_ok)
		return BAD;
	if (n <= ti || add_delta(&a[ti], &r->time_acc)) {
		r->time_ok = false;
		return BAD;
	}
	*time = r->time_acc;
	return 0;
}

/* ---- record decoders: a is the record array, n its size ----------------- */

static bool key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);

	return k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

static int dec_tiers(const msgpack_object *m, struct mt_shard_header *h)
{
	if (m->type != MSGPACK_OBJECT_MAP)
		return BAD;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		const msgpack_object *v = &m->via.map.ptr[i].val;
		int rc = 0;

		if (k->type != MSGPACK_OBJECT_STR)
			return BAD;
		if (key_is(k, MT_KEY_LARGE)) {
			rc = get_uint(v, &h->large);
			h->present |= MT_SHARD_H_LARGE;
		} else if (key_is(k, MT_KEY_MEDIUM)) {
			rc = get_uint(v, &h->medium);
			h->present |= MT_SHARD_H_MEDIUM;
		} else if (key_is(k, MT_KEY_MEDIUM_RATE)) {
			rc = get_double(v, &h->medium_rate);
			h->present |= MT_SHARD_H_MEDIUM_RATE;
		} else if (key_is(k, MT_KEY_SMALL_RATE)) {
			rc = get_double(v, &h->small_rate);
			h->present |= MT_SHARD_H_SMALL_RATE;
		} else if (key_is(k, MT_KEY_BOOST_THRESHOLD)) {
			rc = get_uint(v, &h->boost_threshold);
			h->present |= MT_SHARD_H_BOOST_THRESHOLD;
		} else if (key_is(k, MT_KEY_BOOST_MAX)) {
			rc = get_double(v, &h->boost_max);
			h->present |= MT_SHARD_H_BOOST_MAX;
		}
		if (rc)
			return rc;
	}
	return 0;
}

static enum mt_shard_policy parse_policy(const struct mt_shard_str *s)
{
	static const char *names[] = {
		[MT_SHARD_POLICY_POISSON] = "poisson",
		[MT_SHARD_POLICY_TIERED] = "tiered",
		[MT_SHARD_POLICY_ALL] = "all",
		[MT_SHARD_POLICY_OFF] = "off",
	};

	for (unsigned i = 1; i < sizeof(names) / sizeof(names[0]); i++)
		if (s->len == strlen(names[i]) && memcmp(s->ptr, names[i], s->len) == 0)
			return (enum mt_shard_policy)i;
	return MT_SHARD_POLICY_UNKNOWN;
}

static int dec_argv(struct mt_shard_reader *r, const msgpack_object *o,
		    struct mt_shard_header *h)
{
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > MT_SHARD_MAX_ARGV)
		return BAD;
	for (uint32_t i = 0; i < o->via.array.size; i++)
		if (get_str(r, &o->via.array.ptr[i], &r->argv[i]))
			return BAD;
	h->argv = r->argv;
	h->argc = o->via.array.size;
	return 0;
}

/* Header keys with a str value, and where each goes. */
#define STR_KEYS(X)                                              \
	X(MT_KEY_VERSION, version, MT_SHARD_H_VERSION)           \
	X(MT_KEY_HOST, host, MT_SHARD_H_HOST)                    \
	X(MT_KEY_THREAD, thread, MT_SHARD_H_THREAD)              \
	X(MT_KEY_EXE, exe, MT_SHARD_H_EXE)                       \
	X(MT_KEY_CLOCK, clock, MT_SHARD_H_CLOCK)                 \
	X(MT_KEY_POLICY, policy_name, MT_SHARD_H_POLICY)         \
	X(MT_KEY_UNWIND, unwind, MT_SHARD_H_UNWIND)
/* ... and with a uint value. */
#define UINT_KEYS(X)                                             \
	X(MT_KEY_PID, pid, MT_SHARD_H_PID)                       \
	X(MT_KEY_PPID, ppid, MT_SHARD_H_PPID)                    \
	X(MT_KEY_TID, tid, MT_SHARD_H_TID)                       \
	X(MT_KEY_START_REAL, start_realtime_ns, MT_SHARD_H_START_REAL) \
	X(MT_KEY_START_MONO, start_mono_ns, MT_SHARD_H_START_MONO) \
	X(MT_KEY_MEAN, mean, MT_SHARD_H_MEAN)                    \
	X(MT_KEY_SEED, seed, MT_SHARD_H_SEED)                    \
	X(MT_KEY_DEPTH, stack_depth, MT_SHARD_H_DEPTH)           \
	X(MT_KEY_SHARD_SEQ, shard_seq, MT_SHARD_H_SHARD_SEQ)     \
	X(MT_KEY_ADDR_BASE, addr_base, MT_SHARD_H_ADDR_BASE)     \
	X(MT_KEY_BUFFER, buffer, MT_SHARD_H_BUFFER) \
	X(MT_KEY_FORK_SEQ, fork_seq, MT_SHARD_H_FORK_SEQ)

static int dec_header(struct mt_shard_reader *r, const msgpack_object *a,
		      uint32_t n, struct mt_shard_header *h)
{
	const msgpack_object *m;

	if (n < 2 || a[1].type != MSGPACK_OBJECT_MAP)
		return BAD;
	m = &a[1];
	memset(h, 0, sizeof(*h));
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		const msgpack_object *v = &m->via.map.ptr[i].val;
		int rc = 0;

		if (k->type != MSGPACK_OBJECT_STR)
			return BAD;
#define X(key, field, bit)                                \
		else if (key_is(k, key)) {                \
			rc = get_str(r, v, &h->field);    \
			h->present |= bit;                \
		}
		if (0)
			;
		STR_KEYS(X)
#undef X
#define X(key, field, bit)                                \
		else if (key_is(k, key)) {                \
			rc = get_uint(v, &h->field);      \
			h->present |= bit;                \
		}
		UINT_KEYS(X)
#undef X
		else if (key_is(k, MT_KEY_ARGV)) {
			rc = dec_argv(r, v, h);
			h->present |= MT_SHARD_H_ARGV;
		} else if (key_is(k, MT_KEY_TIERS)) {
			rc = dec_tiers(v, h);
			h->present |= MT_SHARD_H_TIERS;
		}
		if (rc)
			return rc;
	}
	if (h->present & MT_SHARD_H_POLICY)
		h->policy = parse_policy(&h->policy_name);
	return 0;
}

static int dec_module(struct mt_shard_reader *r, const msgpack_object *a,
		      uint32_t n, struct mt_shard_module *m)
{
	struct mt_shard_str id;

	if (n < 6 || get_uint(&a[1], &m->id) || get_str(r, &a[2], &m->path) ||
	    copy_bytes(r, &a[3], true, &id) || get_uint(&a[4], &m->base) ||
	    get_uint(&a[5], &m->size))
		return BAD;
	m->build_id = id.len ? (const uint8_t *)id.ptr : NULL;
	m->build_id_len = id.len;
	return 0;
}

static int dec_stack(struct mt_shard_reader *r, const msgpack_object *a,
		     uint32_t n, struct mt_shard_stack *s)
{
	const msgpack_object *pcs;

	if (n < 3 || get_uint(&a[1], &s->id) || a[2].type != MSGPACK_OBJECT_ARRAY)
		return BAD;
	pcs = &a[2];
	if (pcs->via.array.size > MT_SHARD_MAX_FRAMES)
		return BAD;
	for (uint32_t i = 0; i < pcs->via.array.size; i++)
		if (get_uint(&pcs->via.array.ptr[i], &r->frames[i]))
			return BAD;
	s->pcs = r->frames;
	s->depth = pcs->via.array.size;
	return 0;
}

static uint64_t unscale(const struct mt_shard_reader *r, uint64_t scaled)
{
	return r->addr_base + (scaled << MT_ADDR_SHIFT);
}

static int dec_alloc(struct mt_shard_reader *r, const msgpack_object *a,
		     uint32_t n, struct mt_shard_alloc *x)
{
	uint64_t addr;

	if (deltas(r, a, n, &x->seq, &x->time_ns))
		return BAD;
	if (n < 7 || get_uint(&a[3], &addr) || get_uint(&a[4], &x->size) ||
	    get_uint(&a[5], &x->slack) || get_uint(&a[6], &x->stack_id))
		return BAD;
	x->addr = unscale(r, addr);
	x->has_weight = n > 7 && a[7].type != MSGPACK_OBJECT_NIL;
	x->weight = 0;
	if (x->has_weight &&
	    (get_double(&a[7], &x->weight) || !isfinite(x->weight) || x->weight <= 0))
		return BAD;
	return 0;
}

static int dec_free(struct mt_shard_reader *r, const msgpack_object *a,
		    uint32_t n, struct mt_shard_free *x)
{
	uint64_t addr;

	if (deltas(r, a, n, &x->seq, &x->time_ns))
		return BAD;
	if (n < 5 || get_uint(&a[3], &addr) || get_uint(&a[4], &x->alloc_seq))
		return BAD;
	x->addr = unscale(r, addr);
	return 0;
}

static int dec_totals(struct mt_shard_reader *r, const msgpack_object *a,
		      uint32_t n, struct mt_shard_totals *x)
{
	if (deltas(r, a, n, NULL, &x->time_ns))
		return BAD;
	if (n < 7 || get_uint(&a[2], &x->allocs) || get_uint(&a[3], &x->frees) ||
	    get_uint(&a[4], &x->bytes_allocated) ||
	    get_uint(&a[5], &x->bytes_freed) || get_bool(&a[6], &x->shared))
		return BAD;
	return 0;
}

static int dec_classes(struct mt_shard_reader *r, const msgpack_object *a,
		       uint32_t n, struct mt_shard_classes *x)
{
	const msgpack_object *l;

	if (deltas(r, a, n, NULL, &x->time_ns))
		return BAD;
	if (n < 3 || a[2].type != MSGPACK_OBJECT_ARRAY)
		return BAD;
	l = &a[2];
	if (l->via.array.size > MT_SHARD_MAX_CLASSES)
		return BAD;
	for (uint32_t i = 0; i < l->via.array.size; i++) {
		const msgpack_object *e = &l->via.array.ptr[i];
		if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 2 ||
		    get_uint(&e->via.array.ptr[0], &r->classes[i].size) ||
		    get_uint(&e->via.array.ptr[1], &r->classes[i].requests))
			return BAD;
	}
	x->v = r->classes;
	x->n = l->via.array.size;
	return 0;
}

static int dec_timeline(struct mt_shard_reader *r, const msgpack_object *a,
			uint32_t n, struct mt_shard_timeline *x)
{
	if (deltas(r, a, n, NULL, &x->time_ns))
		return BAD;
	if (n < 7 || get_uint(&a[2], &x->allocated) ||
	    get_uint(&a[3], &x->active) || get_uint(&a[4], &x->resident) ||
	    get_uint(&a[5], &x->mapped) || get_double(&a[6], &x->live_estimate))
		return BAD;
	return 0;
}

static int dec_timed_str(struct mt_shard_reader *r, const msgpack_object *a,
			 uint32_t n, struct mt_shard_timed_str *x)
{
	if (deltas(r, a, n, NULL, &x->time_ns))
		return BAD;
	if (n < 3 || get_str(r, &a[2], &x->str))
		return BAD;
	return 0;
}

static int dec_dropped(const msgpack_object *a, uint32_t n,
		       struct mt_shard_dropped *x)
{
	if (n < 3 || get_uint(&a[1], &x->records) || get_uint(&a[2], &x->bytes))
		return BAD;
	return 0;
}

static int dec_thread_exit(struct mt_shard_reader *r, const msgpack_object *a,
			   uint32_t n, struct mt_shard_thread_exit *x)
{
	if (n < 7 || get_uint(&a[1], &x->tid) || get_str(r, &a[2], &x->name) ||
	    get_uint(&a[3], &x->allocs) || get_uint(&a[4], &x->frees) ||
	    get_uint(&a[5], &x->bytes_allocated) ||
	    get_uint(&a[6], &x->bytes_freed))
		return BAD;
	return 0;
}

/* MT_REC_CHUNK: new bases for both chains. */
static int dec_chunk(struct mt_shard_reader *r, const msgpack_object *a,
		     uint32_t n)
{
	uint64_t seq, time;

	if (n < 3 || get_uint(&a[1], &seq) || get_uint(&a[2], &time)) {
		r->seq_ok = r->time_ok = false;
		return BAD;
	}
	r->seq_acc = seq;
	r->time_acc = time;
	r->seq_ok = r->time_ok = true;
	return 0;
}

/* Keeps a deep copy of the first header (for mt_shard_header and the
 * addresses of later records).  0 or -ENOMEM. */
static int keep_header(struct mt_shard_reader *r,
		       const struct mt_shard_header *h)
{
	struct mt_shard_str *strs[] = {
		&r->header.version, &r->header.host, &r->header.thread,
		&r->header.exe, &r->header.clock, &r->header.policy_name,
		&r->header.unwind,
	};
	size_t need = (size_t)h->argc * sizeof(struct mt_shard_str);
	struct mt_shard_str *argv;
	char *p;

	r->header = *h;
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		need += strs[i]->ptr ? strs[i]->len + 1u : 0;
	for (uint32_t i = 0; i < h->argc; i++)
		need += h->argv[i].len + 1u;
	r->header_mem = malloc(need ? need : 1);
	if (!r->header_mem)
		return fail(r, -ENOMEM, "out of memory for the shard header");
	argv = r->header_mem;
	p = (char *)(argv + h->argc);
	for (uint32_t i = 0; i < h->argc; i++) {
		memcpy(p, h->argv[i].ptr, h->argv[i].len + 1u);
		argv[i].ptr = p;
		argv[i].len = h->argv[i].len;
		p += h->argv[i].len + 1u;
	}
	r->header.argv = h->argc ? argv : NULL;
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (!strs[i]->ptr)
			continue;
		memcpy(p, strs[i]->ptr, strs[i]->len + 1u);
		strs[i]->ptr = p;
		p += strs[i]->len + 1u;
	}
	r->addr_base = h->addr_base;
	r->stats.header_seen = true;
	return 0;
}

/* Kinds with a d time field (element 1, or 2 after d seq). */
static bool has_time_delta(uint64_t kind)
{
	switch (kind) {
	case MT_REC_ALLOC: case MT_REC_FREE: case MT_REC_TOTALS:
	case MT_REC_CLASSES: case MT_REC_TIMELINE: case MT_REC_MARK:
	case MT_REC_THREAD_NAME: case MT_REC_END:
		return true;
	default:
		return false;
	}
}

static bool known_kind(uint64_t kind)
{
	return kind >= MT_REC_HEADER && kind <= MT_REC_CLASSES;
}

#define USIZE(k, m) [k] = sizeof(((struct mt_shard_record *)0)->u.m)
/* Bytes of the union member of each kind. */
static const size_t union_size[] = {
	USIZE(MT_REC_HEADER, header), USIZE(MT_REC_MODULE, module),
	USIZE(MT_REC_STACK, stack), USIZE(MT_REC_ALLOC, alloc),
	USIZE(MT_REC_FREE, free), USIZE(MT_REC_TOTALS, totals),
	USIZE(MT_REC_CLASSES, classes), USIZE(MT_REC_TIMELINE, timeline),
	USIZE(MT_REC_MARK, mark), USIZE(MT_REC_THREAD_NAME, thread_name),
	USIZE(MT_REC_DROPPED, dropped), USIZE(MT_REC_THREAD_EXIT, thread_exit),
	USIZE(MT_REC_END, end),
};
#undef USIZE

/* Decodes the object msgpack-c unpacked for a record of a known kind.
 * 1 when r->rec holds a record for the caller, 0 when the record was
 * consumed (MT_REC_CHUNK), BAD when malformed, or -ENOMEM. */
static int decode_object(struct mt_shard_reader *r, uint64_t kind,
			 const msgpack_object *o)
{
	const msgpack_object *a = o->via.array.ptr;
	uint32_t n = o->via.array.size;
	struct mt_shard_record *rec = &r->rec;
	int rc;

	/* Only what the kind's decoder fills: the header alone is large. */
	memset(&rec->u, 0, kind < sizeof(union_size) / sizeof(union_size[0]) &&
			   union_size[kind] ? union_size[kind] : sizeof(rec->u));
	rec->kind = (enum mt_rec_kind)kind;
	rec->chunk = r->chunk_seq;
	rec->chunk_offset = r->chunk_off;
	switch (kind) {
	case MT_REC_HEADER:
		rc = dec_header(r, a, n, &rec->u.header);
		if (rc == 0 && !r->stats.header_seen &&
		    (rc = keep_header(r, &rec->u.header)) < 0)
			return rc;
		break;
	case MT_REC_MODULE: rc = dec_module(r, a, n, &rec->u.module); break;
	case MT_REC_STACK: rc = dec_stack(r, a, n, &rec->u.stack); break;
	case MT_REC_ALLOC: rc = dec_alloc(r, a, n, &rec->u.alloc); break;
	case MT_REC_FREE: rc = dec_free(r, a, n, &rec->u.free); break;
	case MT_REC_TOTALS: rc = dec_totals(r, a, n, &rec->u.totals); break;
	case MT_REC_CLASSES: rc = dec_classes(r, a, n, &rec->u.classes); break;
	case MT_REC_TIMELINE: rc = dec_timeline(r, a, n, &rec->u.timeline); break;
	case MT_REC_MARK: rc = dec_timed_str(r, a, n, &rec->u.mark); break;
	case MT_REC_THREAD_NAME:
		rc = dec_timed_str(r, a, n, &rec->u.thread_name);
		break;
	case MT_REC_DROPPED: rc = dec_dropped(a, n, &rec->u.dropped); break;
	case MT_REC_THREAD_EXIT:
		rc = dec_thread_exit(r, a, n, &rec->u.thread_exit);
		break;
	case MT_REC_END: rc = dec_timed_str(r, a, n, &rec->u.end); break;
	case MT_REC_CHUNK:
		rc = dec_chunk(r, a, n);
		return rc ? rc : 0;
	default:
		rc = BAD; /* known_kind() said otherwise: cannot happen */
	}
	return rc ? rc : 1;
}

/* ---- the fast path: ALLOC and FREE straight from the bytes ------------- */

/* A non-negative integer in any of msgpack's unsigned encodings (positive
 * fixint, uint8..64) at *p (before end): 0, advancing *p, or -1 for
 * anything else (which the general path then judges). */
static inline int fp_uint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	uint8_t b;
	unsigned w;

	if (p >= end)
		return -1;
	b = *p;
	if (b <= 0x7f) {
		*v = b;
		*pp = p + 1;
		return 0;
	}
	if (b < 0xcc || b > 0xcf)
		return -1;
	w = 1u << (b - 0xcc);
	if ((size_t)(end - p) < 1 + w)
		return -1;
	switch (w) {
	case 1: *v = p[1]; break;
	case 2: *v = be(p + 1, 2); break;
	case 4: *v = be(p + 1, 4); break;
	default: *v = be(p + 1, 8); break;
	}
	*pp = p + 1 + w;
	return 0;
}

/* A d field: any integer, as the uint64_t to add (modulo 2^64). */
static inline int fp_delta(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	uint8_t b;
	unsigned w;
	uint64_t x;

	if (p >= end)
		return -1;
	b = *p;
	if (b >= 0xe0) { /* negative fixint */
		*v = (uint64_t)(int64_t)(int8_t)b;
		*pp = p + 1;
		return 0;
	}
	if (b < 0xd0 || b > 0xd3)
		return fp_uint(pp, end, v);
	w = 1u << (b - 0xd0);
	if ((size_t)(end - p) < 1 + w)
		return -1;
	x = be(p + 1, w);
	if (w < 8 && (x >> (8 * w - 1)) & 1)
		x |= ~(uint64_t)0 << (8 * w); /* sign-extend */
	*v = x;
	*pp = p + 1 + w;
	return 0;
}

/* Decodes the record at r->buf + r->pos when it is an ALLOC
 * [4, dseq, dt, addr, size, slack, stack_id (, weight)] or a FREE
 * [5, dseq, dt, addr, alloc_seq] of the usual shape with both chains based:
 * a fixarray of 7 or 8 (ALLOC) or 5 (FREE) elements, integer fields in
 * integer encodings, a float weight that is finite and > 0.  1 when r->rec
 * holds it (r->pos and the chains advanced), 0 when the general path must
 * judge it (nothing changed).  The result is what the general path gives. */
static int decode_fast(struct mt_shard_reader *r)
{
	const uint8_t *p = r->buf + r->pos, *end = r->buf + r->len;
	struct mt_shard_record *rec = &r->rec;
	uint64_t dseq, dt, addr, v4, v5, v6;
	uint8_t h;

	if (!r->seq_ok || !r->time_ok || end - p < 6)
		return 0;
	h = p[0];
	if (p[1] == MT_REC_FREE && h == 0x95) {
		p += 2;
		if (fp_delta(&p, end, &dseq) || fp_delta(&p, end, &dt) ||
		    fp_uint(&p, end, &addr) || fp_uint(&p, end, &v4))
			return 0;
		rec->kind = MT_REC_FREE;
		rec->u.free.seq = r->seq_acc += dseq;
		rec->u.free.time_ns = r->time_acc += dt;
		rec->u.free.addr = unscale(r, addr);
		rec->u.free.alloc_seq = v4;
	} else if (p[1] == MT_REC_ALLOC && (h == 0x97 || h == 0x98)) {
		double w = 0;
		p += 2;
		if (fp_delta(&p, end, &dseq) || fp_delta(&p, end, &dt) ||
		    fp_uint(&p, end, &addr) || fp_uint(&p, end, &v4) ||
		    fp_uint(&p, end, &v5) || fp_uint(&p, end, &v6))
			return 0;
		if (h == 0x98) {
			if (p < end && *p == 0xcb && end - p >= 9) {
				uint64_t bits = be(p + 1, 8);
				memcpy(&w, &bits, 8);
				p += 9;
			} else if (p < end && *p == 0xca && end - p >= 5) {
				uint32_t bits = (uint32_t)be(p + 1, 4);
				float f;
				memcpy(&f, &bits, 4);
				w = f;
				p += 5;
			} else {
				return 0; /* nil, integers, bad types */
			}
			if (!isfinite(w) || !(w > 0))
				return 0; /* malformed: let the general path count it */
		}
		rec->kind = MT_REC_ALLOC;
		rec->u.alloc.seq = r->seq_acc += dseq;
		rec->u.alloc.time_ns = r->time_acc += dt;
		rec->u.alloc.addr = unscale(r, addr);
		rec->u.alloc.size = v4;
		rec->u.alloc.slack = v5;
		rec->u.alloc.stack_id = v6;
		rec->u.alloc.weight = w;
		rec->u.alloc.has_weight = h == 0x98;
	} else {
		return 0;
	}
	rec->chunk = r->chunk_seq;
	rec->chunk_offset = r->chunk_off;
	r->pos = (size_t)(p - r->buf);
	return 1;
}

/* Takes the record at r->pos.  1 when r->rec holds one for the caller, 0
 * when it was skipped or consumed, or -errno. */
static int decode_next(struct mt_shard_reader *r)
{
	const uint8_t *p = r->buf + r->pos;
	struct mp_extent ext;
	msgpack_object obj;
	size_t off = 0;
	uint64_t kind;
	int rc;

	if (decode_fast(r))
		return 1;
	if (mp_scan(p, r->len - r->pos, &ext)) {
		/* Undecodable: where the next record begins is unknown, so
		 * the rest of the chunk goes. */
		r->stats.records_malformed++;
		r->pos = r->len;
		return 0;
	}
	r->pos += ext.bytes;
	if (mp_kind(p, &kind)) {
		r->stats.records_malformed++;
		return 0;
	}
	if (!known_kind(kind)) {
		r->stats.records_unknown++;
		return 0;
	}
	if (ext.too_deep || ext.objects > MT_SHARD_MAX_OBJECTS)
		goto malformed_unread;
	msgpack_zone_clear(&r->zone);
	switch (msgpack_unpack((const char *)p, ext.bytes, &off, &r->zone, &obj)) {
	case MSGPACK_UNPACK_SUCCESS:
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		return fail(r, -ENOMEM, "out of memory decoding a record");
	default:
		goto malformed_unread; /* cannot happen after mp_scan */
	}
	/* Strings are copied NUL-terminated: a string's copy is no longer
	 * than its encoding, so the record's size bounds them all. */
	if (r->scratch_cap < ext.bytes + 1) {
		size_t cap = ext.bytes + 1 > 4096 ? ext.bytes + 1 : 4096;
		char *s = realloc(r->scratch, cap);
		if (!s)
			return fail(r, -ENOMEM, "out of memory decoding a record");
		r->scratch = s;
		r->scratch_cap = cap;
	}
	r->scratch_used = 0;
	rc = decode_object(r, kind, &obj);
	if (rc != BAD)
		return rc;
	/* decode_object() applied or broke the chains itself. */
	r->stats.records_malformed++;
	return 0;
malformed_unread:
	/* The record's d fields were not read: its chains are lost for the
	 * rest of the chunk. */
	if (kind == MT_REC_ALLOC || kind == MT_REC_FREE || kind == MT_REC_CHUNK)
		r->seq_ok = false;
	if (has_time_delta(kind) || kind == MT_REC_CHUNK)
		r->time_ok = false;
	r->stats.records_malformed++;
	return 0;
}

/* ---- the interface ------------------------------------------------- */

int mt_shard_reader_new(struct mt_shard_reader **out)
{
	struct mt_shard_reader *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->fd = -1;
	if (!msgpack_zone_init(&r->zone, ZONE_CHUNK))
		goto out_free;
	r->frames = malloc(MT_SHARD_MAX_FRAMES * sizeof(*r->frames));
	r->argv = malloc(MT_SHARD_MAX_ARGV * sizeof(*r->argv));
	r->classes = malloc(MT_SHARD_MAX_CLASSES * sizeof(*r->classes));
	r->scan = malloc(SCAN_BLOCK + MT_CHUNK_HEADER);
	if (!r->frames || !r->argv || !r->classes || !r->scan)
		goto out_arrays;
	*out = r;
	return 0;
out_arrays:
	free(r->frames);
	free(r->argv);
	free(r->classes);
	free(r->scan);
	msgpack_zone_destroy(&r->zone);
out_free:
	free(r);
	return -ENOMEM;
}

void mt_shard_close(struct mt_shard_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->len = r->pos = 0;
}

static void reset(struct mt_shard_reader *r)
{
	mt_shard_close(r);
	free(r->header_mem);
	r->header_mem = NULL;
	memset(&r->header, 0, sizeof(r->header));
	memset(&r->stats, 0, sizeof(r->stats));
	r->addr_base = 0;
	r->err = 0;
	r->size = r->off = 0;
	r->next_seq = 0;
	r->seq_ok = r->time_ok = false;
	r->msg[0] = '\0';
}

void mt_shard_reader_free(struct mt_shard_reader *r)
{
	if (!r)
		return;
	reset(r);
	msgpack_zone_destroy(&r->zone);
	free(r->buf);
	free(r->scratch);
	free(r->frames);
	free(r->argv);
	free(r->classes);
	free(r->scan);
	free(r);
}

int mt_shard_open(struct mt_shard_reader *r, const char *path)
{
	uint8_t h[MT_SHARD_FILE_HEADER];
	struct stat st;
	int rc;

	reset(r);
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return fail(r, -errno, "%s", strerror(errno));
	if (fstat(r->fd, &st) < 0) {
		rc = fail(r, -errno, "%s", strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = fail(r, -EINVAL, "not a regular file");
		goto out_close;
	}
	r->size = r->stats.file_bytes = (uint64_t)st.st_size;
	if (r->size == 0) {
		rc = fail(r, -ENODATA, "empty file (no shard header)");
		goto out_close;
	}
	if (r->size < MT_SHARD_FILE_HEADER) {
		/* A shard cut inside its header, or not a shard at all. */
		if ((rc = read_at(r, h, (size_t)r->size, 0)) < 0)
			goto out_close;
		if (memcmp(h, MT_SHARD_MAGIC, r->size < 8 ? (size_t)r->size : 8))
			rc = fail(r, -EINVAL, "not a shard file (bad magic)");
		else
			rc = fail(r, -ENODATA, "file ends inside the shard header "
				  "(%" PRIu64 " of %d bytes)", r->size,
				  MT_SHARD_FILE_HEADER);
		goto out_close;
	}
	if ((rc = read_at(r, h, sizeof(h), 0)) < 0)
		goto out_close;
	if (memcmp(h, MT_SHARD_MAGIC, 8)) {
		rc = fail(r, -EINVAL, "not a shard file (bad magic)");
		goto out_close;
	}
	r->stats.major = le16(h + 8);
	r->stats.minor = le16(h + 10);
	r->stats.flags = le32(h + 12);
	if (r->stats.major > MT_SHARD_MAJOR) {
		rc = fail(r, -EPROTONOSUPPORT,
			  "shard format %u.%u is newer than this reader (max %d.x)",
			  r->stats.major, r->stats.minor, MT_SHARD_MAJOR);
		goto out_close;
	}
	r->off = MT_SHARD_FILE_HEADER;
	return 0;
out_close:
	mt_shard_close(r);
	return rc;
}

int mt_shard_next(struct mt_shard_reader *r, const struct mt_shard_record **rec)
{
	int rc;

	*rec = NULL;
	if (r->err)
		return r->err;
	if (r->fd < 0)
		return fail(r, -EBADF, "no shard open");
	for (;;) {
		while (r->pos < r->len) {
			rc = decode_next(r);
			if (rc < 0)
				goto out_err;
			if (rc > 0) {
				r->stats.records++;
				*rec = &r->rec;
				return 0;
			}
		}
		rc = load_chunk(r);
		if (rc < 0)
			goto out_err;
		if (rc == 0)
			return 0;
	}
out_err:
	r->err = rc;
	r->len = r->pos = 0;
	return rc;
}

const char *mt_shard_error(const struct mt_shard_reader *r)
{
	return r->msg;
}

const struct mt_shard_header *mt_shard_header(const struct mt_shard_reader *r)
{
	return r->stats.header_seen ? &r->header : NULL;
}

const struct mt_shard_stats *mt_shard_stats(const struct mt_shard_reader *r)
{
	return &r->stats;
}

int mt_shard_describe(const struct mt_shard_reader *r, char *buf, size_t size)
{
	const struct mt_shard_stats *s = &r->stats;
	size_t n = 0;
	char none;
	int k;

#define ADD(...)                                                          \
	do {                                                              \
		k = snprintf(buf + (n < size ? n : size),                 \
			     n < size ? size - n : 0, "%s", n ? "; " : ""); \
		n += (size_t)k;                                           \
		k = snprintf(buf + (n < size ? n : size),                 \
			     n < size ? size - n : 0, __VA_ARGS__);       \
		n += (size_t)k;                                           \
	} while (0)

	if (!size)
		buf = &none; /* snprintf(buf, 0) writes nothing, but no NULL + 0 */
	buf[0] = '\0';
	if (s->chunks_corrupt)
		ADD("%" PRIu64 " corrupt region%s skipped (%" PRIu64
		    " bytes, the first at offset %" PRIu64 ")",
		    s->chunks_corrupt, s->chunks_corrupt == 1 ? "" : "s",
		    s->bytes_skipped, s->first_corrupt);
	if (s->chunks_missing)
		ADD("%" PRIu64 " chunk%s missing", s->chunks_missing,
		    s->chunks_missing == 1 ? "" : "s");
	if (s->seq_backwards)
		ADD("%" PRIu64 " chunk%s out of order", s->seq_backwards,
		    s->seq_backwards == 1 ? "" : "s");
	if (s->torn_tail)
		ADD("torn tail: the file ends inside the chunk at offset %" PRIu64
		    " (%" PRIu64 " bytes lost)", s->torn_offset, s->torn_bytes);
	if (s->records_malformed)
		ADD("%" PRIu64 " malformed record%s skipped", s->records_malformed,
		    s->records_malformed == 1 ? "" : "s");
	if (s->records_unknown)
		ADD("%" PRIu64 " record%s of unknown kind skipped",
		    s->records_unknown, s->records_unknown == 1 ? "" : "s");
	if (s->chunks_read && !s->header_seen)
		ADD("no header record (addresses taken relative to 0)");
#undef ADD
	return (int)n;
}

int mt_shard_alloc_weight(const struct mt_shard_header *h,
			  const struct mt_shard_alloc *a, double *weight)
{
	if (a->has_weight) {
		*weight = a->weight;
		return 0;
	}
	if (!h)
		return -ENODATA;
	switch (h->policy) {
	case MT_SHARD_POLICY_ALL:
		*weight = 1;
		return 0;
	case MT_SHARD_POLICY_POISSON:
		if (!(h->present & MT_SHARD_H_MEAN) || !h->mean)
			return -ENODATA;
		if (!a->size)
			return -EDOM;
		/* 1/(1-exp(-x)), with expm1 for small x */
		*weight = -1.0 / expm1(-(double)a->size / (double)h->mean);
		return 0;
	default:
		return -ENODATA;
	}
}

const char *mt_shard_kind_name(int kind)
{
	static const char *names[] = {
		[MT_REC_HEADER] = "header",
		[MT_REC_MODULE] = "module",
		[MT_REC_STACK] = "stack",
		[MT_REC_ALLOC] = "alloc",
		[MT_REC_FREE] = "free",
		[MT_REC_TOTALS] = "totals",
		[MT_REC_TIMELINE] = "timeline",
		[MT_REC_MARK] = "mark",
		[MT_REC_THREAD_NAME] = "thread-name",
		[MT_REC_DROPPED] = "dropped",
		[MT_REC_THREAD_EXIT] = "thread-exit",
		[MT_REC_CHUNK] = "chunk",
		[MT_REC_END] = "end",
		[MT_REC_CLASSES] = "classes",
	};

	if (kind < 0 || (size_t)kind >= sizeof(names) / sizeof(names[0]))
		return NULL;
	return names[kind];
}
