"""measure.py: running one command and measuring it (make bench).

  timed(cmd, env, ...)      wall time, user and system CPU time and peak
                            RSS of a process and its waited-for children
                            (wait4's rusage), its output, its exit status
  callgrind(cmd, env, ...)  instructions the process executed, under
                            valgrind --tool=callgrind (children not traced)
  fields(text, key)         the key=value fields of the last output line
                            that has `key`
  du(path)                  bytes of the files under path
"""

import os
import re
import signal
import subprocess
import tempfile
import threading
import time


class RunError(Exception):
    pass


def timed(cmd, env, cwd=None, stdin=None, keep_stdout=True, timeout=600,
          helper=None):
    """{wall, user, sys, cpu (s), maxrss_kib, stdout, stderr}.  Raises
    RunError on a failure to start, a non-zero exit or the timeout.

    With helper (the path of benchmarks/rusage), the command runs under it
    and the figures are the helper's: peak RSS is then the command's own
    (see rusage.c for why Python cannot measure it), the largest of the
    process and its descendants that were waited for; for heaptrack, whose
    script runs the program and heaptrack_interpret, the larger of the
    two.  The configuration's LD_PRELOAD is handed over as
    RUSAGE_LD_PRELOAD so that the helper itself does not load it."""
    env = dict(env)
    stat_file = None
    if helper:
        fd, stat_file = tempfile.mkstemp(prefix="rusage.")
        os.close(fd)
        if "LD_PRELOAD" in env:
            env["RUSAGE_LD_PRELOAD"] = env.pop("LD_PRELOAD")
        cmd = [helper, stat_file] + list(cmd)
    try:
        with tempfile.TemporaryFile() as out, \
                tempfile.TemporaryFile() as err:
            fin = open(stdin, "rb") if stdin else subprocess.DEVNULL
            try:
                t0 = time.monotonic()
                p = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=fin,
                                     stdout=out if keep_stdout else
                                     subprocess.DEVNULL,
                                     stderr=err, start_new_session=True)
            except OSError as e:
                raise RunError(f"{cmd[0]}: {e}")
            finally:
                if stdin:
                    fin.close()
            killed = []

            def kill():
                killed.append(1)
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
            timer = threading.Timer(timeout, kill)
            timer.start()
            try:
                _, status, ru = os.wait4(p.pid, 0)
            except BaseException:
                kill()  # interrupted: the command runs in its own session
                raise
            finally:
                timer.cancel()
            wall = time.monotonic() - t0
            p.returncode = os.waitstatus_to_exitcode(status)
            if killed:
                raise RunError(f"{' '.join(cmd)}: timed out after "
                               f"{timeout} s")
            out.seek(0)
            err.seek(0)
            so = out.read().decode(errors="replace")
            se = err.read().decode(errors="replace")
        if p.returncode != 0:
            raise RunError(f"{' '.join(cmd)}: exit {p.returncode}: "
                           f"{se.strip()[-400:]}")
        r = {"wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime,
             "maxrss_kib": ru.ru_maxrss, "stdout": so, "stderr": se}
        if stat_file:
            with open(stat_file) as f:
                st = fields(f.read(), "wall_ns")
            r.update(wall=int(st["wall_ns"]) / 1e9,
                     user=int(st["user_us"]) / 1e6,
                     sys=int(st["sys_us"]) / 1e6,
                     maxrss_kib=int(st["maxrss_kib"]))
        r["cpu"] = r["user"] + r["sys"]
        return r
    finally:
        if stat_file:
            try:
                os.unlink(stat_file)
            except OSError:
                pass


def callgrind(cmd, env, cwd=None, timeout=900, out_file="/dev/null",
              stdin=None):
    """Instructions executed by cmd (its own process only)."""
    fin = subprocess.DEVNULL
    try:
        if stdin:
            fin = open(stdin, "rb")
        p = subprocess.run(["valgrind", "--tool=callgrind",
                            f"--callgrind-out-file={out_file}"] + list(cmd),
                           env=env, cwd=cwd, stdin=fin, capture_output=True,
                           timeout=timeout)
        p.stdout = p.stdout.decode(errors="replace")
        p.stderr = p.stderr.decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RunError(f"callgrind {' '.join(cmd)}: {e}")
    finally:
        if stdin and fin != subprocess.DEVNULL:
            fin.close()
    if p.returncode != 0:
        raise RunError(f"callgrind {' '.join(cmd)}: exit {p.returncode}: "
                       f"{p.stderr.strip()[-400:]}")
    m = re.search(r"Collected : (\d+)", p.stderr)
    if not m:
        raise RunError(f"callgrind {' '.join(cmd)}: no instruction total")
    return int(m.group(1)), p.stdout


def fields(text, key=None):
    """key=value pairs of the last line of text that has `key=` (or of the
    last non-empty line)."""
    for line in reversed(text.splitlines()):
        if (key is None and line.strip()) or (key and f"{key}=" in line):
            return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    return {}


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total
