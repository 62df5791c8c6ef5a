#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""swapio bench against fio on the same file, block size and queue depth.

The disk this runs on is noisy, so every point is measured as pairs in
ABBA order (which command goes first alternates), and the result is the
median of the per-pair ratios with their range. Beside every comparison
stands a null line: fio against fio under exactly the same schedule. A
ratio is only meaningful where it falls outside the null line's range.

Each round of a point runs three commands: swapio (S), fio as reference
(F) and fio again as the null (N). The order cycles through all six
permutations (SFN NFS FNS SNF NSF FSN), so that over six rounds each
command runs in each position twice and S goes before F as often as
after it, and N likewise. The ratios are S/F and N/F, one per round.

  swapio uring    vs fio io_uring
  swapio aio      vs fio libaio
  swapio threads  vs fio psync with numjobs = min(queue depth, 32), each
                  job on its own slice of the file (swapio's threads engine
                  runs that many pread/pwrite threads per worker)

GB/s is 10^9 bytes/s over each tool's own timing of the transfer. CPU s/GB
is the CPU time of the transfer: swapio's getrusage of its whole process
over the phase (library threads included); fio's usr_cpu + sys_cpu times
each job's runtime. System calls per GB: swapio's own count of the I/O
system calls its engines made, and strace -c -f over a separate short run
of each tool, counting io_uring_enter, io_submit, io_getevents,
io_pgetevents and the pread/pwrite family.

Buffers: swapio's are pinned, page-aligned and, unless --huge, without
transparent huge pages, like fio's malloc memory. On a virtio disk THP
alone can double swapio's GB/s (fewer, larger DMA segments); --huge shows
that, but then the ratio no longer compares the I/O paths alone.

