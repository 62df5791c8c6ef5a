#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""swapio's device path on a real GPU: correctness, then GB/s and CPU s/GB
beside DeepSpeed's aio_handle and KvikIO, on the same tensors, in one run.

Needs a CUDA GPU, torch with CUDA, the swapio package (pip install .), and
for the comparisons DeepSpeed (its async_io op built: DS_BUILD_AIO=1, or
JIT) and KvikIO (pip install kvikio-cu12 / -cu13). A system that is
missing is named and left out; without a GPU the script says so and exits
with status 2 before doing anything.

1. Check: torch CUDA tensors of odd sizes (1 B to 64 MiB + 5) at odd
   offsets, random data, written and read back bit for bit through every
   swapio path (staging, gds, auto) and the byte-for-byte file content
   read back by plain os.pread; then swapio's file read by DeepSpeed and
   KvikIO into CUDA tensors, so that all three agree on the bytes.
2. Measure: one CUDA tensor of --size bytes (1 GiB), written then read,
   O_DIRECT files under --dir. For each peer P (DeepSpeed's aio_handle
   with the CUDA tensor, its bounce-buffer path; KvikIO's CuFile) and for
   swapio's other path, --pairs rounds in ABBA order (swapio, P, P,
   swapio, then reversed), the median of the per-pair ratios P/swapio
   with its range, and beside it the null line, swapio against itself in
   the same order: a ratio means something only outside the null's range
   (the measuring rules of docs/PERFORMANCE.md). GB/s is 10^9 bytes per second
   between torch.cuda.synchronize() calls; CPU s/GB is getrusage of the
   whole process (every thread) over the transfer.

--json prints the results as one JSON object as well.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

from common import cpu_now

SIZES = (1, 4095, 4097, (1 << 20) + 13, (64 << 20) + 5)
OFFSETS = (0, 7, 4096)


def die(msg, code=2):
    print("bench/gpu.py: " + msg, file=sys.stderr)
    sys.exit(code)


def need_gpu():
    try:
        import torch
    except ImportError:
        die("torch is not installed; this benchmark needs torch with CUDA")
    if not torch.cuda.is_available():
        die("no CUDA GPU here (torch.cuda.is_available() is False, torch "
            "%s); nothing to check or measure" % torch.__version__)
    try:
        import swapio  # noqa: F401
    except ImportError:
        die("the swapio package is not importable (pip install .)")
    return torch


# ------------------------------------------------------------- systems

class Swapio:
    def __init__(self, path_kind, bs, qd):
        import swapio
        self.name = "swapio-" + path_kind
        self.h = swapio.Handle(block_size=bs, queue_depth=qd,
                               gpu_path=path_kind)

    def write(self, t, path, off=0):
        with self.h.open(path, "a") as f:
            assert f.pwrite(t, off) == t.numel() * t.element_size()

    def read(self, t, path, off=0):
        with self.h.open(path, "r") as f:
            assert f.pread(t, off) == t.numel() * t.element_size()

    def note(self):
        return self.h.gpu_note


class DeepSpeed:
    name = "deepspeed-aio"

    def __init__(self, bs, qd):
        from deepspeed.ops.op_builder import AsyncIOBuilder
        if not AsyncIOBuilder().is_compatible():
            raise ImportError("DeepSpeed's async_io op cannot build here")
        self.h = AsyncIOBuilder().load(verbose=False).aio_handle(
            bs, qd, False, True, 1)

    def write(self, t, path, off=0):
        assert self.h.sync_pwrite(t, path, off) >= 0

    def read(self, t, path, off=0):
        assert self.h.sync_pread(t, path, off) >= 0

    def note(self):
        return "aio_handle, CUDA tensor through its bounce buffer"


class KvikIO:
    name = "kvikio"

    def __init__(self):
        import kvikio
        self.kvikio = kvikio

    def write(self, t, path, off=0):
        with self.kvikio.CuFile(path, "r+" if os.path.exists(path)
                                else "w") as f:
            f.write(t, file_offset=off)

    def read(self, t, path, off=0):
        with self.kvikio.CuFile(path, "r") as f:
            f.read(t, file_offset=off)

    def note(self):
        return "CuFile, compat mode %s" % os.environ.get(
            "KVIKIO_COMPAT_MODE", "auto")


def peers(args):
    out = []
    for make in (lambda: DeepSpeed(args.bs, args.qd), KvikIO):
        try:
            out.append(make())
        except Exception as e:  # ImportError, a build failure
            print("# left out: %s" % e)
    return out


# --------------------------------------------------------------- check

def rand_cuda(torch, n, seed):
    g = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randint(0, 256, (n,), dtype=torch.uint8,
                         generator=g).cuda()


