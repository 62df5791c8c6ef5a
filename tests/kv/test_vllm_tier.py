"""swapio.vllm: the swapio secondary tier of vLLM's tiered KV offloading.

First through the tier's own interface (as vLLM's scheduler calls it),
with a real memoryview over a primary region and a real store, no engine;
then with vLLM itself serving a tiny random-weight Llama on the CPU, in
subprocesses (engine_run.py): (a) a regeneration after a prefix-cache
reset is served from the tier, (b) so is a later engine process, (d) a
damaged block is a miss and the output stays right, (e) a full disk fails
stores softly and serving goes on.
"""

import errno
import mmap
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import swapio
from swapio.vllm import SwapioTier
from vllm.v1.kv_offload.base import (
    LookupResult,
    ReqContext,
    make_offload_key,
)
from vllm.v1.kv_offload.tiering.base import TransferJob

import conftest
import tiny_model

CHUNK = 64 << 10  # bytes of one primary chunk in the unit tests
NCHUNKS = 32
_job_ids = iter(range(1, 1 << 30))


def key(rng):
    return make_offload_key(rng.bytes(32), 0)


class Primary:
    """A primary region as vLLM's host tier makes it: a 2-D int8 array
    over an mmap, seen through a memoryview (chunks x chunk bytes)."""

    def __init__(self, nchunks=NCHUNKS, chunk=CHUNK):
        self.mm = mmap.mmap(-1, nchunks * chunk)
        self.arr = np.frombuffer(self.mm, dtype=np.int8).reshape(nchunks,
                                                                  chunk)
        self.view = memoryview(self.arr)

    def fill(self, rng, chunks):
        for c in chunks:
            self.arr[c] = rng.integers(-128, 128, CHUNK, dtype=np.int8)

    def close(self):
        self.view.release()
        del self.arr
        self.mm.close()  # BufferError while anything still exports it


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


_open_tiers = []


@pytest.fixture
def primary():
    p = Primary()
    yield p
    # A test that failed half-way still shuts its tiers down (shutdown is
    # idempotent) before its primary region goes.
    while _open_tiers:
        _open_tiers.pop().shutdown()
    p.close()


def make_tier(primary, root, **kw):
    kw.setdefault("namespace", "unit")
    t = SwapioTier(None, primary.view, "SwapioTier", dirs=str(root), **kw)
    _open_tiers.append(t)
    return t


def job(keys, chunks, promotion):
    return TransferJob(job_id=next(_job_ids), keys=list(keys),
                       chunk_ids=np.array(chunks, dtype=np.int64),
                       is_promotion=promotion,
                       req_context=ReqContext(req_id="r"))


def finish(tier, jobs):
    """Drains the tier and returns {job id: JobResult} of JOBS."""
    tier.drain_jobs()
    got = {r.job_id: r for r in tier.get_finished_jobs()}
    assert set(got) == {j.job_id for j in jobs}
    assert not tier.has_pending_work()
    return got


def store(tier, keys, chunks):
    j = job(keys, chunks, False)
    tier.submit_store(j)
    return finish(tier, [j])[j.job_id]


def load(tier, keys, chunks):
    j = job(keys, chunks, True)
    tier.submit_load(j)
    return finish(tier, [j])[j.job_id]


def test_store_lookup_load_round_trip(tmp_path, rng, primary):
    tier = make_tier(primary, tmp_path)
    keys = [key(rng) for _ in range(6)]
    primary.fill(rng, range(6))
    want = primary.arr[:6].copy()
    j = job(keys, range(6), False)
    tier.submit_store(j)
    # Submitted, not reaped: never a MISS (RETRY while the store is in
    # flight, HIT once it committed).
    assert all(tier.lookup(k, None) != LookupResult.MISS for k in keys)
    res = finish(tier, [j])[j.job_id]
    assert res.success and res.successful_keys is None
    assert res.transfer_bytes == 6 * CHUNK
    assert all(tier.lookup(k, None) == LookupResult.HIT for k in keys)
    assert tier.lookup(key(rng), None) == LookupResult.MISS

    # Back into other chunks, in another order.
    primary.arr[10:16] = 0
    order = [3, 0, 5, 1, 4, 2]
    res = load(tier, [keys[i] for i in order], range(10, 16))
    assert res.success and res.transfer_bytes == 6 * CHUNK
    for c, i in zip(range(10, 16), order):
        assert np.array_equal(primary.arr[c], want[i])
    s = tier.stats()
    assert s["stored_blocks"] == 6 and s["loaded_blocks"] == 6
    assert s["blocks"] == 6
    tier.shutdown()


