"""configs.py: the allocator and profiler configurations that make bench
compares, and how each is applied to a command.

Every configuration is applied from outside (LD_PRELOAD of an absolute
path, environment variables, or a wrapper command): the benchmark programs
are not linked to any allocator.  Each run gets a fresh folder `run_dir`;
a profiler writes its output there (mtalloc's shards, heaptrack's file,
jemalloc's and gperftools' heap profiles), and the driver counts the bytes
it wrote, then deletes it.

  name          what                                     overhead vs
  glibc         the system allocator (no preload)        -
  jemalloc      Debian's libjemalloc.so.2                 -
  tcmalloc      gperftools' libtcmalloc_minimal.so.4      -
  mimalloc      Debian's libmimalloc.so.2                 -
  je-prof       jemalloc with prof:true,lg_prof_sample:19 jemalloc
                (its own sampling heap profiler, mean 512 KiB, the same
                interval as mtalloc's default), prof_final:true so that it
                writes a profile at exit, as the other profilers do
  gperf-heap    gperftools' full libtcmalloc.so.4 with HEAPPROFILE
                (records every allocation, dumps at exit and every GiB)
                                                          tcmalloc
  heaptrack     heaptrack PROG (records every call with a stack, through a
                pipe to heaptrack_interpret, compressed)  glibc
  mt-off        libmtalloc, MTALLOC=sample:off            jemalloc
  mt-default    libmtalloc, default policy (poisson 512 KiB)
                                                          jemalloc
  mt-tiered     libmtalloc, MTALLOC=sample:tiered         jemalloc
  mt-all        libmtalloc, MTALLOC=sample:all (every allocation)
                                                          jemalloc

The "overhead vs" column is the allocator each profiler runs on: its
overhead is its time over that allocator's time, minus one.
"""

import os
import shutil

LIBDIR = "/usr/lib/x86_64-linux-gnu"
HEAPTRACK_PRELOAD = "/usr/lib/heaptrack/libheaptrack_preload.so"

# Variables that would change an allocator's behaviour behind our back.
SCRUB = ("MALLOC_CONF", "MTALLOC", "LD_PRELOAD", "HEAPPROFILE",
         "HEAP_PROFILE_ALLOCATION_INTERVAL", "HEAP_PROFILE_INUSE_INTERVAL",
         "HEAPCHECK", "CPUPROFILE", "MIMALLOC_VERBOSE", "MIMALLOC_SHOW_STATS",
         "DUMP_HEAPTRACK_OUTPUT", "TCMALLOC_SAMPLE_PARAMETER")


class Config:
    """One configuration.  preload: absolute path or None; env: fixed
    variables; run_env(run_dir): variables that name the run's folder;
    wrap(cmd, run_dir): the command to run (heaptrack prefixes one);
    base: the configuration its overhead is measured against."""

    def __init__(self, name, what, preload=None, env=None, package=None,
                 needs=(), run_env=None, wrap=None, base=None,
                 callgrind=True, mt_conf=None, heavy=False):
        self.name = name
        self.what = what
        self.preload = preload
        self.env = dict(env or {})
        self.package = package
        self.needs = tuple(needs) + ((preload,) if preload else ())
        self._run_env = run_env
        self._wrap = wrap
        self.base = base
        self.callgrind = callgrind  # can run under valgrind meaningfully
        self.mt_conf = mt_conf      # MTALLOC value, for the libmtalloc ones
        # Records every allocation with a stack and is 2-500x slower: the
        # suite runs it once per workload (its overhead dwarfs the noise)
        # and gives it a smaller N under callgrind.
        self.heavy = heavy

    def missing(self):
        """None if usable here, else why not (with the package to install)."""
        for path in self.needs:
            if not os.access(path, os.R_OK):
                return f"{path} not installed (Debian: {self.package})"
        return None

    def environ(self, run_dir, extra=None, callgrind=False):
        env = {k: v for k, v in os.environ.items() if k not in SCRUB}
        if self.preload:
            env["LD_PRELOAD"] = self.preload
        env.update(self.env)
        if self._run_env:
            env.update(self._run_env(run_dir, callgrind))
        env.update(extra or {})
        return env

    def command(self, cmd, run_dir):
        return self._wrap(cmd, run_dir) if self._wrap else list(cmd)


def mtalloc_configs(lib, mt_malloc_conf=""):
    """The four libmtalloc configurations.  Under callgrind they add
    timeline:0 (time-based timeline points happen ~50x more often per
    instruction under valgrind than natively) and seed:1 (the same sampling
    decisions in the N and 2N runs)."""
    out = []
    for name, conf, what in (
            ("mt-off", "sample:off", "libmtalloc, sample:off"),
            ("mt-default", "", "libmtalloc, default (poisson 512 KiB)"),
            ("mt-tiered", "sample:tiered", "libmtalloc, sample:tiered"),
            ("mt-all", "sample:all", "libmtalloc, sample:all")):
        def run_env(run_dir, callgrind, conf=conf):
            items = [conf] if conf else []
            if callgrind:
                items += ["timeline:0", "seed:1"]
            items.append(f"dir:{os.path.join(run_dir, 'shards')}")
            return {"MTALLOC": ",".join(items)}
        env = {"MALLOC_CONF": mt_malloc_conf} if mt_malloc_conf else {}
        out.append(Config(name, what, preload=lib, env=env,
                          run_env=run_env, base="jemalloc",
                          mt_conf=conf or "default"))
    return out


def all_configs(lib, mt_malloc_conf=""):
    je = f"{LIBDIR}/libjemalloc.so.2"

    def jeprof_env(run_dir, callgrind):
        conf = "prof:true,lg_prof_sample:19"
        if not callgrind:
            conf += f",prof_final:true,prof_prefix:{run_dir}/jeprof"
        return {"MALLOC_CONF": conf}

    # the wrapper that missing() checks is the one that runs
    heaptrack = shutil.which("heaptrack") or "/usr/bin/heaptrack"

    def heaptrack_wrap(cmd, run_dir):
        return [heaptrack, "-o", os.path.join(run_dir, "heaptrack")] + \
            list(cmd)
    return [
        Config("glibc", "glibc malloc"),
        Config("jemalloc", "jemalloc 5.3 (Debian)", preload=je,
               package="libjemalloc2"),
        Config("tcmalloc", "tcmalloc-minimal (gperftools)",
               preload=f"{LIBDIR}/libtcmalloc_minimal.so.4",
               package="libtcmalloc-minimal4"),
        Config("mimalloc", "mimalloc 2.0 (Debian)",
               preload=f"{LIBDIR}/libmimalloc.so.2",
               package="libmimalloc2.0"),
        Config("je-prof", "jemalloc prof:true,lg_prof_sample:19",
               preload=je, package="libjemalloc2", run_env=jeprof_env,
               base="jemalloc"),
        Config("gperf-heap", "tcmalloc with HEAPPROFILE",
               preload=f"{LIBDIR}/libtcmalloc.so.4",
               package="libgoogle-perftools4",
               run_env=lambda d, cg: {"HEAPPROFILE": os.path.join(d, "hp")},
               base="tcmalloc", heavy=True),
        Config("heaptrack", "heaptrack 1.4", package="heaptrack",
               needs=(heaptrack, HEAPTRACK_PRELOAD), wrap=heaptrack_wrap,
               base="glibc", callgrind=False, heavy=True),
    ] + mtalloc_configs(lib, mt_malloc_conf)
