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
import json
import os
import shutil
import subprocess
import sys
import textwrap

from common import (STRACE_MAX, BenchError, check_tools, csv, fio_args,
                    fio_base, fio_figures, in_scratch, lay_out, machine, med,
                    num, orders, parse_json, parse_size, ratios, run_cmd,
                    run_rounds, save_json, size_name, spread, strace_per_gb)

FIO_ENGINE = {"uring": "io_uring", "aio": "libaio", "threads": "psync"}
ORDERS = orders("S", "F", "N")


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
    cmd = fio_base("vs-fio", a.file, pt.mode, pt.bs) + [
        f"--ioengine={FIO_ENGINE[pt.engine]}"]
    if pt.jobs > 1:
        part = size // pt.jobs // pt.bs * pt.bs
        cmd += [f"--numjobs={pt.jobs}", f"--size={part}",
                f"--offset_increment={part}", "--iodepth=1"]
    else:
        cmd += [f"--size={size}", f"--iodepth={pt.qd}"]
    return cmd


def run_swapio(a, pt):
    r = parse_json(run_cmd(swapio_cmd(a, pt, a.size))[0])[pt.mode]
    return {"gbps": r["gbps"], "cpu": r["cpu_s_per_gb"],
            "syscalls": r["syscalls_per_gb"]}


def run_fio(a, pt):
    return fio_figures(run_cmd(fio_cmd(a, pt, a.size))[0], pt.mode, str(pt))


# ---------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------

def measure(a, pt, idx, total):
    do = {"S": lambda: run_swapio(a, pt), "F": lambda: run_fio(a, pt),
          "N": lambda: run_fio(a, pt)}
    label = None if a.quiet else f"[{idx}/{total}] {pt} {pt.pair_name()}"
    return run_rounds(do, ORDERS, a.pairs, label)


def syscalls(a, pt):
    if not a.strace:
        return None, None
    short = min(a.size, STRACE_MAX)
    return (strace_per_gb(a.tmp, swapio_cmd(a, pt, short), short),
            strace_per_gb(a.tmp, fio_cmd(a, pt, short), short))


def summarise(pt, runs, sc):
    S, F, N = runs["S"], runs["F"], runs["N"]
    ratio, null = ratios(S, F, "gbps"), ratios(N, F, "gbps")
    cpu_ratio, cpu_null = ratios(S, F, "cpu"), ratios(N, F, "cpu")
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
    return (f"{machine(a.dir)}, {size_name(a.size)} per run, {a.pairs} "
            f"pairs per point, O_DIRECT, " + (
                f"swapio buffers pinned"
                f"{' on THP' if a.huge else ' without THP (--no-huge)'}"
                if a.memory == "swapio" else
                f"swapio on {a.memory} memory (--memory {a.memory})"))


# ---------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser(
        prog="vs_fio.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    fio_args(p, "the file lives")
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
    if a.pairs < 1:
        p.error("--pairs must be at least 1")
    check_tools(p, a, "vs-fio")
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

    def work():
        a.file = os.path.join(a.tmp, "data")
        lay_out(a.swapio, a.file, a.size)
        return [summarise(pt, measure(a, pt, i, len(pts)), syscalls(a, pt))
                for i, pt in enumerate(pts, 1)]

    results, minutes = in_scratch("vs-fio", a, work)
    print(f"{describe(a)}; took {minutes:.1f} "
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
        save_json(a.json, describe(a), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