def test_store_skips_blocks_present(tmp_path, rng, primary):
    tier = make_tier(primary, tmp_path)
    keys = [key(rng) for _ in range(3)]
    primary.fill(rng, range(4))
    assert store(tier, keys, range(3)).success
    # The same blocks again (one new): only the new one is written.
    k4 = key(rng)
    res = store(tier, keys + [k4], range(4))
    assert res.success and res.transfer_bytes == CHUNK
    s = tier.stats()
    assert s["stored_blocks"] == 4 and s["skipped_blocks"] == 3
    assert s["puts"] == 4
    tier.shutdown()


def test_lookup_retries_while_store_in_flight(tmp_path, rng, primary,
                                             monkeypatch):
    """Writes held back 1 s: until the store commits, its keys are RETRY
    (never HIT, never MISS), and get_finished_jobs returns at once."""
    monkeypatch.setenv("SWAPIO_FAULT", "delay_ms=1000,dir=write")
    tier = make_tier(primary, tmp_path)
    monkeypatch.delenv("SWAPIO_FAULT")
    keys = [key(rng) for _ in range(3)]
    primary.fill(rng, range(3))
    j = job(keys, range(3), False)
    tier.submit_store(j)
    assert [tier.lookup(k, None) for k in keys] == [LookupResult.RETRY] * 3
    assert list(tier.get_finished_jobs()) == []
    assert tier.has_pending_work()
    assert finish(tier, [j])[j.job_id].success
    assert [tier.lookup(k, None) for k in keys] == [LookupResult.HIT] * 3
    tier.shutdown()


def test_store_past_deadline_waits_for_its_writes(tmp_path, rng, primary,
                                                  monkeypatch):
    """Writes held back 1.5 s, a 100 ms deadline: the blocks fail, but the
    job is reported only once no write reads the primary region any more
    (vLLM reuses the chunks of a reported job)."""
    monkeypatch.setenv("SWAPIO_FAULT", "delay_ms=1500,dir=write")
    tier = make_tier(primary, tmp_path, timeout_ms=100)
    monkeypatch.delenv("SWAPIO_FAULT")
    keys = [key(rng) for _ in range(4)]
    primary.fill(rng, range(4))
    j = job(keys, range(4), False)
    tier.submit_store(j)
    got = []
    while not got:
        got = list(tier.get_finished_jobs())
        if not got:
            tier._tier.wait(5000)
    assert tier.stats()["inflight"] == 0
    (res,) = got
    assert res.job_id == j.job_id and not res.success
    assert tier.stats()["expired"] == 1
    assert tier.stats()["store_failed_blocks"] == 4
    tier.shutdown()


def test_partial_load_reports_successful_keys(tmp_path, rng, primary):
    tier = make_tier(primary, tmp_path)
    k0, k1, k2 = key(rng), key(rng), key(rng)
    primary.fill(rng, [0, 2])
    want0, want2 = primary.arr[0].copy(), primary.arr[2].copy()
    assert store(tier, [k0, k2], [0, 2]).success
    primary.arr[20:23] = 0
    # k1 was never stored: the job fails, k0 and k2 loaded.
    res = load(tier, [k0, k1, k2], [20, 21, 22])
    assert not res.success
    assert set(res.successful_keys) == {k0, k2}
    assert res.transfer_bytes == 2 * CHUNK
    assert np.array_equal(primary.arr[20], want0)
    assert np.array_equal(primary.arr[22], want2)
    assert tier.stats()["load_failed_blocks"] == 1
    # Nothing found at all: a failure with no successful keys.
    res = load(tier, [key(rng)], [23])
    assert not res.success and not res.successful_keys
    tier.shutdown()


