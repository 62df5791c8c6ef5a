#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""swapio.deepspeed.aio_handle against DeepSpeed's own async_io op.

DeepSpeed's op is compiled from the DeepSpeed installed beside torch, by
its own builder (AsyncIOBuilder().load(): g++, ninja, libaio-dev and
torch's headers; the first run takes a few minutes, later runs reuse
TORCH_EXTENSIONS_DIR). Both handles are made with the same constructor
arguments and move the same tensor to and from the same file with
sync_pwrite and sync_pread (O_DIRECT in both).

Each round runs swapio (S), DeepSpeed (D) and DeepSpeed again as the null
(N), in orders that cycle (SDN NDS DNS SND NSD DSN), so that each goes
first as often as last. Reported: the median of per-round ratios S/D and
N/D with their range; S/D means something only outside the null's range.
CPU s/GB is getrusage of this process (every thread) over the call.

Memory kinds:
  own     each library's own new_cpu_locked_tensor (what the swappers use)
  shared  one DeepSpeed locked tensor given to both (like with like)
  plain   one torch.empty tensor given to both (caller memory: DeepSpeed
          copies it through a bounce buffer, swapio uses it in place)

Every read is compared with the data written, bit for bit, and the first
write of each library in each point is read back through the page cache
and compared. First, each library moves a tensor whose size is no
multiple of 512 bytes, and the script reports what reached the file. Everything lies
under --dir and is deleted at the end.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

from common import cpu_now, orders, spread

ORDERS = orders("S", "D", "N")


def load_deepspeed_op():
    import logging
    logging.getLogger("DeepSpeed").setLevel(logging.ERROR)
    from deepspeed.ops.op_builder import AsyncIOBuilder
    b = AsyncIOBuilder()
    if not b.is_compatible(verbose=True):
        sys.exit("vs-deepspeed: DeepSpeed's async_io op is not buildable "
                 "here (see the messages above)")
    t = time.monotonic()
    op = b.load(verbose=False)
    return op, time.monotonic() - t


def timed(fn, nbytes):
    c, t = cpu_now(), time.perf_counter()
    n = fn()
    dt, dc = time.perf_counter() - t, cpu_now() - c
    if n < 0:
        raise RuntimeError("op failed: %d" % n)
    return nbytes / dt / 1e9, dc / (nbytes / 1e9)


def same_as_file(path, t):
    """Whether the file holds exactly the tensor's bytes (read through the
    page cache, independently of both libraries)."""
    with open(path, "rb") as f:
        data = f.read()
    return data == t.view(sys.modules["torch"].uint8).numpy().tobytes()


