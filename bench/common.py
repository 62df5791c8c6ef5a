# SPDX-License-Identifier: MIT
"""What the benchmarks of bench/ share (imported by the scripts beside it).

Every benchmark here measures in rounds against a reference, with a null
line: the reference against itself under the same schedule, so that a
ratio means something only outside the null line's range. This module
holds the pieces of that method (round orders, medians and ranges, ratios),
the commands (finding the swapio binary, running a command for its JSON
and its CPU time, fio's figures, strace counts) and the argument and
scratch-directory helpers of the fio comparisons. Standard library only.
"""
import argparse
import glob
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_TIMEOUT = 300
# The I/O system calls strace counts: io_uring, aio and the pread family.
COUNTED = ("io_uring_enter", "io_submit", "io_getevents", "io_pgetevents",
           "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2")
STRACE_MAX = 256 << 20


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------
# Rounds and figures
# ---------------------------------------------------------------------

def orders(mine, ref, null):
    """The six orders of a round of three commands, one letter each: the
    tool measured, its reference and the reference again as the null
    line. Cycled over six rounds, each command runs in each position
    twice, and the tool (and the null) goes before the reference as often
    as after it: ("SFN", "NFS", "FNS", "SNF", "NSF", "FSN")."""
    m, r, n = mine, ref, null
    return (m + r + n, n + r + m, r + n + m, m + n + r, n + m + r, r + m + n)


def rotated(contenders, r):
    """Round @r's order of many contenders: rotated by r, reversed every
    other round, so that each runs early as often as late."""
    k = r % len(contenders)
    o = contenders[k:] + contenders[:k]
    return o[::-1] if r % 2 else o


def med(xs):
    """The median of @xs, or None for none."""
    xs = list(xs)
    return statistics.median(xs) if xs else None


def spread(xs, digits=2):
    """"median [min..max]" of @xs, or "n/a" for none."""
    xs = list(xs)
    if not xs:
        return "n/a"
    f = f".{digits}f"
    return f"{med(xs):{f}} [{min(xs):{f}}..{max(xs):{f}}]"


def num(v, fmt):
    return "n/a" if v is None else format(v, fmt)


def ratios(num_runs, den_runs, key):
    """Per-round ratios of @key, skipping rounds whose reference is 0."""
    return [n[key] / d[key] for n, d in zip(num_runs, den_runs) if d[key] > 0]