def corrupt_one_block(root, namespace, payload):
    """Flips a byte of PAYLOAD (a block's bytes) where it lies in the
    store's data file(s) under ROOT/NAMESPACE/data; returns the path."""
    data = os.path.join(str(root), namespace, "data")
    files = [os.path.join(data, n) for n in sorted(os.listdir(data))] \
        if os.path.isdir(data) else [data]
    probe = bytes(payload[:4096])
    for path in files:
        with open(path, "r+b") as f:
            blob = f.read()
            at = blob.find(probe)
            if at < 0:
                continue
            at += 100
            f.seek(at)
            f.write(bytes([blob[at] ^ 0x5A]))
            f.flush()
            os.fsync(f.fileno())
            return path
    raise AssertionError("block not found in the store's data file")


def test_damaged_block_is_a_miss(tmp_path, rng, primary):
    tier = make_tier(primary, tmp_path)
    keys = [key(rng) for _ in range(3)]
    primary.fill(rng, range(3))
    want = primary.arr[:3].copy()
    assert store(tier, keys, range(3)).success
    tier.shutdown()
    corrupt_one_block(tmp_path, "unit", want[1].tobytes())

    tier = make_tier(primary, tmp_path)
    primary.arr[:3] = 0
    res = load(tier, keys, range(3))
    assert not res.success
    assert set(res.successful_keys) == {keys[0], keys[2]}
    assert np.array_equal(primary.arr[0], want[0])
    assert np.array_equal(primary.arr[2], want[2])
    s = tier.stats()
    assert s["bad_checksums"] == 1 and s["load_failed_blocks"] == 1
    # Dropped: a miss from now on, so vLLM recomputes and stores it again.
    assert tier.lookup(keys[1], None) == LookupResult.MISS
    primary.arr[1] = want[1]
    assert store(tier, [keys[1]], [1]).success
    primary.arr[5] = 0
    assert load(tier, [keys[1]], [5]).success
    assert np.array_equal(primary.arr[5], want[1])
    tier.shutdown()


def test_eviction_keeps_capacity(tmp_path, rng, primary):
    cap = 8 * CHUNK
    tier = make_tier(primary, tmp_path, capacity_bytes=cap)
    keys = [key(rng) for _ in range(24)]
    primary.fill(rng, range(24))
    want = primary.arr[:24].copy()
    for i in range(0, 24, 4):  # in batches, oldest first
        assert store(tier, keys[i:i + 4], range(i, i + 4)).success
    s = tier.stats()
    assert s["evicted"] > 0 and s["disk_bytes"] <= cap
    assert tier.lookup(keys[0], None) == LookupResult.MISS
    assert tier.lookup(keys[-1], None) == LookupResult.HIT
    # What is left loads right; what was evicted fails alone.
    held = [k for k in keys if tier.lookup(k, None) == LookupResult.HIT]
    assert 0 < len(held) < 24
    primary.arr[24:32] = 0
    res = load(tier, [keys[0], keys[-1]], [24, 25])
    assert not res.success and list(res.successful_keys) == [keys[-1]]
    assert np.array_equal(primary.arr[25], want[-1])
    stats = tier.get_stats()
    if stats is not None:
        m = stats.data["data"]
        assert m["vllm:kv_offload_swapio_evicted_blocks"][("SwapioTier",)] \
            == s["evicted"]
    tier.shutdown()


def test_metrics_are_deltas(tmp_path, rng, primary):
    tier = make_tier(primary, tmp_path)
    defs = SwapioTier.build_metric_definitions({})
    primary.fill(rng, range(3))
    keys = [key(rng) for _ in range(3)]
    assert store(tier, keys, range(3)).success
    m = tier.get_stats().data["data"]
    assert set(m) <= set(defs)
    assert m["vllm:kv_offload_swapio_stored_blocks"][("SwapioTier",)] == 3
    assert m["vllm:kv_offload_swapio_blocks"][("SwapioTier",)] == 3
    assert tier.get_stats() is None  # nothing new since
    assert load(tier, keys[:2], [8, 9]).success
    m = tier.get_stats().data["data"]
    assert m["vllm:kv_offload_swapio_loaded_blocks"][("SwapioTier",)] == 2
    assert "vllm:kv_offload_swapio_stored_blocks" not in m
    tier.shutdown()


def test_drain_waits_for_every_job(tmp_path, rng, primary):
    tier = make_tier(primary, tmp_path)
    primary.fill(rng, range(NCHUNKS))
    jobs = []
    for i in range(0, NCHUNKS, 2):
        j = job([key(rng), key(rng)], [i, i + 1], False)
        tier.submit_store(j)
        jobs.append(j)
    assert tier.has_pending_work()
    res = finish(tier, jobs)
    assert all(r.success for r in res.values())
    assert tier.stats()["inflight"] == 0
    tier.shutdown()