Data written is incompressible: swapio writes a splitmix64 stream, fio a
random buffer (--buffer_compress_percentage=0 --randrepeat=0; without
--refill_buffers, whose per-I/O refill would be charged to fio's CPU).

--png FILE draws the ratios as a bar chart (gnuplot, Debian gnuplot-nox):
per point, swapio/fio beside the null line fio/fio, each bar the median
with its range as an error bar. --from-json FILE redraws the chart (or
the table) of an earlier --json run without measuring again.

Run from the repository after building; it finds the swapio binary in
build*/tools/ or on PATH (--swapio to say which). Everything it writes
lies under --dir and is deleted at the end, also on Ctrl-C.
"""
import argparse
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

FIO_ENGINE = {"uring": "io_uring", "aio": "libaio", "threads": "psync"}
COUNTED = ("io_uring_enter", "io_submit", "io_getevents", "io_pgetevents",
           "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2")
# Every position for each command; S/F and N/F alternate which goes first.
ORDERS = ("SFN", "NFS", "FNS", "SNF", "NSF", "FSN")
STRACE_MAX = 256 << 20
RUN_TIMEOUT = 300


class BenchError(Exception):
    pass


def parse_size(s):
    units = {"k": 10, "m": 20, "g": 30, "t": 40}
    s = s.strip().lower()
    shift = units.get(s[-1:], 0)
    num = s[:-1] if shift else s
    if not num.isdigit() or int(num) == 0:
        raise argparse.ArgumentTypeError(f"bad size: {s!r}")
    return int(num) << shift


def size_name(v):
    for shift, unit in ((30, "G"), (20, "M"), (10, "K")):
        if v % (1 << shift) == 0:
            return f"{v >> shift}{unit}"
    return str(v)


def csv(kind, allowed=None):
    def parse(s):
        items = [kind(x) for x in s.split(",") if x]
        if not items or (allowed and any(x not in allowed for x in items)):
            raise argparse.ArgumentTypeError(f"bad list: {s!r}")
        return items
    return parse


class Point:
    def __init__(self, mode, bs, qd, engine):
        self.mode, self.bs, self.qd, self.engine = mode, bs, qd, engine
        self.jobs = min(qd, 32) if engine == "threads" else 1

    def __str__(self):
        return f"{self.mode} {size_name(self.bs)} qd{self.qd}"

    def pair_name(self):
        fio = FIO_ENGINE[self.engine]
        if self.jobs > 1:
            fio += f" x{self.jobs}"
        return f"swapio {self.engine} / fio {fio}"


# ---------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------

def swapio_cmd(a, pt, size):
    cmd = [a.swapio, "bench", "--file", a.file, "--size", str(size),
           "--engine", pt.engine, "--block-size", str(pt.bs),
           "--queue-depth", str(pt.qd), "--threads", "1", "--direct",
           "--mode", pt.mode, "--json"]
    if a.memory != "swapio":
        return cmd + ["--memory", a.memory]
    # fio's buffers are plain malloc memory: compare like with like.
    return cmd if a.huge else cmd + ["--no-huge"]


def fio_cmd(a, pt, size):
    cmd = ["fio", "--name=vs-fio", f"--filename={a.file}",
           f"--bs={pt.bs}", "--direct=1",
           f"--ioengine={FIO_ENGINE[pt.engine]}", f"--rw={pt.mode}",
           "--randrepeat=0",
           "--buffer_compress_percentage=0", "--output-format=json"]
    if pt.jobs > 1:
        part = size // pt.jobs // pt.bs * pt.bs
        cmd += [f"--numjobs={pt.jobs}", f"--size={part}",
                f"--offset_increment={part}", "--iodepth=1"]
    else:
        cmd += [f"--size={size}", f"--iodepth={pt.qd}"]
    return cmd


def run_json(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out: {' '.join(cmd)}")
    if p.returncode:
        raise BenchError(f"exit {p.returncode}: {' '.join(cmd)}\n{p.stderr}")
    # fio may print notes before its JSON.
    return json.loads(p.stdout[p.stdout.index("{"):])


def run_swapio(a, pt):
    r = run_json(swapio_cmd(a, pt, a.size))[pt.mode]
    return {"gbps": r["gbps"], "cpu": r["cpu_s_per_gb"],
            "syscalls": r["syscalls_per_gb"]}


def run_fio(a, pt):
    jobs = run_json(fio_cmd(a, pt, a.size))["jobs"]
    nbytes = sum(j[pt.mode]["io_bytes"] for j in jobs)
    secs = max(j[pt.mode]["runtime"] for j in jobs) / 1e3
    cpu = sum((j["usr_cpu"] + j["sys_cpu"]) / 100 * j["job_runtime"] / 1e3
              for j in jobs)
    if not nbytes or not secs:
        raise BenchError(f"fio moved nothing at {pt}")
    return {"gbps": nbytes / 1e9 / secs, "cpu": cpu / (nbytes / 1e9)}


def strace_per_gb(a, cmd, nbytes):
    """I/O system calls per GB of one run of @cmd under strace -c -f."""
    with tempfile.NamedTemporaryFile(dir=a.tmp, suffix=".strace") as out:
        p = subprocess.run(["strace", "-c", "-f", "-o", out.name,
                            "-e", "trace=" + ",".join(COUNTED), *cmd],
                           capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
        if p.returncode:
            raise BenchError(f"strace: exit {p.returncode}: {p.stderr}")
        calls = 0
        for line in open(out.name):
            f = line.split()
            # % time, seconds, usecs/call, calls, [errors], syscall
            if len(f) >= 5 and f[-1] in COUNTED and f[3].isdigit():
                calls += int(f[3])
    return calls / (nbytes / 1e9)


# ---------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------

def lay_out(a):
    """Write the file once: every later run then overwrites alike."""
    subprocess.run([a.swapio, "bench", "--file", a.file, "--size",
                    str(a.size), "--mode", "write", "--keep", "--json"],
                   check=True, capture_output=True, timeout=RUN_TIMEOUT)


def measure(a, pt, idx, total):
    runs = {"S": [], "F": [], "N": []}
    do = {"S": lambda: run_swapio(a, pt), "F": lambda: run_fio(a, pt),
          "N": lambda: run_fio(a, pt)}
    for r in range(a.pairs):
        order = ORDERS[r % len(ORDERS)]
        if not a.quiet:
            print(f"\r[{idx}/{total}] {pt} {pt.pair_name()}: "
                  f"round {r + 1}/{a.pairs} ", end="", file=sys.stderr,
                  flush=True)
        for k in order:
            runs[k].append(do[k]())
    return runs


def syscalls(a, pt):
    if not a.strace:
        return None, None
    short = min(a.size, STRACE_MAX)
    return (strace_per_gb(a, swapio_cmd(a, pt, short), short),
            strace_per_gb(a, fio_cmd(a, pt, short), short))


def med(xs):
    return statistics.median(xs)


def summarise(pt, runs, sc):
    S, F, N = runs["S"], runs["F"], runs["N"]
    ratio = [s["gbps"] / f["gbps"] for s, f in zip(S, F)]
    null = [n["gbps"] / f["gbps"] for n, f in zip(N, F)]
    cpu_ratio = [s["cpu"] / f["cpu"] for s, f in zip(S, F) if f["cpu"] > 0]
    cpu_null = [n["cpu"] / f["cpu"] for n, f in zip(N, F) if f["cpu"] > 0]
    return {
        "point": str(pt), "mode": pt.mode, "block_size": pt.bs,
        "queue_depth": pt.qd, "engine": pt.engine,
        "fio_engine": FIO_ENGINE[pt.engine], "fio_jobs": pt.jobs,
        "pair": pt.pair_name(), "pairs": len(S),
        "gbps": {k: med([x["gbps"] for x in v]) for k, v in runs.items()},
        "cpu": {k: med([x["cpu"] for x in v]) for k, v in runs.items()},
        "ratio": ratio, "null": null,
        "cpu_ratio": cpu_ratio, "cpu_null": cpu_null,
        "swapio_syscalls_per_gb": med([x["syscalls"] for x in S]),
        "strace_syscalls_per_gb": {"swapio": sc[0], "fio": sc[1]},
        "runs": runs,
    }


# ---------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------

def spread(xs):
    if not xs:
        return "n/a"
    return f"{med(xs):.2f} [{min(xs):.2f}..{max(xs):.2f}]"


def num(v, fmt):
    return "n/a" if v is None else format(v, fmt)


def table(results):
    head = ("| point | pair | GB/s A | GB/s B | A/B GB/s, median [range] "
            "| CPU s/GB A | CPU s/GB B | A/B CPU | syscalls/GB A | "
            "syscalls/GB B |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        sc = r["strace_syscalls_per_gb"]
        own = r["swapio_syscalls_per_gb"]
        lines.append(
            f"| {r['point']} | {r['pair']} | {r['gbps']['S']:.2f} | "
            f"{r['gbps']['F']:.2f} | {spread(r['ratio'])} | "
            f"{r['cpu']['S']:.3f} | {r['cpu']['F']:.3f} | "
            f"{spread(r['cpu_ratio'])} | {own:.0f} "
            f"(strace {num(sc['swapio'], '.0f')}) | "
            f"{num(sc['fio'], '.0f')} |")
        lines.append(
            f"| {r['point']} | null: fio / fio | {r['gbps']['N']:.2f} | "
            f"{r['gbps']['F']:.2f} | {spread(r['null'])} | "
            f"{r['cpu']['N']:.3f} | {r['cpu']['F']:.3f} | "
            f"{spread(r['cpu_null'])} | | |")
    return "\n".join(lines)


def gnuplot_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def plot_png(results, path, title):
    """A bar chart of the GB/s ratios with their ranges, through gnuplot."""
    if not shutil.which("gnuplot"):
        raise BenchError("--png needs gnuplot (Debian: gnuplot-nox)")
    rows = []
    for i, r in enumerate(results):
        ratio, null = r["ratio"], r["null"]
        rows.append(f"{i} {med(ratio)} {min(ratio)} {max(ratio)} "
                    f"{med(null)} {min(null)} {max(null)}")
    tics = ", ".join(f"{gnuplot_string(r['point'] + ' ' + r['engine'])} {i}"
                     for i, r in enumerate(results))
    heading = gnuplot_string("swapio vs fio: GB/s ratios\n" +
                             textwrap.fill(title, 120)).replace("\n", "\\n")
    script = f"""set terminal pngcairo size {max(900, 110 * len(results) + 200)},520 font "sans,10"
set output {gnuplot_string(path)}
set title {heading} noenhanced
set ylabel "GB/s ratio, median and range"
set xtics ({tics}) rotate by -30 noenhanced
set xrange [-0.6:{len(results) - 0.4}]
set yrange [0:*]
set style fill solid 0.7 border -1
set key top left
$d << EOD
{chr(10).join(rows)}
EOD
plot $d using ($1-0.18):2:(0.34) with boxes lc rgb "#3873b3" title "swapio / fio", \
     $d using ($1-0.18):2:3:4 with yerrorbars lc rgb "black" pt 7 ps 0.4 notitle, \
     $d using ($1+0.18):5:(0.34) with boxes lc rgb "#b0b0b0" title "null: fio / fio", \
     $d using ($1+0.18):5:6:7 with yerrorbars lc rgb "black" pt 7 ps 0.4 notitle, \
     1 with lines dt 2 lc rgb "black" notitle
"""
    if os.path.exists(path):
        os.unlink(path)
    p = subprocess.run(["gnuplot"], input=script, text=True,
                       capture_output=True)
    if p.returncode or not os.path.exists(path):
        raise BenchError(f"gnuplot failed to write {path}: {p.stderr}")


def describe(a):
    fs = subprocess.run(["stat", "-f", "-c", "%T", a.dir],
                        capture_output=True, text=True).stdout.strip()
    fio = subprocess.run(["fio", "--version"], capture_output=True,
                         text=True).stdout.strip()
    return (f"{time.strftime('%Y-%m-%d %H:%M')}, Linux "
            f"{platform.release()}, {os.cpu_count()} CPUs, {a.dir} on {fs}, "
            f"{fio}, {size_name(a.size)} per run, {a.pairs} pairs per "
            f"point, O_DIRECT, " + (
                f"swapio buffers pinned"
                f"{' on THP' if a.huge else ' without THP (--no-huge)'}"
                if a.memory == "swapio" else
                f"swapio on {a.memory} memory (--memory {a.memory})"))


# ---------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------

def find_swapio():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = sorted(glob.glob(os.path.join(here, "build*", "tools",
                                          "swapio")), key=os.path.getmtime)
    return found[-1] if found else shutil.which("swapio")


def parse_args():
    p = argparse.ArgumentParser(
        prog="vs-fio", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default="/tmp", help="where the file lives "
                   "(default /tmp)")
    p.add_argument("--size", type=parse_size, default=1 << 30,
                   help="bytes per run (default 1G)")
    p.add_argument("--pairs", type=int, default=None,
                   help="pairs per point (default 9; 3 with --quick)")
    p.add_argument("--modes", type=csv(str, ("write", "read")),
                   default=None, help="write,read")
    p.add_argument("--block-sizes", type=csv(parse_size), default=None,
                   help="default 1M,8M")
    p.add_argument("--queue-depths", type=csv(int), default=None,
                   help="default 8,32")
    p.add_argument("--engines", type=csv(str, tuple(FIO_ENGINE)),
                   default=None, help="default uring,aio,threads")
    p.add_argument("--quick", action="store_true", help="a short run: "
                   "3 pairs, block 1M, queue depth 32, uring only, unless "
                   "given otherwise")
    p.add_argument("--memory", default="swapio",
                   choices=("swapio", "caller", "caller-huge"),
                   help="swapio bench's --memory: its own buffers "
                   "(default), one malloc'd region as a runtime's tensors "
                   "(caller), or that region after swapio_mem_hugepages "
                   "(caller-huge)")
    p.add_argument("--huge", action="store_true", help="let swapio's "
                   "buffers use transparent huge pages, as its bench does "
                   "by default (fio's cannot)")
    p.add_argument("--no-strace", dest="strace", action="store_false",
                   help="skip the strace runs (system calls of fio)")
    p.add_argument("--swapio", default=None, help="the swapio binary")
    p.add_argument("--json", metavar="FILE", help="also write every "
                   "run's figures to FILE")
    p.add_argument("--quiet", action="store_true", help="no progress")
    p.add_argument("--png", metavar="FILE", help="draw the ratios as a "
                   "bar chart in FILE (needs gnuplot)")
    p.add_argument("--from-json", metavar="FILE", help="measure nothing: "
                   "report (and --png) the results of an earlier --json")
    a = p.parse_args()
    if a.from_json:
        return a
    quick = a.quick
    if a.pairs is None:
        a.pairs = 3 if quick else 9
    a.modes = a.modes or ["write", "read"]
    a.block_sizes = a.block_sizes or ([1 << 20] if quick
                                      else [1 << 20, 8 << 20])
    a.queue_depths = a.queue_depths or ([32] if quick else [8, 32])
    a.engines = a.engines or (["uring"] if quick
                              else ["uring", "aio", "threads"])
    a.swapio = a.swapio or find_swapio()
    if a.pairs < 1:
        p.error("--pairs must be at least 1")
    if not a.swapio or not os.access(a.swapio, os.X_OK):
        p.error("no swapio binary: build it, or give --swapio")
    if not shutil.which("fio"):
        p.error("fio is not installed")
    if a.strace and not shutil.which("strace"):
        print("vs-fio: strace not found; no system-call counts for fio",
              file=sys.stderr)
        a.strace = False
    return a


def points(a):
    # Writes first: the reads then find the file as the writes left it.
    return [Point(m, bs, qd, e) for m in a.modes for bs in a.block_sizes
            for qd in a.queue_depths for e in a.engines]


def estimate(a, pts):
    """Seconds: a run moves a.size at about 2 GB/s plus 0.3 s to start."""
    per_run = a.size / 2e9 + 0.3
    runs = len(pts) * a.pairs * 3 + (2 * len(pts) if a.strace else 0)
    return runs, runs * per_run


def report_saved(a):
    with open(a.from_json) as fp:
        saved = json.load(fp)
    print(saved["setup"] + "\n")
    print(table(saved["results"]))
    if a.png:
        try:
            plot_png(saved["results"], a.png, saved["setup"])
        except BenchError as e:
            print(f"vs-fio: {e}", file=sys.stderr)
            return 1
    return 0


def main():
    a = parse_args()
    if a.from_json:
        return report_saved(a)
    pts = points(a)
    runs, secs = estimate(a, pts)
    print(f"vs-fio: {len(pts)} points x {a.pairs} pairs x 3 runs = {runs} "
          f"runs, about {secs / 60:.1f} min", file=sys.stderr)
    a.tmp = tempfile.mkdtemp(prefix="swapio-vs-fio-", dir=a.dir)
    a.file = os.path.join(a.tmp, "data")
    started = time.monotonic()
    results = []
    try:
        lay_out(a)
        for i, pt in enumerate(pts, 1):
            runs = measure(a, pt, i, len(pts))
            results.append(summarise(pt, runs, syscalls(a, pt)))
    except (BenchError, subprocess.CalledProcessError) as e:
        print(f"\nvs-fio: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nvs-fio: interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(a.tmp, ignore_errors=True)
    if not a.quiet:
        print("\r\033[K", end="", file=sys.stderr)
    print(f"{describe(a)}; took {(time.monotonic() - started) / 60:.1f} "
          f"min.\n\nA = first tool of the pair, B = second. Ratios above 1 "
          f"mean A moves more GB/s or spends more CPU per GB. A ratio "
          f"means something only outside its null line's range.\n")
    print(table(results))
    if a.png:
        try:
            plot_png(results, a.png, describe(a))
        except BenchError as e:
            print(f"vs-fio: {e}", file=sys.stderr)
            return 1
    if a.json:
        with open(a.json, "w") as fp:
            json.dump({"setup": describe(a), "results": results}, fp,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
