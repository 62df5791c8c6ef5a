#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Direct I/O from memory of each kind: aligned or not, on huge pages or
on 4 KiB pages, through the Python API, against fio on the same file.

With O_DIRECT, memory whose address is not on the device's DMA alignment
(512 bytes on a virtio disk) goes through swapio's bounce blocks: a copy,
then a direct request from the block. How fast that runs, and how fast a
direct request from the caller's own memory runs, depends on the pages
under it: a request is one segment per physically contiguous run, and a
device with a short segment list (a virtio queue takes 254) moves few
large segments faster than many 4 KiB ones. torch's CPU tensors sit on
4 KiB pages and 64 bytes past a page boundary, so every checkpoint writer
meets this.

Memory kinds (each --size bytes, filled once):
  huge        swapio.empty: page-aligned, on transparent huge pages
  4k          swapio.empty(huge=False): page-aligned, 4 KiB pages (where
              THP is "madvise" or "never", as here)
  huge+64     huge, the buffer 64 bytes in (every request bounced)
  4k+64       4k, the buffer 64 bytes in (every request bounced)
The 4k kind is also moved by a Handle(bounce=True) ("4k, bounce=True"):
every request copied through the bounce blocks although none must be.

Each round writes the file from each kind (created, preallocated, synced:
the sync inside the timing) and reads it back into each, in an order that
rotates from round to round, beside fio's sequential write and read of a
file of the same size (1 MiB blocks, depth 32, the handle's defaults) and
fio again as the null line. Figures: medians [min..max] of GB/s, the
median CPU s/GB (this process's for swapio, fio's own for fio) and the
bytes bounced per op, and how many physically contiguous runs the 4k
buffer's pages lie in (root only). Needs the swapio package and fio.
"""
import argparse
import os
import shutil
import sys
import time

import numpy as np

import common as c
import swapio


def kinds(size):
    out = {}
    for name, huge, skew in (("huge", True, 0), ("4k", False, 0),
                             ("huge+64", True, 64), ("4k+64", False, 64)):
        buf = swapio.empty((size + 4096,), np.uint8, pinned=False,
                           huge=huge)
        view = buf[skew:skew + size]
        view[:] = np.random.default_rng(len(out)).integers(
            0, 256, size, dtype=np.uint8)
        out[name] = view
    return out


def swapio_write(path, mem, bounce=False):
    if os.path.exists(path):
        os.unlink(path)     # a new file, as fio's writes make
    h = swapio.Handle(bounce=bounce)
    try:
        cpu, t = c.cpu_now(), time.perf_counter()
        with h.open(path, "w") as f:
            f.allocate(0, mem.size)
            f.write_async(mem, 0).wait()
            f.sync()
        t, cpu = time.perf_counter() - t, c.cpu_now() - cpu
        return {"gbps": mem.size / t / 1e9, "cpu": cpu / (mem.size / 1e9),
                "bounced": h.stats()["bounced_bytes"]}
    finally:
        h.close()


def swapio_read(path, mem, bounce=False):
    h = swapio.Handle(bounce=bounce)
    try:
        cpu, t = c.cpu_now(), time.perf_counter()
        with h.open(path, "r") as f:
            got = f.read_async(mem, 0).wait()
        t, cpu = time.perf_counter() - t, c.cpu_now() - cpu
        if got != mem.size:
            raise c.BenchError(f"read {got} bytes of {mem.size}")
        return {"gbps": mem.size / t / 1e9, "cpu": cpu / (mem.size / 1e9),
                "bounced": h.stats()["bounced_bytes"]}
    finally:
        h.close()


def fio(path, size, rw):
    cmd = c.fio_base("bounce", path, rw, "1M") + [
        f"--size={size}", "--ioengine=libaio", "--iodepth=32"]
    if rw == "write":
        cmd.append("--end_fsync=1")
        if os.path.exists(path):
            os.unlink(path)     # a new file, as swapio's writes make
    out, _ = c.run_cmd(cmd)
    f = c.fio_figures(out, rw)
    return {"gbps": f["gbps"], "cpu": f["cpu"], "bounced": 0}


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dir", default="/var/tmp",
                    help="where the scratch files go (default /var/tmp)")
    ap.add_argument("--size", type=c.parse_size, default=500 << 20,
                    help="bytes per transfer (default 500M)")
    ap.add_argument("--rounds", type=int, default=6,
                    help="rounds, each running every transfer once "
                    "(default 6)")
    ap.add_argument("--quiet", action="store_true",
                    help="no progress on stderr")
    a = ap.parse_args()
    if shutil.which("fio") is None:
        sys.exit("bounce: fio is not installed (apt-get install fio)")
    mem = kinds(a.size)

    def work():
        data = os.path.join(a.tmp, "data")
        ref = os.path.join(a.tmp, "fio")
        do = {"fio write": lambda: fio(ref, a.size, "write"),
              "fio write (null)": lambda: fio(ref, a.size, "write")}
        for k, m in mem.items():
            do[f"write from {k}"] = (lambda m=m: swapio_write(data, m))
        do["write from 4k, bounce=True"] = (
            lambda: swapio_write(data, mem["4k"], True))
        for k, m in mem.items():
            do[f"read into {k}"] = (lambda m=m: swapio_read(data, m))
        do["read into 4k, bounce=True"] = (
            lambda: swapio_read(data, mem["4k"], True))
        do["fio read"] = lambda: fio(ref, a.size, "read")
        do["fio read (null)"] = lambda: fio(ref, a.size, "read")
        names = list(do)
        runs = {k: [] for k in names}
        for r in range(a.rounds):
            if not a.quiet:
                print(f"\rbounce: round {r + 1}/{a.rounds} ", end="",
                      file=sys.stderr, flush=True)
            # Writes first (the reads need the data), each half rotated.
            w = [k for k in names if "write" in k]
            rd = [k for k in names if "write" not in k]
            for k in c.rotated(w, r) + c.rotated(rd, r):
                os.sync()
                runs[k].append(do[k]())
        return runs

    runs, minutes = c.in_scratch("bounce", a, work)
    print(f"{c.size_name(a.size)} per transfer, {a.rounds} rounds, "
          f"{minutes:.1f} min")
    print(c.runs_line("the 4k buffer", [(mem["4k"].ctypes.data,
                                          mem["4k"].nbytes)]))
    print("| transfer | GB/s median [min..max] | CPU s/GB | MiB bounced |")
    print("|---|---|---:|---:|")
    for k, rs in runs.items():
        print(f"| {k} | {c.spread(r['gbps'] for r in rs)} | "
              f"{c.med(r['cpu'] for r in rs):.3f} | "
              f"{rs[0]['bounced'] >> 20} |")


if __name__ == "__main__":
    main()
