"""alloc-heavy.py: an allocation-heavy Python program for make bench.

    python3 alloc-heavy.py [ROUNDS [RECORDS]]

What an ordinary Python program does with its heap, in proportions that
make the C allocator matter: each round builds RECORDS records (20,000 by
default; dicts of strings and numbers, as from parsed JSON or CSV),
indexes them in dicts of lists, sorts them, renders them to text (lines
of up to 2 KiB, pages of a few KiB, one string of megabytes: CPython
allocates those with malloc, not with its own small-object allocator),
splits the text again and drops everything.  CPython's pymalloc serves
objects of up to 512 bytes from 256 KiB arenas of its own; everything
larger (big strings, list and dict storage past a few dozen entries, the
arenas themselves) comes from malloc, realloc and free.

Deterministic (fixed seed); prints one line:

    rounds=<count> records=<per round> checksum=<hex>

Run it with Debian's /usr/bin/python3, never through a pyenv shim: a shim
is a shell script that would run under the preloaded allocator too.
"""

import random
import sys


def make_words(rnd, n):
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    return ["".join(rnd.choice(letters) for _ in range(rnd.randint(3, 14)))
            for _ in range(n)]


def one_round(rnd, words, nrec):
    nw = len(words)
    picks = [rnd.randrange(nw) for _ in range(4 * nrec)]
    records = []
    for i in range(nrec):
        a, b, c, d = picks[4 * i:4 * i + 4]
        records.append({
            "id": i,
            "name": words[a] + " " + words[b],
            "city": words[c],
            "tags": [words[d], words[a], words[c]][: 1 + i % 3],
            "score": (a * 31 + b) % 1000 / 10.0,
            "note": words[b] * (1 + d % 120),  # 3 B to 1.7 KiB
        })
    # Index: a dict of lists, grown by appends.
    by_city = {}
    for r in records:
        by_city.setdefault(r["city"], []).append(r)
    by_tag = {}
    for r in records:
        for t in r["tags"]:
            by_tag.setdefault(t, []).append(r["id"])
    # Sort and render: one string per city, a few KiB.
    pages = []
    for city, rs in sorted(by_city.items()):
        rs.sort(key=lambda r: (-r["score"], r["name"]))
        pages.append("\n".join(
            f"{r['id']:6d} {r['name']:<30} {r['score']:6.1f} {r['note']}"
            for r in rs))
    text = "\n\n".join(pages)
    # Parse the text back: lists of fields, a word count.
    counts = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 2:
            counts[fields[1]] = counts.get(fields[1], 0) + 1
    # Some growing strings and byte buffers.
    buf = bytearray()
    for p in pages[:200]:
        buf += p.encode()
    return (len(text) + len(counts) + len(by_tag) + len(buf)) & 0xffffffff


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    nrec = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    rnd = random.Random(1)
    words = make_words(rnd, 5000)
    check = 0
    for _ in range(rounds):
        check = (check * 1000003 + one_round(rnd, words, nrec)) & 0xffffffff
    print(f"rounds={rounds} records={nrec} checksum={check:08x}")


if __name__ == "__main__":
    main()
