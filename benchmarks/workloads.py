"""workloads.py: the workloads of make bench's comparison suite.

Each workload knows its command (full size and a smoke size), how to read
its throughput, and, for the C/C++ microbenchmarks, a small single-thread
form for instruction counts under callgrind ((I(2N) - I(N)) / ops).

Microbenchmarks (built from benchmarks/*.c, *.cc; each file's header says
what it models), each run for 0.2 s:
  fastpath    malloc(64)+free pairs, 1 thread          ns per pair
  churn       random replacement, 2 threads             Mops/s
  prodcons    allocate on one thread, free on another   M objects/s
  larson      server-like: threads hand blocks over     Mops/s
  growth      strings and vectors growing by realloc    M reallocs/s
  threads     short-lived threads allocating a little   k threads/s
  containers  C++: map, unordered_map, string, list, shared_ptr
                                                        M operations/s
Real programs (nobody here wrote them; inputs generated at run time):
  python3     benchmarks/alloc-heavy.py under Debian's /usr/bin/python3
  gcc         cc1 (gcc -O2's compiler proper) on a generated C file
  sqlite3     the sqlite3 shell on a generated SQL script, file database
  git         git log -p on a generated repository
"""

import os
import shlex
import shutil
import subprocess

import inputs


class Workload:
    def __init__(self, name, kind, what, metric=None, unit="",
                 args=None, smoke_args=None, cg=None, setup=None,
                 throughput=None, scale_threads=None):
        self.name = name
        self.kind = kind          # "micro" or "real"
        self.what = what
        self.metric = metric      # output key holding the throughput
        self.unit = unit          # its unit, for the tables
        self._args = args         # (ctx, run_dir) -> (cmd, stdin, keep)
        self._smoke = smoke_args or args
        self.cg = cg              # (N) -> (cmd, ops key or ops count)
        self._setup = setup       # (ctx) -> None or a reason to skip
        self._throughput = throughput  # (ctx, result) -> value, for real
        self.scale_threads = scale_threads  # (ctx, t) -> cmd, or None

    def setup(self, ctx):
        return self._setup(ctx) if self._setup else None

    def command(self, ctx, run_dir):
        f = self._smoke if ctx.smoke else self._args
        return f(ctx, run_dir)

    def throughput(self, ctx, result, out_fields):
        """Throughput of one run, in self.unit (higher is better)."""
        if self._throughput:
            return self._throughput(ctx, result)
        v = out_fields.get(self.metric)
        if v is None:
            return None
        v = float(v)
        if self.metric == "ns_per_pair":
            return 1e3 / v if v > 0 else None   # M pairs/s
        return v


class Context:
    """Paths and choices that the workloads share."""

    def __init__(self, bindir, srcdir, work, smoke):
        self.bindir = bindir
        self.srcdir = srcdir      # benchmarks/ in the source tree
        self.work = work          # temp folder for generated inputs
        self.smoke = smoke
        self.python = None
        self.cc1 = None           # [cc1, args...] with OUT for the output
        self.git_commits = 60 if smoke else 1200
        self.sql_rows = 2000 if smoke else 30000
        self.c_funcs = 10 if smoke else 120
        self.py_rounds = 1 if smoke else 3
        self.py_records = 2000 if smoke else 20000

    def prog(self, name):
        return os.path.join(self.bindir, name)

    def plain_env(self):
        """An environment without any allocator settings, for making the
        inputs."""
        from configs import SCRUB
        env = {k: v for k, v in os.environ.items() if k not in SCRUB}
        env["HOME"] = self.work
        env["GIT_CONFIG_NOSYSTEM"] = "1"
        return env


def _micro(prog, *a):
    return lambda ctx, run_dir: ([ctx.prog(prog)] + [str(x) for x in a],
                                 None, True)


# ---- real programs ----------------------------------------------------------

def _setup_python(ctx):
    py = "/usr/bin/python3"
    if not os.access(py, os.X_OK):
        return "/usr/bin/python3 missing (Debian: python3)"
    real = os.path.realpath(py)
    if "pyenv" in real or "shims" in real:
        return f"/usr/bin/python3 resolves to {real}, a shim"
    ctx.python = real
    return None


def _python_args(ctx, run_dir):
    return ([ctx.python, os.path.join(ctx.srcdir, "alloc-heavy.py"),
             str(ctx.py_rounds), str(ctx.py_records)], None, True)


def _setup_gcc(ctx):
    gcc = shutil.which("gcc")
    if not gcc:
        return "gcc missing (Debian: gcc)"
    src = os.path.join(ctx.work, "big.c")
    inputs.c_file(src, ctx.c_funcs)
    # The compiler proper, as gcc -O2 would start it: every configuration
    # (heaptrack included, which follows one process) then measures the
    # process that does the work.
    p = subprocess.run([gcc, "-###", "-O2", "-S", src, "-o", "OUT.s"],
                       capture_output=True, text=True,
                       env=ctx.plain_env())
    for line in p.stderr.splitlines():
        argv = shlex.split(line)
        if argv and os.path.basename(argv[0]) == "cc1":
            ctx.cc1 = argv
            break
    if not ctx.cc1:
        return "cannot find cc1 in gcc -### output"
    with open(src) as f:
        ctx.c_lines = sum(1 for _ in f)
    return None


def _gcc_args(ctx, run_dir):
    out = os.path.join(run_dir, "big.s")
    return ([out if a == "OUT.s" else a for a in ctx.cc1], None, False)


