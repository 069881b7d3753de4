"""inputs.py: the generated inputs of make bench's real programs.

Each is made at run time in a temporary folder (never committed), from a
fixed seed, so that every configuration and every run sees the same input:

  c_file(path, nfunc)          a large C file for `gcc -O2`: NFUNC
                               functions over a few structs, with loops,
                               switches, arithmetic and calls that -O2
                               inlines, unrolls and vectorises
  sqlite_script(path, rows)    a SQL script for `sqlite3`: builds two
                               tables of ROWS and ROWS/4 rows, indexes them,
                               joins, groups, sorts, updates and deletes
  git_repo(folder, commits)    a git repository of COMMITS commits over
                               120 files of C-like text, made in one go by
                               `git fast-import` (seconds), for `git log -p`
"""

import os
import random
import subprocess

_WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa "
          "lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi "
          "omega").split()


def c_file(path, nfunc):
    rnd = random.Random(7)
    out = ["#include <stddef.h>", "#include <string.h>", ""]
    for s in range(8):
        out.append(f"struct s{s} {{ int a, b; double x[{4 + s}]; "
                   f"long n; char name[{16 + 4 * s}]; struct s{s} *next; }};")
    out.append("")
    for f in range(nfunc):
        s = rnd.randrange(8)
        k = rnd.randrange(3, 9)
        body = [f"static double f{f}(struct s{s} *p, const double *v, int n)",
                "{", "\tdouble acc = 0;", "\tint i, j;"]
        body.append("\tfor (i = 0; i < n; i++) {")
        body.append(f"\t\tacc += v[i] * {rnd.uniform(0.5, 2):.3f} + "
                    f"p->x[i % {4 + s}];")
        body.append(f"\t\tswitch ((i + p->a) % {k}) {{")
        for c in range(k):
            op = rnd.choice(["+=", "-=", "*="])
            body.append(f"\t\tcase {c}: acc {op} {rnd.randint(1, 9)} + "
                        f"p->b * {c}; p->n += {c}; break;")
        body.append("\t\t}")
        body.append("\t}")
        body.append(f"\tfor (j = 0; j < {rnd.randint(4, 64)}; j++)")
        body.append(f"\t\tacc = acc * 0.5 + (double)(j ^ p->a) / "
                    f"{rnd.randint(2, 99)};")
        if f > 0:
            callee = rnd.randrange(f)
            body.append("\tif (p->next && n > 1)")
            body.append(f"\t\tacc += f{callee}((void *)p->next, v + 1, "
                        f"n - 1);")
        w = rnd.choice(_WORDS)
        body.append(f"\tmemcpy(p->name, \"{w}\", {len(w)});")
        body.append("\treturn acc;")
        body.append("}")
        out.extend(body)
        out.append("")
    out.append("double entry(void *p, const double *v, int n)")
    out.append("{")
    out.append("\tdouble acc = 0;")
    for f in range(0, nfunc, max(1, nfunc // 64)):
        out.append(f"\tacc += f{f}(p, v, n);")
    out.append("\treturn acc;")
    out.append("}")
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")


def sqlite_script(path, rows):
    rnd = random.Random(11)
    w = _WORDS
    lines = ["PRAGMA journal_mode=OFF;", "PRAGMA synchronous=OFF;",
             "PRAGMA cache_size=-16000;",
             "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, "
             "cat INTEGER, price REAL, note TEXT);",
             "CREATE TABLE sale(id INTEGER PRIMARY KEY, item INTEGER, "
             "qty INTEGER, who TEXT);",
             "BEGIN;"]
    for i in range(rows):
        name = " ".join(rnd.choice(w) for _ in range(rnd.randint(1, 4)))
        note = " ".join(rnd.choice(w) for _ in range(rnd.randint(0, 30)))
        lines.append(f"INSERT INTO item VALUES({i}, '{name}', "
                     f"{rnd.randrange(100)}, {rnd.uniform(1, 500):.2f}, "
                     f"'{note}');")
    for i in range(rows // 4):
        lines.append(f"INSERT INTO sale VALUES({i}, {rnd.randrange(rows)}, "
                     f"{rnd.randint(1, 20)}, '{rnd.choice(w)}');")
    lines += [
        "COMMIT;",
        "CREATE INDEX item_cat ON item(cat, price);",
        "CREATE INDEX item_name ON item(name);",
        "CREATE INDEX sale_item ON sale(item);",
        "SELECT cat, count(*), avg(price), max(length(note)) FROM item "
        "GROUP BY cat ORDER BY 3 DESC LIMIT 5;",
        "SELECT i.name, sum(s.qty) AS q FROM sale s JOIN item i "
        "ON i.id = s.item GROUP BY i.name ORDER BY q DESC LIMIT 5;",
        "SELECT who, group_concat(DISTINCT i.cat) FROM sale s JOIN item i "
        "ON i.id = s.item GROUP BY who ORDER BY who LIMIT 3;",
        "SELECT count(*) FROM item WHERE note LIKE '%omega%beta%';",
        "UPDATE item SET note = note || ' ' || name, price = price * 1.1 "
        "WHERE cat % 3 = 0;",
        "DELETE FROM item WHERE cat % 7 = 0;",
        "SELECT count(*), sum(length(note)) FROM item;",
        "SELECT name FROM item ORDER BY note, price DESC LIMIT 1 OFFSET 100;",
    ]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def git_repo(folder, commits, env):
    """Makes the repository with git fast-import; env is the environment
    to run git in (no preload: the repository is input, not workload)."""
    rnd = random.Random(13)
    os.makedirs(folder, exist_ok=True)
    subprocess.run(["git", "init", "-q", folder], env=env, check=True)
    files = {f"src/m{d}/f{k}.c": [f"/* file {d}.{k} */"] +
             [_code_line(rnd) for _ in range(rnd.randint(50, 400))]
             for d in range(6) for k in range(20)}
    names = sorted(files)
    stream = []
    t = 1700000000
    for c in range(commits):
        touched = rnd.sample(names, rnd.randint(1, 6)) if c else names
        for n in touched:
            lines = files[n]
            for _ in range(rnd.randint(1, 25)):
                op = rnd.random()
                i = rnd.randrange(len(lines))
                if op < 0.4:
                    lines.insert(i, _code_line(rnd))
                elif op < 0.7 and len(lines) > 10:
                    del lines[i]
                else:
                    lines[i] = _code_line(rnd)
        stream.append(f"commit refs/heads/main\nmark :{c + 1}\n"
                      f"committer Bench <bench@example.org> {t + 60 * c} "
                      f"+0000\n")
        msg = f"change {c}: {' '.join(rnd.choice(_WORDS) for _ in range(6))}"
        stream.append(f"data {len(msg)}\n{msg}\n")
        if c:
            stream.append(f"from :{c}\n")
        for n in touched:
            data = "\n".join(files[n]) + "\n"
            stream.append(f"M 100644 inline {n}\n"
                          f"data {len(data.encode())}\n{data}\n")
    subprocess.run(["git", "-C", folder, "fast-import", "--quiet"],
                   input="".join(stream).encode(), env=env, check=True)
    subprocess.run(["git", "-C", folder, "checkout", "-q", "main"],
                   env=env, check=True)


def _code_line(rnd):
    w = rnd.choice(_WORDS)
    return rnd.choice([
        f"\tint {w}_{rnd.randrange(99)} = {rnd.randrange(1000)};",
        f"\tif ({w} > {rnd.randrange(50)}) return {w} * 2;",
        f"\t{w}->count += {rnd.choice(_WORDS)}(ctx, {rnd.randrange(8)});",
        f"static int {w}_{rnd.randrange(999)}(struct ctx *ctx);",
        f"\t/* {' '.join(rnd.choice(_WORDS) for _ in range(5))} */",
        "}", "{", ""])
