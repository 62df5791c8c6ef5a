#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Python API against the C command (swapio bench), on the same file.

Each point runs three processes per round: the Python API (P), the C
command as reference (C) and the C command again as the null (N), in
orders that cycle (PCN NCP CNP PNC NPC CPN), so that each goes first as
often as last. Results: the median of per-round ratios P/C and N/C with
their range; a P/C ratio means something only outside the null's range.

Throughput points move --size bytes in the C command's own shape: ops of
op_bytes (64 MiB, or less for a smaller file) from a ring of
ops_in_flight buffers, read from swapio's pinned THP memory in both tools
(swapio.empty in Python, as a NumPy array), O_DIRECT, at 1 MiB and 8 MiB
blocks. CPU s/GB is getrusage of the whole process over the phase.

Per-op overhead: ops of 4 KiB to 256 KiB read from the page cache (so
that the I/O itself costs little), one in flight, --ops of them: the
Python time per op minus the C command's, in microseconds, for the async
form (read_async + wait) and the sync form (pread).

Everything lies under --dir and is deleted at the end. Needs the swapio
package importable (pip install .) and build*/tools/swapio (or --swapio).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import cpu_now, find_swapio, orders, spread

ORDERS = orders("P", "C", "N")


def child(args):
    """One Python measurement in a process of its own; prints JSON."""
    import numpy as np

    import swapio

    direct = not args.buffered
    with swapio.Handle(block_size=args.bs, direct=direct) as h, \
            h.open(args.file, "r+") as f:
        op_bytes, window = args.op_bytes, args.window
        bufs = [swapio.empty(op_bytes, np.uint8) for _ in range(window)]
        if args.mode == "write":
            rng = np.random.default_rng(1)
            for b in bufs:
                b[:] = rng.integers(0, 256, op_bytes, dtype=np.uint8)
        xfer = f.write_async if args.mode == "write" else f.read_async
        nops = max(1, args.size // op_bytes) * args.loops
        span = max(1, args.size // op_bytes)
        sync = f.pwrite if args.mode == "write" else f.pread
        ops = [None] * window
        c0, t0 = cpu_now(), time.perf_counter()
        if args.sync:
            for i in range(nops):
                sync(bufs[0], (i % span) * op_bytes)
        else:
            for i in range(nops):
                k = i % window
                if ops[k] is not None:
                    ops[k].wait()
                ops[k] = xfer(bufs[k], (i % span) * op_bytes)
            for op in ops:
                if op is not None:
                    op.wait()
        secs, cpu = time.perf_counter() - t0, cpu_now() - c0
    nbytes = nops * op_bytes
    print(json.dumps({"gbps": nbytes / secs / 1e9, "seconds": secs,
                      "cpu_s_per_gb": cpu / (nbytes / 1e9), "ops": nops}))


def run_c(a, mode, bs, size, loops=1, buffered=False):
    cmd = [a.swapio, "bench", "--file", a.file, "--size", str(size),
           "--block-size", str(bs), "--mode", mode, "--loops", str(loops),
           "--keep", "--json"]
    if buffered:
        cmd.append("--no-direct")
    out = subprocess.run(cmd, check=True, capture_output=True,
                         text=True).stdout
    r = json.loads(out[out.index("{"):])
    ph = r[mode]
    ph["op_bytes"], ph["window"] = r["op_bytes"], r["ops_in_flight"]
    ph["ops"] = ph["bytes"] // r["op_bytes"]
    return ph


def run_py(a, mode, bs, size, shape, loops=1, buffered=False, sync=False):
    cmd = [sys.executable, os.path.abspath(__file__), "--child",
           "--file", a.file, "--mode", mode, "--bs", str(bs),
           "--size", str(size), "--loops", str(loops),
           "--op-bytes", str(shape["op_bytes"]),
           "--window", str(shape["window"])]
    if buffered:
        cmd.append("--buffered")
    if sync:
        cmd.append("--sync")
    out = subprocess.run(cmd, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


def throughput(a):
    print("\n== throughput: %s of %d MiB, O_DIRECT, %d rounds per point"
          % (a.file, a.size >> 20, a.rounds))
    print("%-6s %-5s %8s %8s %8s %24s %24s %24s" % (
        "mode", "bs", "P GB/s", "C GB/s", "P cpu/GB", "P/C GB/s",
        "N/C GB/s (null)", "P/C cpu s/GB"))
    for mode in ("write", "read"):
        for bs in (1 << 20, 8 << 20):
            shape = run_c(a, mode, bs, a.size)     # warm-up, and its shape
            rp, rn, rcpu, P, C = [], [], [], [], []
            for i in range(a.rounds):
                got = {}
                for who in ORDERS[i % len(ORDERS)]:
                    got[who] = (run_py(a, mode, bs, a.size, shape)
                                if who == "P" else run_c(a, mode, bs, a.size))
                rp.append(got["P"]["gbps"] / got["C"]["gbps"])
                rn.append(got["N"]["gbps"] / got["C"]["gbps"])
                rcpu.append(got["P"]["cpu_s_per_gb"] /
                            got["C"]["cpu_s_per_gb"])
                P.append(got["P"])
                C.append(got["C"])
            print("%-6s %-5s %8.3f %8.3f %8.4f %24s %24s %24s" % (
                mode, "%dM" % (bs >> 20),
                statistics.median(p["gbps"] for p in P),
                statistics.median(c["gbps"] for c in C),
                statistics.median(p["cpu_s_per_gb"] for p in P),
                spread(rp, 3), spread(rn, 3), spread(rcpu, 3)))
            sys.stdout.flush()


def overhead(a):
    print("\n== per-op overhead: reads from the page cache, 1 op in "
          "flight, %d ops, median of %d rounds" % (a.ops, a.rounds))
    print("%-7s %10s %12s %12s %14s %14s" % (
        "op", "C us/op", "P async", "P sync", "async - C us",
        "sync - C us"))
    for size in (4 << 10, 16 << 10, 64 << 10, 256 << 10):
        c, pa, ps = [], [], []
        for _ in range(a.rounds):
            r = run_c(a, "read", 1 << 20, size, a.ops, True)
            c.append(r["seconds"] / r["ops"] * 1e6)
            shape = {"op_bytes": size, "window": 1}
            p = run_py(a, "read", 1 << 20, size, shape, a.ops, True)
            pa.append(p["seconds"] / p["ops"] * 1e6)
            p = run_py(a, "read", 1 << 20, size, shape, a.ops, True, True)
            ps.append(p["seconds"] / p["ops"] * 1e6)
        mc = statistics.median(c)
        print("%-7s %10.2f %12.2f %12.2f %14.2f %14.2f" % (
            "%dK" % (size >> 10), mc, statistics.median(pa),
            statistics.median(ps), statistics.median(pa) - mc,
            statistics.median(ps) - mc))
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--size", type=int, default=1 << 30)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--ops", type=int, default=5000)
    ap.add_argument("--swapio", default=None)
    # --child: one Python measurement (used by the parent).
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for opt in ("--file", "--mode"):
        ap.add_argument(opt, help=argparse.SUPPRESS)
    for opt in ("--bs", "--loops", "--op-bytes", "--window"):
        ap.add_argument(opt, type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--buffered", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--sync", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a)
    a.swapio = a.swapio or find_swapio()
    if not a.swapio:
        sys.exit("py-vs-c: no swapio command; build first or pass --swapio")
    tmp = tempfile.mkdtemp(prefix="py-vs-c.", dir=a.dir)
    a.file = os.path.join(tmp, "bench.swp")
    try:
        import swapio
        print("swapio %s (%s), C command %s, python %s" % (
            swapio.__version__, swapio.__file__, a.swapio,
            sys.version.split()[0]))
        run_c(a, "write", 1 << 20, a.size)         # lay the file out
        throughput(a)
        overhead(a)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