def _setup_sqlite(ctx):
    if not shutil.which("sqlite3"):
        return "sqlite3 missing (Debian: sqlite3)"
    inputs.sqlite_script(os.path.join(ctx.work, "work.sql"), ctx.sql_rows)
    ctx.sqlite = shutil.which("sqlite3")
    return None


def _sqlite_args(ctx, run_dir):
    return ([ctx.sqlite, os.path.join(run_dir, "bench.db")],
            os.path.join(ctx.work, "work.sql"), True)


def _setup_git(ctx):
    if not shutil.which("git"):
        return "git missing (Debian: git)"
    ctx.git = shutil.which("git")
    inputs.git_repo(os.path.join(ctx.work, "repo"), ctx.git_commits,
                    ctx.plain_env())
    return None


def _git_args(ctx, run_dir):
    return ([ctx.git, "-C", os.path.join(ctx.work, "repo"), "log", "-p",
             "--no-color"], None, False)


def _per_second(count_of):
    return lambda ctx, r: count_of(ctx) / r["wall"] if r["wall"] else None


# Microbenchmarks run for a fixed time (-T) rather than a fixed amount of
# work: a run costs the same under every configuration, so that a profiler
# that is 100x slower does not make the suite 100x longer, and throughput
# compares like with like.  The counts after -n are caps that -T reaches
# first.
DUR = "0.2"


def all_workloads():
    big = 1000000000
    return [
        Workload("fastpath", "micro", "malloc(64)+free pairs, 1 thread",
                 metric="ns_per_pair", unit="M pairs/s",
                 args=_micro("fastpath", "-T", DUR, 10000, 64),
                 smoke_args=_micro("fastpath", 20000, 64)),
        Workload("churn", "micro",
                 "random replacement, 10,000 slots/thread, 16 B-64 KiB, "
                 "2 threads",
                 metric="mops", unit="Mops/s",
                 args=_micro("churn", "-t", 2, "-n", big, "-s", 10000,
                             "-T", DUR),
                 smoke_args=_micro("churn", "-t", 2, "-n", 5000, "-s", 500),
                 cg=lambda n: (["churn", "-t", 1, "-n", n, "-s", 1000], n),
                 scale_threads=lambda ctx, t: [
                     ctx.prog("churn"), "-t", str(t), "-n",
                     "5000" if ctx.smoke else str(big), "-s", "10000",
                     "-T", "0.02" if ctx.smoke else DUR]),
        # No instruction count: the threads wait for each other with
        # sched_yield, so the count depends on scheduling.
        Workload("prodcons", "micro",
                 "1 producer + 1 consumer thread, objects freed remotely",
                 metric="mops", unit="M objects/s",
                 args=_micro("prodcons", "-t", 1, "-n", big, "-T", DUR),
                 smoke_args=_micro("prodcons", "-t", 1, "-n", 5000),
                 scale_threads=lambda ctx, t: [
                     ctx.prog("prodcons"), "-t", str(t), "-n",
                     "5000" if ctx.smoke else str(big),
                     "-T", "0.02" if ctx.smoke else DUR]),
        Workload("larson", "micro",
                 "2 chains of threads handing 1,000 blocks over, 8-1000 B",
                 metric="mops", unit="Mops/s",
                 args=_micro("larson", "-t", 2, "-g", big, "-n", 10000,
                             "-T", DUR),
                 smoke_args=_micro("larson", "-t", 2, "-g", 4, "-n", 1000),
                 cg=lambda n: (["larson", "-t", 1, "-g", 2, "-n", n],
                               2 * n)),
        Workload("growth", "micro",
                 "64 strings and vectors growing by realloc",
                 metric="mops", unit="M reallocs/s",
                 args=_micro("growth", "-n", big, "-T", DUR),
                 smoke_args=_micro("growth", "-n", 5000),
                 cg=lambda n: (["growth", "-n", n], n)),
        Workload("threads", "micro",
                 "short-lived threads, 4 alive, 64 allocations each",
                 metric="kthreads_per_s", unit="k threads/s",
                 args=_micro("threads", "-n", big, "-c", 4, "-T", DUR),
                 smoke_args=_micro("threads", "-n", 50, "-c", 4),
                 cg=lambda n: (["threads", "-n", n, "-c", 1], n)),
        Workload("containers", "micro",
                 "C++ map, unordered_map, string, list, shared_ptr",
                 metric="mops", unit="M ops/s",
                 args=_micro("containers", "-n", big, "-T", DUR),
                 smoke_args=_micro("containers", "-n", 1),
                 cg=lambda n: (["containers", "-n", n], "ops")),
        Workload("python3", "real",
                 "alloc-heavy.py (dicts, lists, strings), /usr/bin/python3",
                 unit="k records/s", setup=_setup_python, args=_python_args,
                 throughput=_per_second(
                     lambda c: c.py_rounds * c.py_records / 1e3)),
        Workload("gcc", "real", "cc1 -O2 on a generated C file",
                 unit="k lines/s", setup=_setup_gcc, args=_gcc_args,
                 throughput=_per_second(lambda c: c.c_lines / 1e3)),
        Workload("sqlite3", "real",
                 "sqlite3 shell: insert, index, join, group, update",
                 unit="k rows/s", setup=_setup_sqlite, args=_sqlite_args,
                 throughput=_per_second(lambda c: c.sql_rows * 1.25 / 1e3)),
        Workload("git", "real", "git log -p on a generated repository",
                 unit="commits/s", setup=_setup_git, args=_git_args,
                 throughput=_per_second(lambda c: c.git_commits)),
    ]
