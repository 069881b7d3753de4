#!/bin/sh
# Regenerates the shard reader's seed corpus (tests/fuzz/corpus/shard) from
# real shards: tests/track/trace run preloaded in a few modes with small
# buffers, each shard kept whole (raw seeds) and as its chunk payloads in
# the harness's framed form ('F' inputs, tests/fuzz/fuzzutil.h).  Run it
# from a built tree:  sh tests/fuzz/mkseeds.sh [BUILDDIR]
# The corpus is committed; rerun this only when the format changes.
set -eu
b=$(cd "${1:-.}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$src/tests/fuzz/corpus/shard
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
lib=$b/.libs/libmtalloc.so
run() { # name options mode [arg]
	mkdir -p "$tmp/$1"
	n=$1 o=$2; shift 2
	MTALLOC="dir:$tmp/$n,$o" LD_PRELOAD=$lib "$b/tests/track/trace" "$@" >/dev/null
}
run all "sample:all,buffer:16k,seed:1" all
run tiered "sample:tiered,seed:3,buffer:16k" sites 20000
run poisson "seed:7,timeline:1" sites 50000
run fork "sample:all" fork
rm -rf "$out" && mkdir -p "$out"
i=0
for f in $(for d in "$tmp"/*/; do ls -S "$d"*.mts | tail -2; done); do
	size=$(wc -c <"$f")
	[ "$size" -le 65536 ] || continue
	i=$((i + 1))
	cp "$f" "$out/real-$i.mts"
	chmod 644 "$out/real-$i.mts"
	python3 - "$f" "$out/framed-$i" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
out, off = [b'F', b'\0'], 16
while off + 24 <= len(d):
    magic, length = struct.unpack_from('<II', d, off)
    if magic != 0x4b43544d:
        break
    p = d[off + 24:off + 24 + length]
    out += [struct.pack('<H', len(p) & 0xffff), p]
    off += 24 + length
open(sys.argv[2], 'wb').write(b''.join(out))
PY
done
echo "$i shards in $out"
