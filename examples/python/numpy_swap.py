#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NumPy arrays to a file and back with swapio, synchronously and not.

    python3 numpy_swap.py [--dir DIR] [--mib N]

Writes N MiB (default 256) of random float32 in pinned, page-aligned
memory to a file, reads it back while "computing", and checks every byte.
"""
import argparse
import os
import tempfile
import time

import numpy as np
import swapio


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", default=tempfile.gettempdir())
    p.add_argument("--mib", type=int, default=256)
    a = p.parse_args()
    n = a.mib << 18                               # float32s in N MiB

    src = swapio.empty((n,), np.float32)          # pinned, aligned, THP
    src[:] = np.random.default_rng(1).standard_normal(n, dtype=np.float32)
    dst = swapio.empty((n,), np.float32)
    path = os.path.join(a.dir, "numpy_swap.bin")

    with swapio.Handle() as h, h.open(path, "w+") as f:
        print(f"engine {h.engine}; O_DIRECT: {f.direct}")
        t0 = time.monotonic()
        assert f.pwrite(src, 0) == src.nbytes     # sync: bytes written
        t1 = time.monotonic()
        op = f.read_async(dst, 0)                 # returns at once
        busy = float(np.sum(src[:1024]))          # ... compute meanwhile
        assert op.wait() == dst.nbytes            # bytes read, or raises
        t2 = time.monotonic()
    os.unlink(path)

    if not np.array_equal(src, dst):
        raise SystemExit("numpy_swap: the data read back differs")
    gb = src.nbytes / 1e9
    print(f"{a.mib} MiB: write {gb / (t1 - t0):.2f} GB/s, read "
          f"{gb / (t2 - t1):.2f} GB/s; identical (checksum {busy:.3f})")


if __name__ == "__main__":
    main()