def cpu_now():
    """CPU seconds (user + system) of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_rounds(do, order_list, rounds, label=None):
    """Run each command of do (letter -> function returning its figures)
    once a round, in the round's order; {letter: [figures per round]}.
    A label prints progress on stderr."""
    runs = {k: [] for k in do}
    for r in range(rounds):
        if label:
            print(f"\r{label}: round {r + 1}/{rounds} ", end="",
                  file=sys.stderr, flush=True)
        for k in order_list[r % len(order_list)]:
            runs[k].append(do[k]())
    return runs


# ---------------------------------------------------------------------
# Sizes and arguments
# ---------------------------------------------------------------------

def physical_runs(spans):
    """``(pages, runs)``: the 4 KiB pages under *spans* (``(address,
    nbytes)``, faulted in) and how many physically contiguous runs they
    lie in, from /proc/self/pagemap; None where the frame numbers cannot
    be read (without CAP_SYS_ADMIN they read as 0). A direct request from
    such memory is a segment per run."""
    pages = runs = 0
    try:
        with open("/proc/self/pagemap", "rb") as f:
            for addr, n in spans:
                first, last = addr // 4096, (addr + n - 1) // 4096
                f.seek(first * 8)
                raw = f.read((last - first + 1) * 8)
                pfn = [int.from_bytes(raw[i:i + 8], "little") & (2**55 - 1)
                       for i in range(0, len(raw), 8)]
                if not all(pfn):
                    return None
                pages += len(pfn)
                runs += 1 + sum(b != a + 1 for a, b in zip(pfn, pfn[1:]))
    except OSError:
        return None
    return pages, runs


def runs_line(what, spans):
    """A line saying how physically scattered *spans* are, or why not."""
    r = physical_runs(spans)
    if r is None:
        return f"{what}: physical pages unreadable (needs root)"
    return (f"{what}: {r[0]} pages in {r[1]} physical runs "
            f"({r[0] / r[1]:.1f} pages a run)")


def parse_size(s):
    """"64K", "1M", "2G", "1T" or bytes, as bytes (argparse type)."""
    units = {"k": 10, "m": 20, "g": 30, "t": 40}
    s = s.strip().lower()
    shift = units.get(s[-1:], 0)
    n = s[:-1] if shift else s
    if not n.isdigit() or int(n) == 0:
        raise argparse.ArgumentTypeError(f"bad size: {s!r}")
    return int(n) << shift


def size_name(v):
    for shift, unit in ((30, "G"), (20, "M"), (10, "K")):
        if v % (1 << shift) == 0:
            return f"{v >> shift}{unit}"
    return str(v)


def csv(kind, allowed=None):
    """An argparse type: a comma-separated list of @kind."""
    def parse(s):
        items = [kind(x) for x in s.split(",") if x]
        if not items or (allowed and any(x not in allowed for x in items)):
            raise argparse.ArgumentTypeError(f"bad list: {s!r}")
        return items
    return parse


def find_swapio(given=None):
    """@given, else the newest build*/tools/swapio of this tree, else the
    swapio on PATH, else None."""
    if given:
        return given
    found = [p for p in glob.glob(os.path.join(REPO, "build*", "tools",
                                               "swapio"))
             if os.access(p, os.X_OK)]
    found.sort(key=os.path.getmtime)
    return found[-1] if found else shutil.which("swapio")


def fio_args(p, what):
    """The options every fio comparison takes; @what says where files go."""
    p.add_argument("--dir", default="/tmp",
                   help=f"where {what} (default /tmp)")
    p.add_argument("--huge", action="store_true", help="let swapio's "
                   "buffers use transparent huge pages, as its bench does "
                   "by default (fio's cannot)")
    p.add_argument("--no-strace", dest="strace", action="store_false",
                   help="skip the strace runs (system call counts)")
    p.add_argument("--swapio", default=None, help="the swapio binary")
    p.add_argument("--json", metavar="FILE", help="also write every "
                   "run's figures to FILE")
    p.add_argument("--quiet", action="store_true", help="no progress")


def check_tools(p, a, prog, tools=("fio",)):
    """Find swapio and the tools a fio comparison runs, or p.error()."""
    a.swapio = find_swapio(a.swapio)
    if not a.swapio or not os.access(a.swapio, os.X_OK):
        p.error("no swapio binary: build it, or give --swapio")
    for tool in tools:
        if not shutil.which(tool):
            p.error(f"{tool} is not installed")
    if a.strace and not shutil.which("strace"):
        print(f"{prog}: strace not found; no strace counts", file=sys.stderr)
        a.strace = False


# ---------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------

def run_cmd(cmd, timeout=RUN_TIMEOUT):
    """Run @cmd; its stdout and the CPU seconds its process tree used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out: {' '.join(cmd)}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode:
        raise BenchError(f"exit {p.returncode}: {' '.join(cmd)}\n{p.stderr}")
    cpu = (after.ru_utime - before.ru_utime +
           after.ru_stime - before.ru_stime)
    return p.stdout, cpu


def parse_json(out):
    """The JSON object in @out (fio may print notes before it)."""
    return json.loads(out[out.index("{"):])


def lay_out(swapio, path, size, timeout=RUN_TIMEOUT):
    """Write @path once with swapio bench, so that reads find real data
    and later writes overwrite alike."""
    subprocess.run([swapio, "bench", "--file", path, "--size", str(size),
                    "--mode", "write", "--keep", "--json"],
                   check=True, capture_output=True, timeout=timeout)


def fio_base(name, path, rw, bs):
    """fio's options shared by every comparison: O_DIRECT, JSON out, and
    incompressible data without a per-I/O refill (whose cost would be
    charged to fio's CPU)."""
    return ["fio", f"--name={name}", f"--filename={path}", f"--rw={rw}",
            f"--bs={bs}", "--direct=1", "--randrepeat=0",
            "--buffer_compress_percentage=0", "--output-format=json"]


