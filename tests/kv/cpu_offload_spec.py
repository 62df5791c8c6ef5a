"""vLLM's tiered offloading on a CPU-only machine, for the tests.

vLLM's stock ``TieringOffloadingSpec`` moves KV blocks between the
model's cache and its host (primary) tier with CUDA copies, and refuses a
CPU device. This spec keeps everything of it (the scheduler side, the
shared host region, the secondary tiers) and replaces only the worker:
``HostCopyWorker`` maps the same shared region and copies blocks between
the model's KV tensors and the region synchronously, with torch.

Loaded through vLLM's out-of-tree spec hook::

    "spec_name": "HostCopyTieringSpec",
    "spec_module_path": "cpu_offload_spec",

It handles one device block per offloaded block (vLLM's default), and the
direct (non-canonical) layout. It reads private attributes of the spec
(``_engine_id``, ``num_chunks``, ``kv_bytes_per_chunk``,
``cpu_page_size_per_worker``), as vLLM 0.32.0 names them.
"""

import time

import torch

from vllm.v1.kv_offload.base import OffloadingWorker, TransferResult
from vllm.v1.kv_offload.cpu.shared_offload_region import SharedOffloadRegion
from vllm.v1.kv_offload.tiering.spec import TieringOffloadingSpec


class HostCopyWorker(OffloadingWorker):
    """Copies KV blocks between CPU KV tensors and the shared host region."""

    def __init__(self, kv_caches, region):
        self._region = region
        self._dev = []
        self._host = []
        self._refs = kv_caches.group_data_refs
        for t in kv_caches.tensors:
            dev = t.tensor.view(torch.int8).view((-1, t.page_size_bytes))
            self._dev.append(dev)
            self._host.append(region.create_next_worker_view(
                t.page_size_bytes))
        self._done = []

    def _copy(self, job_id, gpu_spec, host_spec, to_host):
        t0 = time.monotonic()
        dev_ids = gpu_spec.block_ids
        host_ids = host_spec.block_ids
        if len(dev_ids) != len(host_ids):
            raise ValueError("one device block per offloaded block only")
        nbytes = 0
        start = 0
        tensors = set()
        for g, size in enumerate(gpu_spec.group_sizes):
            d = torch.from_numpy(dev_ids[start:start + size].astype("int64"))
            h = torch.from_numpy(host_ids[start:start + size].astype("int64"))
            start += size
            for ref in self._refs[g]:
                i = ref.tensor_idx
                if (g, i) in tensors:
                    continue
                tensors.add((g, i))
                if to_host:
                    self._host[i][h] = self._dev[i][d]
                else:
                    self._dev[i][d] = self._host[i][h]
                nbytes += size * self._dev[i].shape[1]
        self._done.append(TransferResult(job_id=job_id, success=True,
                                         transfer_size=nbytes,
                                         transfer_time=time.monotonic() - t0))
        return True

    def submit_store(self, job_id, src_spec, dst_spec):
        return self._copy(job_id, src_spec, dst_spec, True)

    def submit_load(self, job_id, src_spec, dst_spec):
        return self._copy(job_id, dst_spec, src_spec, False)

    def get_finished(self):
        done, self._done = self._done, []
        return done

    def wait(self, job_ids):
        return

    def shutdown(self):
        self._dev.clear()
        self._host.clear()
        if self._region is not None:
            self._region.cleanup()
            self._region = None


class HostCopyTieringSpec(TieringOffloadingSpec):
    """``TieringOffloadingSpec`` whose worker copies on the host."""

    def get_worker(self, kv_caches):
        if getattr(self, "_host_worker", None) is None:
            region = SharedOffloadRegion(
                engine_id=self._engine_id,
                num_chunks=self.num_chunks,
                rank=0,
                kv_bytes_per_chunk=self.kv_bytes_per_chunk,
                cpu_page_size=self.cpu_page_size_per_worker)
            try:
                self._host_worker = HostCopyWorker(kv_caches, region)
            except Exception:
                region.cleanup()
                raise
        return self._host_worker