def check(torch, args, others):
    bad = 0
    for kind in ("staging", "gds", "auto"):
        s = Swapio(kind, args.bs, args.qd)
        for i, n in enumerate(SIZES):
            for off in OFFSETS:
                p = os.path.join(args.dir, "check-%s-%d-%d" % (kind, n, off))
                src = rand_cuda(torch, n, i * 10 + off)
                dst = torch.zeros_like(src)
                s.write(src, p, off)
                fd = os.open(p, os.O_RDONLY)
                try:
                    disk = os.pread(fd, n, off)
                finally:
                    os.close(fd)
                s.read(dst, p, off)
                torch.cuda.synchronize()
                ok = torch.equal(src, dst) and \
                    disk == src.cpu().numpy().tobytes()
                for o in others if off == 0 else ():
                    theirs = torch.zeros_like(src)
                    o.read(theirs, p, 0)
                    torch.cuda.synchronize()
                    ok = ok and torch.equal(src, theirs)
                if not ok:
                    bad += 1
                    print("MISMATCH: %s, %d bytes at %d" % (kind, n, off))
                os.unlink(p)
        print("# check %-8s %s; path note: %s" % (
            kind, "ok" if not bad else "FAILED",
            s.note() or "(none)"))
    return bad


# ------------------------------------------------------------- measure

def one(torch, system, t, path, mode):
    n = t.numel()
    torch.cuda.synchronize()
    c0, t0 = cpu_now(), time.perf_counter()
    (system.write if mode == "write" else system.read)(t, path)
    torch.cuda.synchronize()
    secs, cpu = time.perf_counter() - t0, cpu_now() - c0
    return n / secs / 1e9, cpu / (n / 1e9)


def pairs(torch, a, b, t, path, mode, rounds):
    """ABBA: per round (a, b, b, a) or (b, a, a, b); ratio b/a of the
    round's means, GB/s and CPU s/GB."""
    gbps, cpu = [], []
    for r in range(rounds):
        order = (a, b, b, a) if r % 2 == 0 else (b, a, a, b)
        res = {id(a): [], id(b): []}
        for s in order:
            res[id(s)].append(one(torch, s, t, path, mode))
        ga = statistics.mean(x[0] for x in res[id(a)])
        gb = statistics.mean(x[0] for x in res[id(b)])
        ca = statistics.mean(x[1] for x in res[id(a)])
        cb = statistics.mean(x[1] for x in res[id(b)])
        gbps.append((gb / ga, ga, gb))
        cpu.append(cb / ca if ca else float("nan"))
    return gbps, cpu


def summary(label, gbps, cpu):
    ratios = sorted(x[0] for x in gbps)
    med = statistics.median(ratios)
    a = statistics.median(x[1] for x in gbps)
    b = statistics.median(x[2] for x in gbps)
    line = ("%-34s GB/s %6.2f vs %6.2f  ratio %.2f [%.2f-%.2f]  "
            "CPU ratio %.2f" % (label, b, a, med, ratios[0], ratios[-1],
                                statistics.median(cpu)))
    print(line)
    return {"label": label, "gbps_peer": b, "gbps_swapio": a,
            "ratio_median": med, "ratio_min": ratios[0],
            "ratio_max": ratios[-1], "cpu_ratio": statistics.median(cpu)}


def measure(torch, args, others):
    results = []
    t = rand_cuda(torch, args.size, 7)
    path = os.path.join(args.dir, "bench")
    base = Swapio("staging", args.bs, args.qd)
    twin = Swapio("staging", args.bs, args.qd)
    alt = Swapio("gds", args.bs, args.qd)
    base.write(t, path)         # the file exists, full size, for reads
    for mode in ("write", "read"):
        print("# %s, %d bytes, %d pairs (ratio: peer / swapio-staging)"
              % (mode, args.size, args.pairs))
        g, c = pairs(torch, base, twin, t, path, mode, args.pairs)
        results.append(summary("null: swapio-staging itself", g, c))
        for p in [alt] + others:
            g, c = pairs(torch, base, p, t, path, mode, args.pairs)
            results.append(summary("%s %s" % (p.name, mode), g, c))
        for s in [base, alt] + others:
            print("#   %s: %s" % (s.name, s.note()))
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=None,
                    help="directory on the NVMe drive (default: a new "
                    "temporary one under $TMPDIR)")
    ap.add_argument("--size", type=int, default=1 << 30)
    ap.add_argument("--bs", type=int, default=1 << 20)
    ap.add_argument("--qd", type=int, default=32)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch = need_gpu()
    made = args.dir is None
    args.dir = args.dir or tempfile.mkdtemp(prefix="swapio-gpu-")
    print("# %s, torch %s" % (torch.cuda.get_device_name(0),
                              torch.__version__))
    others = peers(args)
    try:
        bad = 0 if args.no_check else check(torch, args, others)
        results = measure(torch, args, others)
    finally:
        if made:
            shutil.rmtree(args.dir, ignore_errors=True)
    if args.json:
        print(json.dumps({"check_failures": bad, "results": results}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