def fio_figures(out, phase, what="the run"):
    """GB/s and CPU s/GB of fio's JSON @out for @phase ("write", "read"),
    over all its jobs (CPU: usr_cpu + sys_cpu times each job's runtime),
    the GB moved, and the first job's clat and lat percentiles in us (0
    where not asked for)."""
    jobs = parse_json(out)["jobs"]
    nbytes = sum(j[phase]["io_bytes"] for j in jobs)
    secs = max(j[phase]["runtime"] for j in jobs) / 1e3
    if not nbytes or not secs:
        raise BenchError(f"fio moved nothing in {what}")
    cpu = sum((j["usr_cpu"] + j["sys_cpu"]) / 100 * j["job_runtime"] / 1e3
              for j in jobs)
    io = jobs[0][phase]
    pct = lambda k, p: io.get(k, {}).get("percentile", {}).get(p, 0) / 1e3
    gb = nbytes / 1e9
    return {"gbps": gb / secs, "cpu": cpu / gb, "gb": gb,
            "p50": pct("clat_ns", "50.000000"),
            "p99": pct("clat_ns", "99.000000"),
            "lat_p50": pct("lat_ns", "50.000000"),
            "lat_p99": pct("lat_ns", "99.000000")}


def strace_per_gb(tmp, cmd, nbytes, before=None, timeout=RUN_TIMEOUT):
    """I/O system calls (COUNTED) per GB of one run of @cmd under
    strace -c -f; @before, if given, runs first."""
    with tempfile.NamedTemporaryFile(dir=tmp, suffix=".strace") as out:
        if before:
            before()
        # LeakSanitizer cannot run under ptrace: a sanitized swapio
        # would fail at exit for that alone.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(filter(None, (
            env.get("ASAN_OPTIONS"), "detect_leaks=0")))
        p = subprocess.run(["strace", "-c", "-f", "-o", out.name,
                            "-e", "trace=" + ",".join(COUNTED), *cmd],
                           capture_output=True, text=True, env=env,
                           timeout=timeout)
        if p.returncode:
            raise BenchError(f"strace: exit {p.returncode}: {p.stderr}")
        calls = 0
        with open(out.name) as fp:
            for line in fp:
                f = line.split()
                # % time, seconds, usecs/call, calls, [errors], syscall
                if len(f) >= 5 and f[-1] in COUNTED and f[3].isdigit():
                    calls += int(f[3])
    return calls / (nbytes / 1e9)


# ---------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------

def machine(path):
    """Date, kernel, CPUs, @path's filesystem and fio's version."""
    fs = subprocess.run(["stat", "-f", "-c", "%T", path],
                        capture_output=True, text=True).stdout.strip()
    fio = subprocess.run(["fio", "--version"], capture_output=True,
                         text=True).stdout.strip()
    return (f"{time.strftime('%Y-%m-%d %H:%M')}, Linux "
            f"{platform.release()}, {os.cpu_count()} CPUs, {path} on {fs}, "
            f"{fio}")


def in_scratch(prog, a, work):
    """Run work() with a.tmp, a new directory under a.dir that is removed
    afterwards, also on an error or Ctrl-C (then exits 1 or 130). Returns
    what work() returned and the minutes it took."""
    a.tmp = tempfile.mkdtemp(prefix=f"swapio-{prog}-", dir=a.dir)
    started = time.monotonic()
    try:
        results = work()
    except (BenchError, subprocess.CalledProcessError) as e:
        print(f"\n{prog}: {e}", file=sys.stderr)
        raise SystemExit(1)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130)
    finally:
        shutil.rmtree(a.tmp, ignore_errors=True)
    if not a.quiet:
        print("\r\033[K", end="", file=sys.stderr)
    return results, (time.monotonic() - started) / 60


def save_json(path, setup, results):
    with open(path, "w") as fp:
        json.dump({"setup": setup, "results": results}, fp, indent=1)
