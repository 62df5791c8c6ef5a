"""swapio as a secondary tier of vLLM's tiered KV-cache offloading.

vLLM (0.32, ``vllm/v1/kv_offload/tiering``) keeps offloaded KV blocks in
a host-memory primary tier and can put secondary tiers behind it. This
module is one: :class:`SwapioTier` keeps blocks in a
:class:`swapio.BlockTier` (a checksummed block store on one or more
drives), so a block evicted from host memory, or computed by an earlier
run of the engine, is read back instead of recomputed.

Turn it on in the OffloadingConnector's extra config::

    "secondary_tiers": [{
        "type": "SwapioTier", "module_path": "swapio.vllm",
        "dirs": ["/nvme0/kv", "/nvme1/kv"],   # or one str
        "capacity_bytes": 200 << 30,          # 0: until the disks fill
        "timeout_ms": 10000,                  # stores only; -1: none
        "engine": None,                       # "uring", "aio", "threads"
        "checksum": True,
    }]

What it guarantees (see docs/INFERENCE.md):

- Nothing it does blocks vLLM's scheduler: lookups answer from memory,
  stores and loads are queued to swapio's I/O thread, and finished ones
  are reaped without waiting. Only ``drain_jobs`` and ``shutdown`` wait,
  as vLLM asks them to.
- A lookup is a HIT only for a block whose store has completed (the
  store's commit); while a store of the key is in flight it answers RETRY.
- Loads report per block: a block missing, evicted, failing its checksum
  or unreadable fails alone, and the job lists the blocks that loaded in
  ``successful_keys``, so vLLM recomputes only the others. A damaged block
  is never handed to the model: with ``checksum`` (the default) it is a
  miss and is dropped from the store.
- Stores that fail (a full disk, an I/O error, past ``timeout_ms``) fail
  only their own job and serving goes on. With ``capacity_bytes`` the
  store evicts least recently used blocks when a put would pass it.
- Blocks are kept across restarts: the store lives in
  ``<dir>/<namespace>/`` and the namespace is a short hash of the model
  and of the KV layout (the identity vLLM's own file tier hashes, plus the
  block's size in bytes), so an engine serving the same model with the
  same layout finds what an earlier one stored, and a different model or
  layout never reads it.

Only one process may hold a namespace at a time: a second engine on the
same dirs, model and layout fails at start with OSError(EBUSY). Data
parallel replicas get a namespace each.
"""

import hashlib
import json
import os
import re
import time
from typing import ClassVar

from vllm.v1.kv_offload.base import (
    LookupResult,
    Medium,
    RequestOffloadingContext,
)
from vllm.v1.kv_offload.tiering.base import (
    JobResult,
    SecondaryTierManager,
)

from ._tier import HELD, RELEASED, BlockTier

try:
    from vllm.v1.kv_offload.base import (
        OffloadingCounterMetadata,
        OffloadingGaugeMetadata,
    )
    from vllm.distributed.kv_transfer.kv_connector.v1.offloading.metrics \
        import OffloadingConnectorStats
except ImportError:  # a vLLM without per-tier metrics
    OffloadingConnectorStats = None

__all__ = ["SwapioTier", "namespace_for"]

# Counters this tier reports through vLLM's metrics (labelled by tier),
# with the key of SwapioTier.stats() each one counts. vLLM's metrics
# snapshot (LLM.get_metrics()) takes only names under "vllm:".
_COUNTERS = {
    "vllm:kv_offload_swapio_stored_blocks": (
        "stored_blocks",
        "Blocks the swapio tier stored (committed) on its drives."),
    "vllm:kv_offload_swapio_loaded_blocks": (
        "loaded_blocks",
        "Blocks the swapio tier loaded into the primary tier, verified."),
    "vllm:kv_offload_swapio_store_failed_blocks": (
        "store_failed_blocks",
        "Blocks the swapio tier failed to store (full, I/O error, "
        "past the deadline)."),
    "vllm:kv_offload_swapio_load_failed_blocks": (
        "load_failed_blocks",
        "Blocks a load did not bring (missing, evicted, damaged, "
        "unreadable); vLLM recomputes them."),
    "vllm:kv_offload_swapio_bad_checksums": (
        "bad_checksums",
        "Blocks the swapio tier found damaged (checksum), dropped and "
        "counted as misses."),
    "vllm:kv_offload_swapio_evicted_blocks": (
        "evicted",
        "Blocks the swapio tier evicted to stay under its capacity."),
}
_GAUGES = {
    "vllm:kv_offload_swapio_blocks": (
        "blocks", "Blocks the swapio tier holds."),
    "vllm:kv_offload_swapio_disk_bytes": (
        "disk_bytes", "Bytes the swapio tier's blocks take on disk."),
}


