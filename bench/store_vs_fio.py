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

COUNTED = ("io_uring_enter", "io_submit", "io_getevents", "io_pgetevents",
           "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2")
ORDERS = ("SFN", "NFS", "FNS", "SNF", "NSF", "FSN")
DEFAULT_POINTS = ((64 << 10, 64), (256 << 10, 32), (1 << 20, 16))
STRACE_MAX = 256 << 20
RUN_TIMEOUT = 600


class BenchError(Exception):
    pass


def parse_size(s):
    units = {"k": 10, "m": 20, "g": 30}
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
    cmd = ["fio", "--name=store-vs-fio", f"--filename={fio_file(a, pt)}",
           f"--rw={pt.fio_rw()}", f"--bs={pt.bs}", f"--iodepth={pt.qd}",
           "--ioengine=io_uring", "--direct=1", f"--size={size}",
           "--randrepeat=0", "--buffer_compress_percentage=0",
           "--clat_percentiles=1", "--lat_percentiles=1",
           "--output-format=json"]
    return cmd


def run_cmd(cmd):
    """Run @cmd; its stdout and the CPU seconds its process tree used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out: {' '.join(cmd)}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode:
        raise BenchError(f"exit {p.returncode}: {' '.join(cmd)}\n{p.stderr}")
    cpu = (after.ru_utime - before.ru_utime +
           after.ru_stime - before.ru_stime)
    return p.stdout, cpu


def parse_json(out):
    # fio may print notes before its JSON.
    return json.loads(out[out.index("{"):])


def run_swapio(a, pt):
    out, child = run_cmd(swapio_cmd(a, pt, pt.size))
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
        out, child = run_cmd(fio_cmd(a, pt, pt.size))
    finally:
        if pt.kind == "put" and os.path.exists(a.put_file):
            os.unlink(a.put_file)
    job = parse_json(out)["jobs"][0]
    io = job[pt.phase()]
    if not io["io_bytes"] or not io["runtime"]:
        raise BenchError(f"fio moved nothing at {pt}")
    gb = io["io_bytes"] / 1e9
    cpu = (job["usr_cpu"] + job["sys_cpu"]) / 100 * job["job_runtime"] / 1e3
    pct = lambda k, p: io[k].get("percentile", {}).get(p, 0) / 1e3
    return {"gbps": gb / (io["runtime"] / 1e3), "cpu": cpu / gb,
            "child_cpu": child / gb,
            "p50": pct("clat_ns", "50.000000"),
            "p99": pct("clat_ns", "99.000000"),
            "lat_p50": pct("lat_ns", "50.000000"),
            "lat_p99": pct("lat_ns", "99.000000")}


def strace_per_gb(a, cmd, nbytes, before=None):
    """I/O system calls per GB of one run of @cmd under strace -c -f."""
    with tempfile.NamedTemporaryFile(dir=a.tmp, suffix=".strace") as out:
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


def syscalls(a, pt):
    if not a.strace:
        return None, None
    short = min(pt.size, STRACE_MAX)
    mine = None
    if pt.kind != "get":
        mine = strace_per_gb(a, swapio_cmd(a, pt, short), short)
    before = (lambda: fallocate(a.put_file, short)) \
        if pt.kind == "put" else None
    try:
        fio = strace_per_gb(a, fio_cmd(a, pt, short), short, before)
    finally:
        if os.path.exists(a.put_file):
            os.unlink(a.put_file)
    return mine, fio


# ---------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------

def lay_out(a, path, size):
    """Write @path once with swapio, so that reads find real data."""
    subprocess.run([a.swapio, "bench", "--file", path, "--size", str(size),
                    "--mode", "write", "--keep", "--json"],
                   check=True, capture_output=True, timeout=RUN_TIMEOUT)


def measure(a, pt, idx, total):
    runs = {"S": [], "F": [], "N": []}
    do = {"S": lambda: run_swapio(a, pt), "F": lambda: run_fio(a, pt),
          "N": lambda: run_fio(a, pt)}
    for r in range(a.rounds):
        order = ORDERS[r % len(ORDERS)]
        if not a.quiet:
            print(f"\r[{idx}/{total}] {pt}: round {r + 1}/{a.rounds} ",
                  end="", file=sys.stderr, flush=True)
        for k in order:
            runs[k].append(do[k]())
    return runs


def med(xs):
    return statistics.median(xs) if xs else None


def ratios(num, den, key):
    return [n[key] / d[key] for n, d in zip(num, den) if d[key] > 0]


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

def spread(xs):
    if not xs:
        return "n/a"
    return f"{med(xs):.2f} [{min(xs):.2f}..{max(xs):.2f}]"


def num(v, fmt):
    return "n/a" if v is None else format(v, fmt)


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
    fs = subprocess.run(["stat", "-f", "-c", "%T", a.dir],
                        capture_output=True, text=True).stdout.strip()
    fio = subprocess.run(["fio", "--version"], capture_output=True,
                         text=True).stdout.strip()
    return (f"{time.strftime('%Y-%m-%d %H:%M')}, Linux "
            f"{platform.release()}, {os.cpu_count()} CPUs, {a.dir} on {fs}, "
            f"{fio}, io_uring, O_DIRECT, swapio buffers pinned"
            f"{' on THP' if a.huge else ' without THP (--no-huge)'}")


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
        prog="store-vs-fio", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default="/tmp", help="where the store and "
                   "fio's files live (default /tmp)")
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
    p.add_argument("--huge", action="store_true", help="let swapio's "
                   "buffers use transparent huge pages (fio's cannot)")
    p.add_argument("--no-strace", dest="strace", action="store_false",
                   help="skip the strace runs")
    p.add_argument("--swapio", default=None, help="the swapio binary")
    p.add_argument("--json", metavar="FILE", help="also write every "
                   "run's figures to FILE")
    p.add_argument("--quiet", action="store_true", help="no progress")
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
    a.swapio = a.swapio or find_swapio()
    if a.rounds < 1:
        p.error("--rounds must be at least 1")
    if not a.kinds or any(k not in ("put", "get", "lat") for k in a.kinds):
        p.error("--kinds: put, get or lat")
    if not a.swapio or not os.access(a.swapio, os.X_OK):
        p.error("no swapio binary: build it, or give --swapio")
    for tool in ("fio", "fallocate"):
        if not shutil.which(tool):
            p.error(f"{tool} is not installed")
    if a.strace and not shutil.which("strace"):
        print("store-vs-fio: strace not found; no strace counts",
              file=sys.stderr)
        a.strace = False
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
        lay_out(a, a.get_file, a.size)
    if any(pt.kind == "lat" for pt in pts):
        lay_out(a, a.lat_file, a.lat_size)
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
    a.tmp = tempfile.mkdtemp(prefix="swapio-store-vs-fio-", dir=a.dir)
    a.put_file = os.path.join(a.tmp, "fio.put")
    a.get_file = os.path.join(a.tmp, "fio.get")
    a.lat_file = os.path.join(a.tmp, "lat")
    started = time.monotonic()
    try:
        results = run_all(a, pts)
    except (BenchError, subprocess.CalledProcessError) as e:
        print(f"\nstore-vs-fio: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstore-vs-fio: interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(a.tmp, ignore_errors=True)
    if not a.quiet:
        print("\r\033[K", end="", file=sys.stderr)
    print(f"{describe(a)}; took {(time.monotonic() - started) / 60:.1f} "
          f"min.\n\nRatios above 1 mean swapio moves more GB/s, spends "
          f"more CPU per GB or waits longer. A ratio means something only "
          f"outside its null line's range.\n")
    print("\n\n".join(table(r) for r in results))
    if a.json:
        with open(a.json, "w") as fp:
            json.dump({"setup": describe(a), "results": results}, fp,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