def test_shutdown_lets_go_of_the_primary_region(tmp_path, rng):
    p = Primary()
    tier = make_tier(p, tmp_path)
    p.fill(rng, range(4))
    keys = [key(rng) for _ in range(4)]
    j = job(keys, range(4), False)
    tier.submit_store(j)  # still in flight, maybe
    tier.shutdown()
    tier.shutdown()  # twice is fine
    p.close()  # no BufferError: nothing exports the mmap
    # What was in flight at shutdown was finished, not lost.
    p2 = Primary()
    tier = make_tier(p2, tmp_path)
    assert all(tier.lookup(k, None) == LookupResult.HIT for k in keys)
    tier.shutdown()
    p2.close()


def test_second_process_on_namespace_is_refused(tmp_path, primary):
    tier = make_tier(primary, tmp_path)
    code = ("import mmap, numpy as np, sys\n"
            "from swapio.vllm import SwapioTier\n"
            "a = np.zeros((4, 4096), np.int8)\n"
            "try:\n"
            "    SwapioTier(None, memoryview(a), 't', dirs=sys.argv[1],\n"
            "               namespace='unit')\n"
            "except OSError as e:\n"
            "    sys.exit(e.errno)\n")
    rc = subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                        env=conftest.engine_env(), timeout=120).returncode
    assert rc == errno.EBUSY
    tier.shutdown()


def test_options_are_checked(tmp_path, primary):
    with pytest.raises(ValueError):
        SwapioTier(None, primary.view, "t", dirs=[], namespace="unit")
    with pytest.raises(TypeError):
        SwapioTier(None, primary.view, "t", dirs=str(tmp_path),
                   namespace="unit", no_such_option=1)
    with pytest.raises((ValueError, OSError)):
        SwapioTier(None, primary.view, "t", dirs=str(tmp_path),
                   namespace="../escape")


# -- with vLLM ------------------------------------------------------------

PROMPT = 400  # tokens: 3 full blocks of 128, and 16 more
BLOCKS = PROMPT // tiny_model.BLOCK_TOKENS
CACHED = BLOCKS * tiny_model.BLOCK_TOKENS
TIER = "SwapioTier"
LABEL = "{tier=1:SwapioTier}"  # vLLM's label: tier index and type
OWN = "{tier=SwapioTier}"  # the tier's own metrics' label


def spec(model, root, steps, **tier_opts):
    tier = {"type": TIER, "module_path": "swapio.vllm", "dirs": str(root)}
    tier.update(tier_opts)
    return {
        "model": model, "prompt_len": PROMPT, "max_tokens": 16,
        "steps": steps,
        "extra_config": {
            "spec_name": "HostCopyTieringSpec",
            "spec_module_path": "cpu_offload_spec",
            "cpu_bytes_to_use": 64 << 20,
            "secondary_tiers": [tier],
        },
    }


def same_output(a, b):
    """Greedy tokens equal, and their logprobs (to float32's last bits)."""
    assert a["tokens"] == b["tokens"]
    assert len(a["tokens"]) == 16 and len(set(a["tokens"])) > 4
    assert np.allclose(a["logprobs"], b["logprobs"], rtol=0, atol=1e-5)


def namespace_dir(root):
    names = [n for n in os.listdir(root) if n.startswith("vllm-")]
    assert len(names) == 1, names
    return names[0]


def held_blocks(root):
    ns = namespace_dir(root)
    with swapio.BlockTier(str(root), namespace=ns) as t:
        return t.stats()["blocks"]