def namespace_for(offloading_spec, block_bytes):
    """The store namespace of an engine's KV blocks.

    ``vllm-<model>-<hash>``: <model> is the last part of the model's name
    (for a person reading the directory), <hash> 16 hex digits of SHA-256
    over what makes blocks interchangeable: the identity vLLM's file tier
    (FileMapper) names its directories by (model, dtype, tokens per block
    hash, blocks per chunk, KV cache groups and their layers, parallel
    layout where it matters) and the block's size in bytes. Data-parallel
    replicas (each with a scheduler of its own) get one store each:
    ``-dp<index>`` at the end.
    """
    from vllm.v1.kv_offload.file_mapper import FileMapper

    fm = FileMapper.from_offloading_spec(
        root_dir="", offloading_spec=offloading_spec,
        blocks_per_file=offloading_spec.blocks_per_chunk,
        parallel_agnostic=True)
    fields = dict(fm.get_run_config())
    fields["block_bytes"] = int(block_bytes)
    canon = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canon.encode()).hexdigest()[:16]
    name = os.path.basename(str(fields["model_name"]).rstrip("/"))
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:32].lstrip(".") or "model"
    parallel = offloading_spec.config.parallel
    if parallel.data_parallel_size > 1:
        # One store per replica: a namespace has one owner at a time.
        return f"vllm-{name}-{digest}-dp{parallel.data_parallel_index}"
    return f"vllm-{name}-{digest}"


class _Job:
    __slots__ = ("job_id", "keys", "load", "t0", "todo", "ok", "skipped")

    def __init__(self, job_id, keys, load):
        self.job_id = job_id
        self.keys = keys  # the job's OffloadKeys, in order
        self.load = load
        self.t0 = time.monotonic()
        self.todo = []  # hex keys submitted in this job's batch
        self.ok = set()  # indexes into keys that succeeded
        self.skipped = 0  # stores of blocks already present