def odd_size_check(ds, sds, tmp, bad):
    """Each library writes and reads a tensor whose size is no multiple of
    512 or of the block: the bytes that reach the file and come back."""
    torch = sys.modules["torch"]
    path = os.path.join(tmp, "odd.tensor")
    n = 3_000_001
    src = torch.randint(0, 256, (n,), dtype=torch.uint8)
    for name, mk in (("swapio", sds.aio_handle), ("DeepSpeed", ds.aio_handle)):
        h = mk(1 << 20, 8, False, True, 1)
        t = h.new_cpu_locked_tensor(n, src)
        t.copy_(src)
        if os.path.exists(path):
            os.unlink(path)
        rw = h.sync_pwrite(t, path)
        wrote = os.path.getsize(path)
        wok = same_as_file(path, src)
        with open(path, "wb") as f:
            f.write(memoryview(src.numpy()))
        t.zero_()
        rr = h.sync_pread(t, path)
        rok = torch.equal(t, src)
        print("odd size %d B, 1M blocks: %-9s sync_pwrite returned %d, "
              "file has %d B, %s; sync_pread returned %d, %s" % (
                  n, name, rw, wrote, "correct" if wok else "WRONG", rr,
                  "correct" if rok else "WRONG"))
        if name == "swapio" and not (wok and rok):
            bad.append("swapio odd size")
        h.free_cpu_locked_tensor(t)
    os.unlink(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default="/tmp",
                    help="where the test file goes (default /tmp)")
    ap.add_argument("--numel", type=int, default=100_000_000,
                    help="tensor elements (default 1e8: DeepSpeed's "
                    "offload_param buffer_size); the size in bytes must "
                    "be a multiple of 512, see the odd-size line")
    ap.add_argument("--dtype", default="float16",
                    help="tensor dtype (default float16)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--bs", default="1,8", help="block sizes in MiB")
    ap.add_argument("--qd", default="8,128", help="queue depths")
    ap.add_argument("--kinds", default="own,shared,plain",
                    help="memory kinds (see the description)")
    ap.add_argument("--modes", default="write,read")
    a = ap.parse_args()

    import torch
    import swapio
    import swapio.deepspeed as sds

    ds, build_s = load_deepspeed_op()
    import deepspeed
    dtype = getattr(torch, a.dtype)
    numel = a.numel
    nbytes = numel * torch.empty(0, dtype=dtype).element_size()
    if nbytes % 512:
        sys.exit("vs-deepspeed: --numel gives %d bytes, no multiple of 512: "
                 "DeepSpeed's op would not move them all" % nbytes)
    tmp = tempfile.mkdtemp(prefix="vs-deepspeed.", dir=a.dir)
    path = os.path.join(tmp, "swap.tensor")
    print("swapio %s (%s engine), DeepSpeed %s (async_io op from %s, "
          "loaded in %.1f s), torch %s" % (
              swapio.__version__, sds.aio_handle().engine, deepspeed.__version__,
              getattr(ds, "__file__", "?"), build_s, torch.__version__))
    print("tensor: %d x %s = %.1f MB, %s, O_DIRECT, %d rounds per point, "
          "orders %s" % (numel, a.dtype, nbytes / 1e6, path, a.rounds,
                         " ".join(ORDERS)))
    gen = torch.Generator().manual_seed(1)
    src = torch.randint(-2**15, 2**15, (numel,), dtype=torch.int16,
                        generator=gen).view(dtype) \
        if dtype.itemsize == 2 else \
        torch.randint(-2**31, 2**31 - 1, (numel,), dtype=torch.int32,
                      generator=gen).view(dtype)
    plain = torch.empty(numel, dtype=dtype)
    bad = []
    try:
        odd_size_check(ds, sds, tmp, bad)
        print("%-5s %-6s %3s %4s %8s %8s %9s %9s %22s %22s %22s %22s" % (
            "mode", "kind", "bs", "qd", "S GB/s", "D GB/s", "S cpu/GB",
            "D cpu/GB", "S/D GB/s", "N/D GB/s (null)", "S/D cpu s/GB",
            "N/D cpu s/GB (null)"))
        for bs_mib in [int(x) for x in a.bs.split(",")]:
            for qd in [int(x) for x in a.qd.split(",")]:
                args = (bs_mib << 20, qd, False, True, 1)
                hs, hd = sds.aio_handle(*args), ds.aio_handle(*args)
                ds_locked = hd.new_cpu_locked_tensor(numel, src)
                sw_locked = hs.new_cpu_locked_tensor(numel, src)
                for kind in a.kinds.split(","):
                    buf = {"own": (sw_locked, ds_locked),
                           "shared": (ds_locked, ds_locked),
                           "plain": (plain, plain)}[kind]
                    for mode in a.modes.split(","):
                        point(a, mode, kind, bs_mib, qd, hs, hd, buf, src,
                              path, nbytes, bad)
                hd.free_cpu_locked_tensor(ds_locked)
                hs.free_cpu_locked_tensor(sw_locked)
                del hs, hd
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if bad:
        sys.exit("vs-deepspeed: DATA MISMATCH in %s" % ", ".join(bad))
    print("every read matched the data written")


def point(a, mode, kind, bs_mib, qd, hs, hd, buf, src, path, nbytes, bad):
    torch = sys.modules["torch"]
    handles = {"S": (hs, buf[0]), "D": (hd, buf[1]), "N": (hd, buf[1])}
    if mode == "read":
        with open(path, "wb") as f:
            f.write(memoryview(src.view(torch.uint8).numpy()))
    res = {k: [] for k in "SDN"}
    checked = set()
    for i in range(a.rounds):
        for who in ORDERS[i % len(ORDERS)]:
            h, t = handles[who]
            if mode == "write":
                t.copy_(src)
                res[who].append(timed(lambda: h.sync_pwrite(t, path),
                                      nbytes))
                if who not in checked:
                    checked.add(who)
                    if not same_as_file(path, src):
                        bad.append("%s write %s %dM qd%d" % (who, kind,
                                                           bs_mib, qd))
            else:
                t.zero_()
                res[who].append(timed(lambda: h.sync_pread(t, path),
                                      nbytes))
                if not torch.equal(t.view(torch.uint8),
                                   src.view(torch.uint8)):
                    bad.append("%s read %s %dM qd%d" % (who, kind, bs_mib,
                                                      qd))
    S, D, N = res["S"], res["D"], res["N"]
    rs = [s[0] / d[0] for s, d in zip(S, D)]
    rn = [n[0] / d[0] for n, d in zip(N, D)]
    rc = [s[1] / d[1] for s, d in zip(S, D)]
    rnc = [n[1] / d[1] for n, d in zip(N, D)]
    print("%-5s %-6s %2dM %4d %8.3f %8.3f %9.4f %9.4f %22s %22s %22s %22s" % (
        mode, kind, bs_mib, qd, statistics.median(x[0] for x in S),
        statistics.median(x[0] for x in D),
        statistics.median(x[1] for x in S),
        statistics.median(x[1] for x in D), spread(rs, 3), spread(rn, 3),
        spread(rc, 3), spread(rnc, 3)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
