"""shards.py: what mtalloc's shard files spend per record (make bench).

Walks the chunks of every shard in a folder and counts, per record kind,
the records and their encoded bytes (msgpack), so that the cost of a
sampled allocation on disk can be given in bytes per record.  The layout
is the one of src/shard/format.h (the single source of truth; keep the
constants below in step with it):

    file    16 bytes: "MTSHARD\\0", u16 major, u16 minor, u32 flags
    chunk   24-byte header (u32 magic "MTCK", u32 length, u32 seq,
            u32 crc32c, u32 0, u32 header crc), then `length` bytes of
            msgpack records, each an array [kind, ...]

The msgpack decoding here only walks values (it needs the kind and each
record's length), in plain Python, with no dependency.  Checksums are not
verified: this is a byte count, not a reader; a malformed shard raises
ValueError.

    python3 shards.py DIR       prints the table for the shards in DIR
"""

import os
import struct
import sys

FILE_MAGIC = b"MTSHARD\0"
FILE_HEADER = 16
CHUNK_MAGIC = 0x4B43544D
CHUNK_HEADER = 24

# enum mt_rec_kind in src/shard/format.h
KINDS = {1: "header", 2: "module", 3: "stack", 4: "alloc", 5: "free",
         6: "totals", 7: "timeline", 8: "mark", 9: "thread_name",
         10: "dropped", 11: "thread_exit", 12: "chunk", 13: "end",
         14: "classes"}


def _skip(b, i):
    """Index just past the msgpack value that starts at b[i]."""
    t = b[i]
    if t <= 0x7F or t >= 0xE0 or t in (0xC0, 0xC2, 0xC3):
        return i + 1
    if 0x80 <= t <= 0x8F:
        return _skip_n(b, i + 1, 2 * (t & 0x0F))
    if 0x90 <= t <= 0x9F:
        return _skip_n(b, i + 1, t & 0x0F)
    if 0xA0 <= t <= 0xBF:
        return i + 1 + (t & 0x1F)
    fixed = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4,
             0xD3: 8, 0xCA: 4, 0xCB: 8, 0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9,
             0xD8: 17}
    if t in fixed:
        return i + 1 + fixed[t]
    if t in (0xC4, 0xD9):                       # bin 8, str 8
        return i + 2 + b[i + 1]
    if t in (0xC5, 0xDA):                       # bin 16, str 16
        return i + 3 + struct.unpack_from(">H", b, i + 1)[0]
    if t in (0xC6, 0xDB):                       # bin 32, str 32
        return i + 5 + struct.unpack_from(">I", b, i + 1)[0]
    if t == 0xC7:                               # ext 8
        return i + 3 + b[i + 1]
    if t == 0xC8:
        return i + 4 + struct.unpack_from(">H", b, i + 1)[0]
    if t == 0xC9:
        return i + 6 + struct.unpack_from(">I", b, i + 1)[0]
    if t == 0xDC:
        return _skip_n(b, i + 3, struct.unpack_from(">H", b, i + 1)[0])
    if t == 0xDD:
        return _skip_n(b, i + 5, struct.unpack_from(">I", b, i + 1)[0])
    if t == 0xDE:
        return _skip_n(b, i + 3, 2 * struct.unpack_from(">H", b, i + 1)[0])
    if t == 0xDF:
        return _skip_n(b, i + 5, 2 * struct.unpack_from(">I", b, i + 1)[0])
    raise ValueError(f"msgpack: bad type byte 0x{t:02x}")


def _skip_n(b, i, n):
    for _ in range(n):
        i = _skip(b, i)
    return i


def _record_kind(b, i):
    """Kind of the record (an array [kind, ...]) at b[i], or None."""
    t = b[i]
    if 0x90 <= t <= 0x9F:
        j = i + 1
    elif t == 0xDC:
        j = i + 3
    elif t == 0xDD:
        j = i + 5
    else:
        return None
    k = b[j]
    if k <= 0x7F:
        return k
    if k == 0xCC:
        return b[j + 1]
    return None


def tally(paths):
    """{kind name: [records, bytes]} over the shards, plus the totals of
    file and chunk headers under 'headers' (bytes) and 'files'."""
    out = {"headers": [0, 0], "files": [0, 0]}
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        if data[:8] != FILE_MAGIC:
            raise ValueError(f"{path}: not a shard")
        out["files"][0] += 1
        out["files"][1] += len(data)
        out["headers"][1] += FILE_HEADER
        pos = FILE_HEADER
        while pos + CHUNK_HEADER <= len(data):
            magic, length = struct.unpack_from("<II", data, pos)
            if magic != CHUNK_MAGIC:
                raise ValueError(f"{path}: bad chunk magic at {pos}")
            out["headers"][0] += 1
            out["headers"][1] += CHUNK_HEADER
            i, end = pos + CHUNK_HEADER, pos + CHUNK_HEADER + length
            if end > len(data):
                break  # a torn last chunk: not counted
            while i < end:
                k = _record_kind(data, i)
                j = _skip(data, i)
                name = KINDS.get(k, f"kind{k}")
                slot = out.setdefault(name, [0, 0])
                slot[0] += 1
                slot[1] += j - i
                i = j
            pos = end
    return out


def shard_paths(folder):
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if n.endswith(".mts"))


def main():
    if len(sys.argv) != 2:
        print("usage: shards.py DIR", file=sys.stderr)
        return 2
    t = tally(shard_paths(sys.argv[1]))
    print(f"{'kind':<12} {'records':>9} {'bytes':>10} {'bytes/rec':>9}")
    for k, (n, b) in sorted(t.items(), key=lambda kv: -kv[1][1]):
        print(f"{k:<12} {n:>9} {b:>10} {b / n if n else 0:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
