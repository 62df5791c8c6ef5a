#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""swapio's store (puts, gets) and its small-op latency against fio.

Three kinds of point, each swapio (S) against fio (F), with fio again as
the null line (N):

  put BS qdQD  swapio bench --dir D --value-size BS --in-flight QD
               --mode write, against fio --rw=randwrite --bs=BS
               --iodepth=QD on a file in the same directory, made with
               fallocate -l SIZE just before each fio run: fio, too,
               writes into freshly allocated, unwritten space, as the
               store's puts do.
  get BS qdQD  swapio bench --dir D ... --mode both --random, of which
               only the read phase (the gets, in a random order of the
               keys) counts, against fio --rw=randread over a file laid
               out once before the point's rounds.
  lat 4K qd1   swapio bench -f F --op-size 4K --in-flight 1 --random
               --mode read over a laid-out file, against fio --rw=randread
               --bs=4k --iodepth=1 on the same file. swapio's op latency
               (submit to the wait's return) stands against fio's clat;
               fio's lat (submit included) is shown beside it.

Both tools use io_uring and O_DIRECT; swapio's --queue-depth is set to QD
as well, so the library's request queue is not the limit.

The disk is noisy, so each point is measured in rounds: a round runs S, F
and N, in an order that cycles through all six permutations (SFN NFS FNS
SNF NSF FSN), so that S goes before F as often as after it, and N alike.
The ratios are S/F and N/F, one per round; the table gives their median
and range. A ratio means something only outside its null line's range.

GB/s is 10^9 bytes/s over each tool's own timing of the transfer. CPU
s/GB is given twice. Phase: swapio's JSON cpu_s (getrusage of its whole
process over the phase alone: no set-up, no store allocation) and fio's
usr_cpu + sys_cpu times its job_runtime. Child: getrusage(RUSAGE_CHILDREN)
around each command, the same for both tools, set-up and all; for a get
point swapio's put phase (its cpu_s) is taken off it, since its process
ran the puts too. System calls per GB: swapio's own count of its engines'
I/O calls, and strace -c -f over a separate short run of each tool
(--no-strace to skip), counting io_uring_enter and the read/write
family; not for swapio's gets, whose run holds the puts as well.

Latency: swapio's op p50/p99 against fio's clat p50/p99. At queue depth
1 both are one I/O's own latency. Deeper, swapio waits for its ops in
submission order, so an op that finished early is timed until its wait
returns: compare those with care.