@pytest.mark.engine
def test_vllm_regenerates_from_tier(tmp_path, tiny_model_dir):
    """(a) cold, reset vLLM's prefix cache (and host tier), again: the
    blocks come back from swapio."""
    root = tmp_path / "kv"
    cold, warm = conftest.run_engine(
        spec(tiny_model_dir, root, ["gen", "reset", "gen"]), tmp_path)
    assert cold["num_cached_tokens"] == 0
    assert warm["num_cached_tokens"] == CACHED
    same_output(cold, warm)
    # Counters are cumulative; the cold run's stores may still be in
    # flight when its snapshot is taken, the reset drains them.
    m = warm["metrics"]
    assert m["vllm:kv_offload_swapio_stored_blocks" + OWN] == BLOCKS
    assert m["vllm:kv_offload_tiering_write_bytes" + LABEL] == \
        BLOCKS * tiny_model.BLOCK_BYTES
    assert m["vllm:kv_offload_swapio_loaded_blocks" + OWN] == BLOCKS
    assert m.get("vllm:kv_offload_swapio_load_failed_blocks" + OWN, 0) == 0
    assert m["vllm:kv_offload_tiering_chunk_hits" + LABEL] == BLOCKS
    assert m["vllm:kv_offload_tiering_read_bytes" + LABEL] == \
        BLOCKS * tiny_model.BLOCK_BYTES
    assert held_blocks(root) == BLOCKS


@pytest.mark.engine
def test_vllm_restart_reuses_tier(tmp_path, tiny_model_dir):
    """(b) a second engine process finds what the first one stored."""
    root = tmp_path / "kv"
    (cold,) = conftest.run_engine(spec(tiny_model_dir, root, ["gen"]),
                                  tmp_path, "first")
    assert held_blocks(root) == BLOCKS  # stored by the first, on shutdown
    (warm,) = conftest.run_engine(spec(tiny_model_dir, root, ["gen"]),
                                  tmp_path, "second")
    assert warm["num_cached_tokens"] == CACHED
    same_output(cold, warm)
    m = warm["metrics"]
    assert m["vllm:kv_offload_swapio_loaded_blocks" + OWN] == BLOCKS
    assert m["vllm:kv_offload_tiering_chunk_hits" + LABEL] == BLOCKS
    # The namespace is the model's and layout's: vllm-<model>-<hash>.
    ns = namespace_dir(root)
    assert ns.startswith("vllm-" + os.path.basename(tiny_model_dir) + "-")



def damage_one_block(nsdir):
    """Flips 16 bytes in the middle of what the store's data file holds:
    inside the second of the prompt's three blocks, stored one after the
    other."""
    path = os.path.join(str(nsdir), "data")
    with open(path, "r+b") as f:
        blob = f.read()
        used = len(blob.rstrip(b"\0"))
        assert used > 2 * tiny_model.BLOCK_BYTES
        at = used // 2
        f.seek(at)
        f.write(bytes(b ^ 0xFF for b in blob[at:at + 16]))
        f.flush()
        os.fsync(f.fileno())


