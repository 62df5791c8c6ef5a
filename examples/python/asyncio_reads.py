#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Many swapio ops awaited from asyncio, without a thread per op.

    python3 asyncio_reads.py [--dir DIR] [--chunks N] [--kib K]

Writes N chunks (default 64) of K KiB (default 1024) of random bytes
concurrently with asyncio.gather over swapio ops, reads them back the
same way while another coroutine keeps ticking, and compares. An op is
awaitable: the event loop is woken through the handle's eventfd.
"""
import argparse
import asyncio
import os
import tempfile

import numpy as np
import swapio


async def ticker(stop):
    ticks = 0
    while not stop.is_set():              # the loop stays responsive
        ticks += 1
        await asyncio.sleep(0.001)
    return ticks


async def run(path, chunks, size):
    rng = np.random.default_rng(7)
    src = [swapio.empty((size,), np.uint8) for _ in range(chunks)]
    for b in src:
        b[:] = rng.integers(0, 256, size, dtype=np.uint8)
    dst = [swapio.empty((size,), np.uint8) for _ in range(chunks)]
    stop = asyncio.Event()
    tick = asyncio.ensure_future(ticker(stop))
    with swapio.Handle() as h, h.open(path, "w+") as f:
        wrote = await asyncio.gather(*(f.write_async(b, i * size)
                                       for i, b in enumerate(src)))
        read = await asyncio.gather(*(f.read_async(b, i * size)
                                      for i, b in enumerate(dst)))
    stop.set()
    ticks = await tick
    assert wrote == read == [size] * chunks, (wrote, read)
    if not all(np.array_equal(s, d) for s, d in zip(src, dst)):
        raise SystemExit("asyncio_reads: the data read back differs")
    print(f"{chunks} writes and {chunks} reads of {size >> 10} KiB "
          f"awaited; identical; the loop ticked {ticks} times meanwhile")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", default=tempfile.gettempdir())
    p.add_argument("--chunks", type=int, default=64)
    p.add_argument("--kib", type=int, default=1024)
    a = p.parse_args()
    path = os.path.join(a.dir, "asyncio_reads.bin")
    try:
        asyncio.run(run(path, a.chunks, a.kib << 10))
    finally:
        if os.path.exists(path):
            os.unlink(path)


if __name__ == "__main__":
    main()