class SwapioTier(SecondaryTierManager):
    """vLLM secondary tier over :class:`swapio.BlockTier`.

    Built by vLLM from a ``secondary_tiers`` entry (see the module's
    documentation); every method runs on vLLM's scheduler thread.
    Options: ``dirs`` (str or list of str, one root per drive),
    ``capacity_bytes`` (0: until the disks are full), ``timeout_ms``
    (deadline of a store batch; -1: none; the blocks not stored by then
    fail, but a job whose writes are at the drive is reported only when
    they end, since vLLM reuses its chunks then; loads have none, as a
    read cannot be recalled from a chunk vLLM would reuse),
    ``engine`` (swapio's I/O engine; None: the best that runs),
    ``checksum`` (XXH3 per block, on by default), ``namespace`` (the
    store's subdirectory; by default :func:`namespace_for` the engine).
    """

    medium: ClassVar[Medium] = Medium.STORAGE

    @classmethod
    def build_metric_definitions(cls, extra_config):
        if OffloadingConnectorStats is None:
            return {}
        defs = {}
        for name, (_, doc) in _COUNTERS.items():
            defs[name] = OffloadingCounterMetadata(documentation=doc,
                                                   labelnames=("tier",))
        for name, (_, doc) in _GAUGES.items():
            defs[name] = OffloadingGaugeMetadata(documentation=doc,
                                                 labelnames=("tier",))
        return defs

    def __init__(self, offloading_spec, primary_kv_view, tier_type,
                 backpressure_detector=None, *, dirs, capacity_bytes=0,
                 timeout_ms=-1, engine=None, checksum=True, namespace=None):
        super().__init__(offloading_spec, primary_kv_view, tier_type,
                         backpressure_detector)
        if isinstance(dirs, str):
            dirs = [dirs]
        if not dirs:
            raise ValueError("SwapioTier: dirs names no directory")
        if namespace is None:
            namespace = namespace_for(offloading_spec, self.block_size_bytes)
        self.namespace = namespace
        self._timeout_ms = int(timeout_ms)
        # The primary region as bytes: chunk c is
        # [c * block_size_bytes, (c + 1) * block_size_bytes).
        self._flat = primary_kv_view.cast("B")
        self._nchunks = len(self._flat) // self.block_size_bytes
        self._tier = BlockTier(list(dirs), namespace=namespace,
                               capacity=int(capacity_bytes), engine=engine,
                               checksum=bool(checksum))
        self._jobs = {}  # batch id -> _Job
        self._held = {}  # the same, past the deadline, I/O still running
        self._done = []  # JobResults not yet handed to vLLM
        self._storing = {}  # hex key -> stores in flight
        self._counts = dict.fromkeys(
            ("stored_blocks", "loaded_blocks", "store_failed_blocks",
             "load_failed_blocks", "skipped_blocks", "store_jobs",
             "load_jobs"), 0)
        self._reported = {}  # stats() as last reported to vLLM

    # -- vLLM's interface -------------------------------------------------

    def lookup(self, key, req_context):
        hk = key.hex()
        if hk in self._tier:
            return LookupResult.HIT
        if hk in self._storing:
            return LookupResult.RETRY
        return LookupResult.MISS

    def submit_store(self, job_metadata):
        job = _Job(job_metadata.job_id, list(job_metadata.keys), False)
        self._counts["store_jobs"] += 1
        todo, bufs, seen = [], [], set()
        for i, (key, cid) in enumerate(zip(job.keys,
                                           job_metadata.chunk_ids)):
            hk = key.hex()
            if hk in self._tier or hk in self._storing or hk in seen:
                job.ok.add(i)
                job.skipped += 1
                continue
            seen.add(hk)
            todo.append(hk)
            bufs.append(self._chunk(cid))
            job.todo.append(i)
        self._counts["skipped_blocks"] += job.skipped
        if not todo:
            self._finish(job)
            return
        try:
            bid = self._tier.submit_put(todo, bufs, self._timeout_ms)
        except OSError:
            self._finish(job)  # the blocks not skipped count as failed
            return
        for hk in todo:
            self._storing[hk] = self._storing.get(hk, 0) + 1
        job.todo = [(i, hk) for i, hk in zip(job.todo, todo)]
        self._jobs[bid] = job

    def submit_load(self, job_metadata):
        job = _Job(job_metadata.job_id, list(job_metadata.keys), True)
        self._counts["load_jobs"] += 1
        todo = [key.hex() for key in job.keys]
        bufs = [self._chunk(cid) for cid in job_metadata.chunk_ids]
        job.todo = list(enumerate(todo))
        try:
            bid = self._tier.submit_get(todo, bufs, -1)
        except OSError:
            self._finish(job)
            return
        self._jobs[bid] = job

    def get_finished_jobs(self):
        self._reap()
        done, self._done = self._done, []
        return done

    def has_pending_work(self):
        return bool(self._jobs or self._held or self._done)

    def on_new_request(self, req_context):
        return RequestOffloadingContext()

    def drain_jobs(self):
        """Waits until every submitted job has finished, and with it every
        I/O touching the primary region."""
        self._reap()
        while self._jobs or self._held:
            self._tier.wait(1000)
            self._reap()

    def shutdown(self):
        """Finishes what is in flight, closes the store and lets go of the
        primary region (vLLM unmaps it next)."""
        tier, self._tier = self._tier, None
        if tier is None:
            return
        try:
            tier.close()
        finally:
            self._jobs.clear()
            self._held.clear()
            self._storing.clear()
            self._flat.release()

    def get_stats(self):
        if OffloadingConnectorStats is None or self._tier is None:
            return None
        now = self.stats()
        out = OffloadingConnectorStats()
        label = (self.tier_type,)
        for name, (k, _) in _COUNTERS.items():
            delta = now[k] - self._reported.get(k, 0)
            if delta:
                out.increase_counter(name, delta, label)
        for name, (k, _) in _GAUGES.items():
            if now[k] != self._reported.get(k):
                out.set_gauge(name, now[k], label)
        self._reported = now
        return None if out.is_empty() else out

    # -- swapio's own ------------------------------------------------------

    def stats(self):
        """This tier's counters (stored_blocks, loaded_blocks,
        store_failed_blocks, load_failed_blocks, skipped_blocks,
        store_jobs, load_jobs) and the store's (BlockTier.stats()) while
        it is open."""
        s = dict(self._tier.stats()) if self._tier is not None else {}
        s.update(self._counts)
        return s

    def _chunk(self, cid):
        c = int(cid)
        if not 0 <= c < self._nchunks:
            raise ValueError(f"SwapioTier: chunk {c} is outside the "
                             f"primary region ({self._nchunks} chunks)")
        off = c * self.block_size_bytes
        return self._flat[off:off + self.block_size_bytes]

    def _reap(self):
        """Takes finished batches into self._done. A batch past its
        deadline whose I/O is still at the drive (HELD) finishes its job
        only at its RELEASED record: vLLM may reuse a chunk as soon as its
        job is reported, and the put could still be reading it."""
        for bid, flags, results in self._tier.reap_flags():
            if flags & RELEASED:
                job = self._held.pop(bid, None)
                if job is not None:
                    self._settle(job)
                continue
            job = self._jobs.pop(bid, None)
            if job is None:
                continue
            for (i, _), rc in zip(job.todo, results):
                if rc == 0:
                    job.ok.add(i)
            if flags & HELD:
                self._held[bid] = job
            else:
                self._settle(job)

    def _settle(self, job):
        if not job.load:
            for _, hk in job.todo:
                n = self._storing.get(hk, 0) - 1
                if n > 0:
                    self._storing[hk] = n
                else:
                    self._storing.pop(hk, None)
        self._finish(job)

    def _finish(self, job):
        n_ok = len(job.ok)
        n = len(job.keys)
        moved = n_ok - job.skipped
        if job.load:
            self._counts["loaded_blocks"] += moved
            self._counts["load_failed_blocks"] += n - n_ok
        else:
            self._counts["stored_blocks"] += moved
            self._counts["store_failed_blocks"] += n - n_ok
        ok_keys = None
        if 0 < n_ok < n:
            ok_keys = tuple(job.keys[i] for i in sorted(job.ok))
        self._done.append(JobResult(
            job_id=job.job_id, success=n_ok == n, successful_keys=ok_keys,
            transfer_time=time.monotonic() - job.t0,
            transfer_bytes=moved * self.block_size_bytes))