@pytest.mark.engine
def test_vllm_damaged_block_is_recomputed(tmp_path, tiny_model_dir):
    """(d) a block damaged on disk is a miss: vLLM recomputes it, the
    output is still right, and the block is stored again."""
    root = tmp_path / "kv"
    (cold,) = conftest.run_engine(spec(tiny_model_dir, root, ["gen"]),
                                  tmp_path, "first")
    damage_one_block(root / namespace_dir(root))
    first, again = conftest.run_engine(
        spec(tiny_model_dir, root, ["gen", "reset", "gen"]), tmp_path,
        "second")
    same_output(cold, first)
    assert first["num_cached_tokens"] < CACHED
    m = first["metrics"]
    assert m["vllm:kv_offload_swapio_bad_checksums" + OWN] == 1
    assert m["vllm:kv_offload_swapio_load_failed_blocks" + OWN] == 1
    # Recomputed and stored again: the next regeneration has them all.
    same_output(cold, again)
    assert again["num_cached_tokens"] == CACHED
    assert held_blocks(root) == BLOCKS


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                        f"size={size},mode=0700",
                        "swapio-kv-test", str(path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode().strip()}")


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs with room for the store's own files and two of the
    prompt's three blocks (measured: the store's files are swapio's
    business)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    path = tmp_path / "small"
    mount_tmpfs(path, 64 << 20)
    try:
        with swapio.BlockTier(str(path), namespace="probe"):
            pass
        st = os.statvfs(path)
        own = (st.f_blocks - st.f_bfree) * st.f_frsize
        subprocess.run(["rm", "-rf", str(path / "probe")], check=True)
        size = own + 2 * (tiny_model.BLOCK_BYTES + (8 << 10)) + (16 << 10)
        subprocess.run(["mount", "-o", f"remount,size={size}", str(path)],
                       check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.engine
def test_vllm_full_disk_fails_stores_softly(tmp_path, tiny_model_dir,
                                            small_disk):
    """(e) a disk too small for the prompt's blocks: the stores that do not
    fit fail (and later ones evict older blocks), the engine serves on
    with the right output."""
    cold, warm = conftest.run_engine(
        spec(tiny_model_dir, small_disk, ["gen", "reset", "gen"]), tmp_path)
    same_output(cold, warm)
    m = warm["metrics"]
    assert m.get("vllm:kv_offload_swapio_store_failed_blocks" + OWN, 0) >= 1
    assert m.get("vllm:kv_offload_tiering_cascade_job_failures" + LABEL,
                 0) >= 1
    assert m.get("vllm:kv_offload_swapio_stored_blocks" + OWN, 0) >= 1
    # Not all of the prompt could be kept; nothing damaged was served.
    assert warm["num_cached_tokens"] < CACHED
    assert m.get("vllm:kv_offload_swapio_load_failed_blocks" + OWN, 0) == 0
    st = os.statvfs(small_disk)
    assert st.f_bfree * st.f_frsize < tiny_model.BLOCK_BYTES + (8 << 10)


def offloading_spec(model="/models/tiny", dtype="float32", tokens=128,
                    layers=("model.layers.0.attn", "model.layers.1.attn"),
                    tp=1, dp=1, dp_index=0):
    """vLLM's own TieringOffloadingSpec over an OffloadingConfig as vLLM
    builds it for an engine (no engine needed)."""
    from vllm.v1.kv_offload.config import (
        OffloadingCacheConfig,
        OffloadingConfig,
        OffloadingGroupConfig,
        OffloadingModelConfig,
        OffloadingParallelConfig,
    )
    from vllm.v1.kv_offload.tiering.spec import TieringOffloadingSpec

    cfg = OffloadingConfig(
        groups=(OffloadingGroupConfig(tokens_per_block=tokens,
                                      layer_names=tuple(layers),
                                      group_id=0),),
        worker_kv_bytes_per_block=CHUNK, enable_kv_cache_events=False,
        extra_config={"cpu_bytes_to_use": NCHUNKS * CHUNK},
        engine_id="e", model=OffloadingModelConfig(name=model, dtype=dtype),
        cache=OffloadingCacheConfig(tokens_per_hash=tokens,
                                    blocks_per_chunk=1),
        parallel=OffloadingParallelConfig(
            rank=0, world_size=tp, tp_size=tp, pp_size=1, pcp_size=1,
            dcp_size=1, data_parallel_index=dp_index,
            data_parallel_size=dp, data_parallel_rank_local=None,
            is_parallelism_agnostic=tp == 1))
    return TieringOffloadingSpec(cfg)


def test_namespace_is_the_model_and_layout(tmp_path, primary):
    from swapio.vllm import namespace_for

    base = namespace_for(offloading_spec(), CHUNK)
    assert re.fullmatch(r"vllm-tiny-[0-9a-f]{16}", base)
    assert namespace_for(offloading_spec(), CHUNK) == base
    others = [
        namespace_for(offloading_spec(model="/models/other"), CHUNK),
        namespace_for(offloading_spec(dtype="bfloat16"), CHUNK),
        namespace_for(offloading_spec(tokens=16), CHUNK),
        namespace_for(offloading_spec(layers=("l0",)), CHUNK),
        namespace_for(offloading_spec(tp=2), CHUNK),
        namespace_for(offloading_spec(), 2 * CHUNK),
    ]
    assert base not in others and len(set(others)) == len(others)
    # Data-parallel replicas: one store each (one owner per namespace).
    dp = [namespace_for(offloading_spec(dp=2, dp_index=i), CHUNK)
          for i in (0, 1)]
    assert dp[0] != dp[1] and all(n.endswith(f"-dp{i}")
                                  for i, n in enumerate(dp))
    # Unnamed, the tier's store is that namespace, in every root.
    roots = [tmp_path / "a", tmp_path / "b"]
    t = SwapioTier(offloading_spec(), primary.view, "SwapioTier",
                   dirs=[str(r) for r in roots])
    _open_tiers.append(t)
    assert t.namespace == base
    assert all((r / base).is_dir() for r in roots)