Run from the repository after building; it finds the swapio binary in
build*/tools/ or on PATH (--swapio to say which). Everything it writes
lies under --dir and is deleted at the end, also on Ctrl-C.
"""
import argparse
import os
import subprocess
import sys

from common import (STRACE_MAX, check_tools, fio_args, fio_base,
                    fio_figures, in_scratch, lay_out, machine, med, num,
                    orders, parse_json, parse_size, ratios, run_cmd,
                    run_rounds, save_json, size_name, spread, strace_per_gb)

ORDERS = orders("S", "F", "N")
DEFAULT_POINTS = ((64 << 10, 64), (256 << 10, 32), (1 << 20, 16))
RUN_TIMEOUT = 600


def parse_points(s):
    """BS:QD,BS:QD,... as (bytes, depth) pairs."""
    pts = []
    for item in s.split(","):
        bs, _, qd = item.partition(":")
        if not qd.isdigit() or int(qd) < 1:
            raise argparse.ArgumentTypeError(f"bad point: {item!r}")
        pts.append((parse_size(bs), int(qd)))
    return pts


class Point:
    def __init__(self, kind, bs, qd, size):
        self.kind, self.bs, self.qd, self.size = kind, bs, qd, size

    def __str__(self):
        return f"{self.kind} {size_name(self.bs)} qd{self.qd}"

    def fio_rw(self):
        return "randwrite" if self.kind == "put" else "randread"

    def phase(self):
        return "write" if self.kind == "put" else "read"


# ---------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------

def swapio_cmd(a, pt, size):
    base = [a.swapio, "bench", "--size", str(size), "--engine", "uring",
            "--direct", "--json"]
    if not a.huge:
        base.append("--no-huge")	# fio's buffers are plain malloc
    if pt.kind == "lat":
        return base + ["--file", a.lat_file, "--op-size", str(pt.bs),
                       "--in-flight", "1", "--random", "--mode", "read"]
    cmd = base + ["--dir", a.tmp, "--value-size", str(pt.bs),
                  "--in-flight", str(pt.qd), "--queue-depth", str(pt.qd)]
    if pt.kind == "put":
        return cmd + ["--mode", "write"]
    return cmd + ["--mode", "both", "--random"]


def fio_file(a, pt):
    return {"put": a.put_file, "get": a.get_file, "lat": a.lat_file}[
        pt.kind]


def fio_cmd(a, pt, size):
    return fio_base("store-vs-fio", fio_file(a, pt), pt.fio_rw(), pt.bs) + [
        f"--iodepth={pt.qd}", "--ioengine=io_uring", f"--size={size}",
        "--clat_percentiles=1", "--lat_percentiles=1"]


def run_swapio(a, pt):
    out, child = run_cmd(swapio_cmd(a, pt, pt.size), RUN_TIMEOUT)
    r = parse_json(out)
    ph = r[pt.phase()]
    if pt.kind == "get":
        child -= r["write"]["cpu_s"]	# the puts ran in this process too
    gb = ph["bytes"] / 1e9
    return {"gbps": ph["gbps"], "cpu": ph["cpu_s"] / gb,
            "child_cpu": child / gb, "syscalls": ph["syscalls_per_gb"],
            "p50": ph["op_p50_us"], "p99": ph["op_p99_us"]}


def fallocate(path, size):
    if os.path.exists(path):
        os.unlink(path)
    subprocess.run(["fallocate", "-l", str(size), path], check=True,
                   capture_output=True, timeout=RUN_TIMEOUT)


def run_fio(a, pt):
    if pt.kind == "put":
        fallocate(a.put_file, pt.size)
    try:
        out, child = run_cmd(fio_cmd(a, pt, pt.size), RUN_TIMEOUT)
    finally:
        if pt.kind == "put" and os.path.exists(a.put_file):
            os.unlink(a.put_file)
    r = fio_figures(out, pt.phase(), str(pt))
    r["child_cpu"] = child / r["gb"]
    return r


def syscalls(a, pt):
    if not a.strace:
        return None, None
    short = min(pt.size, STRACE_MAX)
    mine = None
    if pt.kind != "get":
        mine = strace_per_gb(a.tmp, swapio_cmd(a, pt, short), short,
                             timeout=RUN_TIMEOUT)
    before = (lambda: fallocate(a.put_file, short)) \
        if pt.kind == "put" else None
    try:
        fio = strace_per_gb(a.tmp, fio_cmd(a, pt, short), short, before,
                            RUN_TIMEOUT)
    finally:
        if os.path.exists(a.put_file):
            os.unlink(a.put_file)
    return mine, fio


# ---------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------

def measure(a, pt, idx, total):
    do = {"S": lambda: run_swapio(a, pt), "F": lambda: run_fio(a, pt),
          "N": lambda: run_fio(a, pt)}
    label = None if a.quiet else f"[{idx}/{total}] {pt}"
    return run_rounds(do, ORDERS, a.rounds, label)


def summarise(pt, runs, sc):
    S, F, N = runs["S"], runs["F"], runs["N"]
    out = {"point": str(pt), "kind": pt.kind, "block_size": pt.bs,
           "queue_depth": pt.qd, "size": pt.size, "rounds": len(S),
           "strace_syscalls_per_gb": {"swapio": sc[0], "fio": sc[1]},
           "swapio_syscalls_per_gb": med([x["syscalls"] for x in S]),
           "runs": runs}
    for k in ("gbps", "cpu", "child_cpu", "p50", "p99"):
        out[k] = {t: med([x[k] for x in v]) for t, v in runs.items()}
        out[k + "_ratio"] = ratios(S, F, k)
        out[k + "_null"] = ratios(N, F, k)
    for k in ("lat_p50", "lat_p99"):
        out[k] = med([x[k] for x in F])
    return out


# ---------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------

def table(r):
    what = {"put": "store put / fio randwrite",
            "get": "store get (random keys) / fio randread",
            "lat": "bench --op-size 4K --in-flight 1 --random / fio "
                   "randread"}[r["kind"]]
    sc = r["strace_syscalls_per_gb"]
    rows = [
        ("GB/s", "gbps", ".3f"),
        ("CPU s/GB, phase", "cpu", ".4f"),
        ("CPU s/GB, child rusage" +
         (" less the puts" if r["kind"] == "get" else ""),
         "child_cpu", ".4f"),
        ("op p50 us / fio clat p50 us", "p50", ".1f"),
        ("op p99 us / fio clat p99 us", "p99", ".1f"),
    ]
    lines = [f"### {r['point']}: {what}", "",
             f"{size_name(r['size'])} per run, rounds: {r['rounds']}",
             "",
             "| figure | swapio | fio | swapio/fio, median [range] "
             "| null fio/fio, median [range] |",
             "|---|---|---|---|---|"]
    for name, k, fmt in rows:
        lines.append(f"| {name} | {num(r[k]['S'], fmt)} | "
                     f"{num(r[k]['F'], fmt)} | {spread(r[k + '_ratio'])} | "
                     f"{spread(r[k + '_null'])} |")
    lines.append(f"| fio lat p50 / p99 us (submit included) | | "
                 f"{num(r['lat_p50'], '.1f')} / {num(r['lat_p99'], '.1f')}"
                 f" | | |")
    lines.append(f"| syscalls/GB | {r['swapio_syscalls_per_gb']:.0f} "
                 f"(strace {num(sc['swapio'], '.0f')}) | "
                 f"strace {num(sc['fio'], '.0f')} | | |")
    return "\n".join(lines)


def describe(a):
    return (f"{machine(a.dir)}, io_uring, O_DIRECT, swapio buffers pinned"
            f"{' on THP' if a.huge else ' without THP (--no-huge)'}")


# ---------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser(
        prog="store_vs_fio.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    fio_args(p, "the store and fio's files live")
    p.add_argument("--size", type=parse_size, default=None,
                   help="bytes per put or get run (default 1G; 256M "
                   "with --quick, 64M with --smoke)")
    p.add_argument("--lat-size", type=parse_size, default=None,
                   help="bytes per latency run, in 4K reads (default "
                   "64M; 16M with --quick, 4M with --smoke)")
    p.add_argument("--rounds", "--pairs", type=int, default=None,
                   help="rounds per point (default 6; 3 with --quick, 1 "
                   "with --smoke)")
    p.add_argument("--points", type=parse_points, default=None,
                   help="value sizes and depths, BS:QD,... (default "
                   "64K:64,256K:32,1M:16; with --quick 64K:64,1M:16; "
                   "with --smoke 64K:64)")
    p.add_argument("--kinds", default="put,get,lat",
                   help="which kinds of point (default put,get,lat)")
    p.add_argument("--quick", action="store_true", help="a short run: "
                   "two points at 256M, 3 rounds")
    p.add_argument("--smoke", action="store_true", help="one round of one "
                   "point of each kind at 64M, for the tests")
    a = p.parse_args()
    pick = lambda v, full, quick, smoke: v if v is not None else (
        smoke if a.smoke else quick if a.quick else full)
    a.size = pick(a.size, 1 << 30, 256 << 20, 64 << 20)
    a.lat_size = pick(a.lat_size, 64 << 20, 16 << 20, 4 << 20)
    a.rounds = pick(a.rounds, 6, 3, 1)
    a.points = pick(a.points, list(DEFAULT_POINTS),
                    [DEFAULT_POINTS[0], DEFAULT_POINTS[2]],
                    [DEFAULT_POINTS[0]])
    a.kinds = [k for k in a.kinds.split(",") if k]
    if a.rounds < 1:
        p.error("--rounds must be at least 1")
    if not a.kinds or any(k not in ("put", "get", "lat") for k in a.kinds):
        p.error("--kinds: put, get or lat")
    check_tools(p, a, "store-vs-fio", ("fio", "fallocate"))
    return a


def points(a):
    pts = [Point(k, bs, qd, a.size) for k in ("put", "get")
           if k in a.kinds for bs, qd in a.points]
    if "lat" in a.kinds:
        pts.append(Point("lat", 4096, 1, a.lat_size))
    return pts


def estimate(a, pts):
    """Seconds: about 1 GB/s for puts and gets (a get point also puts),
    16 MB/s for 4K reads one at a time, 0.3 s to start a command."""
    secs = 0
    for pt in pts:
        rate = 16e6 if pt.kind == "lat" else 1e9
        per = pt.size / rate + 0.3
        secs += a.rounds * (3 + (pt.kind == "get")) * per
        secs += 2 * per if a.strace else 0
    return secs


def run_all(a, pts):
    if any(pt.kind == "get" for pt in pts):
        lay_out(a.swapio, a.get_file, a.size, RUN_TIMEOUT)
    if any(pt.kind == "lat" for pt in pts):
        lay_out(a.swapio, a.lat_file, a.lat_size, RUN_TIMEOUT)
    results = []
    for i, pt in enumerate(pts, 1):
        runs = measure(a, pt, i, len(pts))
        results.append(summarise(pt, runs, syscalls(a, pt)))
    return results


def main():
    a = parse_args()
    pts = points(a)
    print(f"store-vs-fio: {len(pts)} points x {a.rounds} rounds, about "
          f"{estimate(a, pts) / 60:.1f} min", file=sys.stderr)

    def work():
        a.put_file = os.path.join(a.tmp, "fio.put")
        a.get_file = os.path.join(a.tmp, "fio.get")
        a.lat_file = os.path.join(a.tmp, "lat")
        return run_all(a, pts)

    results, minutes = in_scratch("store-vs-fio", a, work)
    print(f"{describe(a)}; took {minutes:.1f} "
          f"min.\n\nRatios above 1 mean swapio moves more GB/s, spends "
          f"more CPU per GB or waits longer. A ratio means something only "
          f"outside its null line's range.\n")
    print("\n\n".join(table(r) for r in results))
    if a.json:
        save_json(a.json, describe(a), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
