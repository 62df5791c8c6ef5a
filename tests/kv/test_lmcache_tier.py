"""swapio.lmcache, LMCache's native-plugin L2 adapter over swapio.BlockTier.

First through the adapter's own interface, the way LMCache's
NativeConnectorL2Adapter drives it (byte memoryviews over ctypes arrays,
the eventfd polled, drain_completions reaping), with no server; then
under LMCache's multiprocess cache server with vLLM (LMCacheMPConnector)
in subprocesses: (c) a restarted server serves the blocks from swapio,
(d) a damaged block is a miss and the output is still right, (e) a full
disk fails stores softly and serving goes on.
"""

import ctypes
import errno
import json
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import Engine

swapio = pytest.importorskip("swapio")
lmc = pytest.importorskip("swapio.lmcache")
if not hasattr(swapio, "BlockTier"):
    pytest.skip("swapio.BlockTier is not in this build",
                allow_module_level=True)

HERE = os.path.dirname(os.path.abspath(__file__))
BLOCK = 64 * 1024

# The cache server's settings for the engine tests: LMCache chunks of 256
# tokens (two 128-token vLLM blocks), stores that skip L1 so that one vLLM
# process stores to swapio and reloads from it, and the transfer mode that
# works on a CPU.
CHUNK_TOKENS = 256
PROMPT_LEN = 600                   # two whole chunks, and 88 tokens more
CACHED = PROMPT_LEN // CHUNK_TOKENS * CHUNK_TOKENS
MAX_TOKENS = 24
SERVER_START_S = 240
SERVER_STOP_S = 60


# ------------------------------------------------------------------ helpers

def _view(data):
    """A byte memoryview over a ctypes array, as LMCache's MemoryObj
    byte_array is: format '<B', one dimension."""
    arr = (ctypes.c_ubyte * len(data)).from_buffer(bytearray(data))
    m = memoryview(arr)
    assert m.format == "<B" and m.nbytes == len(data)
    return m


def _key(i, rng=None):
    """A key shaped as LMCache's: <model>@<kv_rank>@<group>@<chunk hash>."""
    h = "%064x" % (rng.getrandbits(256) if rng else i)
    return "/models/tiny-llama@01000100@0@" + h


def _drain(a, futures, timeout_s=20.0):
    """Polls the adapter's eventfd and drains until every future in
    FUTURES completed; returns {future: (ok, error, per_key)}. A future
    completing twice, or one nobody asked for, fails the test."""
    want = set(futures)
    got = {}
    p = select.poll()
    p.register(a.event_fd(), select.POLLIN)
    deadline = time.monotonic() + timeout_s
    while want - set(got):
        left = deadline - time.monotonic()
        assert left > 0, "futures %s never completed" % sorted(want - set(got))
        p.poll(int(left * 1000) + 1)
        for fid, ok, err, per_key in a.drain_completions():
            assert fid in want and fid not in got, fid
            got[fid] = (ok, err, per_key)
    return got


def _one(a, fid):
    return _drain(a, [fid])[fid]


def _readable(fd, timeout_ms=0):
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(timeout_ms))


def _store_files(root, namespace):
    out = []
    for d, _dirs, files in os.walk(os.path.join(root, namespace)):
        out += [os.path.join(d, f) for f in files]
    return out


def _flip_block_bytes(root, namespace, payloads):
    """Flips one byte in every place of the store's files where one of
    PAYLOADS (bytes) lies; returns how many places were damaged."""
    n = 0
    for path in _store_files(root, namespace):
        with open(path, "r+b") as f:
            data = f.read()
            for p in payloads:
                i = data.find(p[:4096])
                while i >= 0:
                    f.seek(i + 100)
                    f.write(bytes([data[i + 100] ^ 0xFF]))
                    n += 1
                    i = data.find(p[:4096], i + 1)
    return n


@pytest.fixture(params=["uring", "aio", "threads"])
def adapter(request, tmp_path):
    """An adapter on two roots, once per I/O engine that runs here."""
    if request.param not in swapio.engines():
        pytest.skip("engine %s does not run here" % request.param)
    a = lmc.SwapioL2Adapter(dirs=[str(tmp_path / "d0"), str(tmp_path / "d1")],
                            namespace="t", engine=request.param)
    yield a
    a.close()


# ------------------------------------------------ the adapter's own interface

def test_set_get_exists_delete_roundtrip(adapter):
    rng = random.Random(1)
    keys = [_key(0, rng) for _ in range(12)]
    data = [rng.randbytes(BLOCK) for _ in keys]
    fid = adapter.submit_batch_set(keys, [_view(d) for d in data])
    assert isinstance(fid, int)
    assert _one(adapter, fid) == (True, "", [True] * 12)
    assert not _readable(adapter.event_fd())    # drain reset the eventfd

    out = [_view(bytes(BLOCK)) for _ in keys]
    ok, err, per_key = _one(adapter, adapter.submit_batch_get(keys, out))
    assert (ok, err, per_key) == (True, "", [True] * 12)
    assert [bytes(m) for m in out] == data

    missing = _key(0, rng)
    ok, err, per_key = _one(adapter, adapter.submit_batch_exists(
        keys[:3] + [missing] + keys[3:5]))
    assert ok and err == ""             # a miss answers the lookup
    assert per_key == [True, True, True, False, True, True]

    ok, _, per_key = _one(adapter, adapter.submit_batch_delete(
        keys[:4] + [missing]))
    assert ok and per_key == [True] * 5  # a key not there is removed
    _, _, per_key = _one(adapter, adapter.submit_batch_exists(keys))
    assert per_key == [False] * 4 + [True] * 8
    assert all(k not in adapter for k in keys[:4])
    assert all(k in adapter for k in keys[4:])

    st = adapter.stats()
    assert st["blocks"] == 8


def test_partial_failures_are_per_key(adapter):
    rng = random.Random(2)
    good = [_key(0, rng) for _ in range(3)]
    long_key = "m@" + "x" * 254          # 256 bytes
    assert len(long_key.encode()) == 256
    edge_key = "k" * 255                 # the longest key a block may have
    keys = [good[0], long_key, good[1], "", edge_key, "a\0b", good[2]]
    data = [rng.randbytes(BLOCK) for _ in keys]
    ok, err, per_key = _one(adapter, adapter.submit_batch_set(
        keys, [_view(d) for d in data]))
    assert not ok
    assert per_key == [True, False, True, False, True, False, True]
    assert "3 of 7 keys failed" in err and "ENAMETOOLONG" in err, err

    out = [_view(bytes(BLOCK)) for _ in keys]
    missing = _key(0, rng)
    ok, err, per_key = _one(adapter, adapter.submit_batch_get(
        keys + [missing], out + [_view(bytes(BLOCK))]))
    assert not ok
    assert per_key == [True, False, True, False, True, False, True, False]
    assert "ENOENT" in err
    for i in (0, 2, 4, 6):
        assert bytes(out[i]) == data[i]
    for i in (1, 3, 5):
        assert bytes(out[i]) == bytes(BLOCK)    # never written to

    # A batch with no key the tier can take still completes, through the
    # same eventfd, at once.
    fid = adapter.submit_batch_exists([long_key, ""])
    assert _readable(adapter.event_fd(), 2000)
    ok, err, per_key = _one(adapter, fid)
    assert ok and per_key == [False, False]
    ok, err, per_key = _one(adapter, adapter.submit_batch_get(
        [long_key], [_view(bytes(BLOCK))]))
    assert not ok and per_key == [False] and "ENAMETOOLONG" in err
    assert not _readable(adapter.event_fd())


def test_bad_buffers_fail_their_key(adapter):
    rng = random.Random(3)
    keys = [_key(0, rng) for _ in range(3)]
    data = [rng.randbytes(BLOCK) for _ in keys]
    fid = adapter.submit_batch_set(keys, [_view(d) for d in data])
    assert _one(adapter, fid)[0]

    # A read-only buffer, a strided one, one of the wrong size: each fails
    # its own key, the others load.
    ro = memoryview(bytes(BLOCK))
    strided = memoryview(bytearray(2 * BLOCK))[::2]
    short = _view(bytes(BLOCK - 4096))
    good = _view(bytes(BLOCK))
    ok, _, per_key = _one(adapter, adapter.submit_batch_get(
        [keys[0], keys[1], keys[2], keys[0]], [ro, strided, short, good]))
    assert not ok and per_key == [False, False, False, True]
    assert bytes(good) == data[0]
    assert bytes(short) == bytes(BLOCK - 4096)

    with pytest.raises(ValueError):
        adapter.submit_batch_set(keys, [_view(data[0])])


def test_multidimensional_views_are_bytes(adapter):
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(4)
    a = rng.standard_normal((4, 16, 256), dtype=np.float32)
    b = np.zeros_like(a)
    k = _key(7)
    assert _one(adapter, adapter.submit_batch_set([k], [memoryview(a)]))[0]
    assert _one(adapter, adapter.submit_batch_get([k], [memoryview(b)]))[0]
    assert np.array_equal(a, b)


def test_threads_submit_while_one_drains(adapter):
    """LMCache's controller threads submit while its demultiplexing thread
    polls and drains: every future completes once, with its own result."""
    n_threads, n_batches = 3, 20
    futures = {}
    lock = threading.Lock()
    stop = threading.Event()
    got = {}
    errors = []

    def demux():
        p = select.poll()
        p.register(adapter.event_fd(), select.POLLIN)
        while not stop.is_set():
            p.poll(100)
            for fid, ok, err, per_key in adapter.drain_completions():
                with lock:
                    if fid in got:
                        errors.append("twice: %d" % fid)
                    got[fid] = (ok, per_key)

    def submitter(t):
        rng = random.Random(100 + t)
        for i in range(n_batches):
            keys = ["t%d/b%d/k%d" % (t, i, j) for j in range(4)]
            data = [rng.randbytes(4096) for _ in keys]
            fid = adapter.submit_batch_set(keys, [_view(d) for d in data])
            with lock:
                futures[fid] = ("set", keys)
            fid = adapter.submit_batch_exists(keys + ["nope"])
            with lock:
                futures[fid] = ("exists", keys)

    th = threading.Thread(target=demux)
    th.start()
    subs = [threading.Thread(target=submitter, args=(t,))
            for t in range(n_threads)]
    for s in subs:
        s.start()
    for s in subs:
        s.join()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with lock:
            if set(got) >= set(futures):
                break
        time.sleep(0.05)
    stop.set()
    th.join()
    assert not errors
    assert len(futures) == 2 * n_threads * n_batches
    assert set(got) == set(futures)
    for fid, (op, keys) in futures.items():
        ok, per_key = got[fid]
        if op == "set":
            assert ok and per_key == [True] * 4
        else:
            # The exists may run before or after its set finished, never
            # finds the key that was never stored.
            assert ok and per_key[4] is False


def test_restart_finds_blocks(tmp_path):
    rng = random.Random(5)
    dirs = [str(tmp_path / "a"), str(tmp_path / "b")]
    keys = [_key(0, rng) for _ in range(8)]
    data = [rng.randbytes(BLOCK) for _ in keys]
    with lmc.SwapioL2Adapter(dirs=dirs) as a:
        assert _one(a, a.submit_batch_set(keys, [_view(d) for d in data]))[0]
        # A second server on the same namespace is refused.
        with pytest.raises(OSError) as e:
            lmc.SwapioL2Adapter(dirs=dirs)
        assert e.value.errno == errno.EBUSY
    with lmc.SwapioL2Adapter(dirs=dirs) as a:
        out = [_view(bytes(BLOCK)) for _ in keys]
        ok, _, per_key = _one(a, a.submit_batch_get(keys, out))
        assert ok and per_key == [True] * 8
        assert [bytes(m) for m in out] == data
        assert a.stats()["hits"] == 8


def test_get_past_deadline_waits_for_its_reads(tmp_path, monkeypatch):
    """Reads held back 1.5 s, a 100 ms deadline: the batch fails, but is
    reported only once its reads have ended, since LMCache reuses the
    buffers of a batch it has the result of."""
    rng = random.Random(8)
    keys = [_key(0, rng) for _ in range(4)]
    data = [rng.randbytes(BLOCK) for _ in keys]
    monkeypatch.setenv("SWAPIO_FAULT", "delay_ms=1500,dir=read")
    a = lmc.SwapioL2Adapter(dirs=str(tmp_path), timeout_ms=100)
    monkeypatch.delenv("SWAPIO_FAULT")
    with a:
        assert _one(a, a.submit_batch_set(keys, [_view(d) for d in data]))[0]
        t0 = time.monotonic()
        fid = a.submit_batch_get(keys, [_view(bytes(BLOCK)) for _ in keys])
        ok, err, per_key = _one(a, fid)
        assert not ok and per_key == [False] * 4 and "ETIMEDOUT" in err
        # Not at the deadline: after the held-back reads.
        assert time.monotonic() - t0 >= 1.0
        assert a.stats()["expired"] == 1 and a.stats()["inflight"] == 0


def test_damaged_block_is_a_miss(tmp_path):
    rng = random.Random(6)
    d = str(tmp_path / "d")
    keys = [_key(0, rng) for _ in range(4)]
    data = [rng.randbytes(BLOCK) for _ in keys]
    with lmc.SwapioL2Adapter(dirs=d, namespace="n") as a:
        assert _one(a, a.submit_batch_set(keys, [_view(x) for x in data]))[0]
    assert _flip_block_bytes(d, "n", [data[1]]) == 1
    with lmc.SwapioL2Adapter(dirs=d, namespace="n") as a:
        out = [_view(bytes(BLOCK)) for _ in keys]
        ok, err, per_key = _one(a, a.submit_batch_get(keys, out))
        assert not ok and per_key == [True, False, True, True]
        assert "EBADMSG" in err
        assert bytes(out[0]) == data[0] and bytes(out[2]) == data[2]
        assert bytes(out[1]) != data[1]     # whatever it holds, not "hit"
        assert a.stats()["bad_checksums"] == 1
        # The damaged block was dropped: a lookup now misses it.
        _, _, per_key = _one(a, a.submit_batch_exists(keys))
        assert per_key == [True, False, True, True]


def _mount_tmpfs(path, size):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (running as uid %d)"
                    % os.geteuid())
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % size,
                        "tmpfs", path], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.strip())


def _umount(path):
    subprocess.run(["umount", "-l", path], capture_output=True)


def test_full_disk_fails_stores_softly(tmp_path):
    mnt = str(tmp_path / "small")
    _mount_tmpfs(mnt, 4 << 20)
    try:
        rng = random.Random(7)
        with lmc.SwapioL2Adapter(dirs=mnt, namespace="f") as a:
            keys = [_key(0, rng) for _ in range(96)]   # 6 MiB into 4 MiB
            data = [rng.randbytes(BLOCK) for _ in keys]
            ok, err, per_key = _one(a, a.submit_batch_set(
                keys, [_view(x) for x in data]))
            assert not ok and "ENOSPC" in err, err
            stored = [i for i, s in enumerate(per_key) if s]
            assert 0 < len(stored) < len(keys)
            # What was stored reads back; what failed is a miss.
            out = [_view(bytes(BLOCK)) for _ in keys]
            _, _, got = _one(a, a.submit_batch_get(keys, out))
            assert got == per_key
            for i in stored:
                assert bytes(out[i]) == data[i]
            # Serving goes on: removing blocks makes room for new ones.
            assert _one(a, a.submit_batch_delete(
                [keys[i] for i in stored]))[0]
            more = [_key(0, rng) for _ in range(4)]
            mdata = [rng.randbytes(BLOCK) for _ in more]
            ok, err, per_key = _one(a, a.submit_batch_set(
                more, [_view(x) for x in mdata]))
            assert ok, err
            out = [_view(bytes(BLOCK)) for _ in more]
            assert _one(a, a.submit_batch_get(more, out))[0]
            assert [bytes(m) for m in out] == mdata
    finally:
        _umount(mnt)


def test_capacity_from_params(tmp_path):
    with lmc.SwapioL2Adapter(dirs=str(tmp_path / "c"),
                             capacity_bytes=3 << 20) as a:
        assert a.stats()["capacity"] == 3 << 20
    with lmc.SwapioL2Adapter(dirs=str(tmp_path / "c"),
                             max_capacity_gb=0.5) as a:
        assert a.stats()["capacity"] == 1 << 29
    with pytest.raises(ValueError):
        lmc.SwapioL2Adapter(dirs=str(tmp_path / "c"), capacity_bytes=-1)
    with pytest.raises(ValueError):
        lmc.SwapioL2Adapter(dirs=[])


def test_closed_adapter_refuses_submits(tmp_path):
    a = lmc.SwapioL2Adapter(dirs=str(tmp_path / "x"))
    a.close()
    a.close()
    with pytest.raises(ValueError):
        a.submit_batch_exists(["k"])
    assert a.drain_completions() == []


def test_through_lmcache_native_plugin(tmp_path):
    """LMCache's own factory builds the adapter from the --l2-adapter JSON
    and drives it through its NativeConnectorL2Adapter: store, lookup and
    load of MemoryObjs by ObjectKey, per-key bitmaps."""
    pytest.importorskip("lmcache")
    torch = pytest.importorskip("torch")
    from lmcache.v1.distributed.api import ObjectKey
    from lmcache.v1.distributed.l2_adapters.config import (
        get_l2_adapter_config_class)
    from lmcache.v1.distributed.l2_adapters.factory import (
        create_l2_adapter_from_registry)
    from lmcache.v1.memory_management import (MemoryObjMetadata,
                                              TensorMemoryObj)

    def obj(t):
        return TensorMemoryObj(t, MemoryObjMetadata(
            shape=t.shape, dtype=t.dtype, address=0, phy_size=t.numel(),
            ref_count=1), None)

    def wait(fd):
        p = select.poll()
        p.register(fd, select.POLLIN)
        assert p.poll(20000), "no completion in 20 s"
        os.read(fd, 8)

    spec = {"type": "native_plugin", "module_path": "swapio.lmcache",
            "class_name": "SwapioL2Adapter",
            "adapter_params": {"dirs": [str(tmp_path / "p")],
                               "namespace": "plug"}}
    cfg = get_l2_adapter_config_class("native_plugin").from_dict(spec)
    w = create_l2_adapter_from_registry(cfg)
    try:
        assert isinstance(w._client, lmc.SwapioL2Adapter)
        gen = torch.Generator().manual_seed(8)
        keys = [ObjectKey(chunk_hash=bytes([i]) * 32,
                          model_name="/models/tiny-llama", kv_rank=0x01000100)
                for i in range(3)]
        src = [torch.randint(0, 256, (BLOCK,), dtype=torch.uint8,
                             generator=gen) for _ in keys]
        tid = w.submit_store_task(keys, [obj(t) for t in src])
        wait(w.get_store_event_fd())
        res = w.pop_completed_store_tasks()[tid]
        assert res.is_successful() and res.bytes_transferred() == 3 * BLOCK

        other = ObjectKey(chunk_hash=b"\xee" * 32,
                          model_name="/models/tiny-llama", kv_rank=0x01000100)
        tid = w.submit_lookup_and_lock_task([keys[0], other, keys[2]], {})
        wait(w.get_lookup_and_lock_event_fd())
        assert w.query_lookup_and_lock_result(tid).get_indices_list() == [0, 2]

        dst = [torch.zeros(BLOCK, dtype=torch.uint8) for _ in range(3)]
        tid = w.submit_load_task([keys[1], other, keys[2]],
                                 [obj(t) for t in dst])
        wait(w.get_load_event_fd())
        assert w.query_load_result(tid).get_indices_list() == [0, 2]
        assert torch.equal(dst[0], src[1]) and torch.equal(dst[2], src[2])
        assert not dst[1].any()
        assert w._client.stats()["blocks"] == 3
    finally:
        w.close()


# ------------------------------------------------------ under the cache server

def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


class CacheServer:
    """LMCache's multiprocess cache server with swapio.lmcache as its L2,
    run by lmcache_server.py in a subprocess."""

    def __init__(self, tmp_path, name, adapter_params):
        self.name = name
        self.port = _free_port()
        self.stats_path = tmp_path / (name + ".stats.json")
        self.log_path = str(tmp_path / (name + ".log"))
        l2 = {"type": "native_plugin", "module_path": "swapio.lmcache",
              "class_name": "SwapioL2Adapter",
              "adapter_params": adapter_params}
        argv = [sys.executable, os.path.join(HERE, "lmcache_server.py"),
                "--stats-out", str(self.stats_path),
                "--host", "localhost", "--port", str(self.port),
                "--prometheus-port", str(_free_port()),
                "--l1-size-gb", "0.25", "--eviction-policy", "LRU",
                "--chunk-size", str(CHUNK_TOKENS), "--max-workers", "1",
                "--supported-transfer-mode", "auto",
                "--l2-store-policy", "skip_l1",
                "--l2-adapter", json.dumps(l2)]
        self.eng = Engine(argv, self.log_path)
        deadline = time.monotonic() + SERVER_START_S
        while True:
            with open(self.log_path, "rb") as f:
                if b"\nREADY\n" in b"\n" + f.read():
                    break
            if self.eng.proc.poll() is not None or \
                    time.monotonic() > deadline:
                tail = self.eng.log_tail()
                self.eng.close()
                pytest.fail("cache server %s did not start:\n%s"
                            % (name, tail))
            time.sleep(0.5)

    def stop(self):
        """SIGTERM, as an operator stops it; returns the adapters'
        counters, read just before they closed."""
        try:
            self.eng.proc.send_signal(signal.SIGTERM)
            try:
                self.eng.proc.wait(SERVER_STOP_S)
            except subprocess.TimeoutExpired:
                pytest.fail("cache server %s did not stop:\n%s"
                            % (self.name, self.eng.log_tail()))
            if not self.stats_path.exists():
                pytest.fail("cache server %s left no counters:\n%s"
                            % (self.name, self.eng.log_tail()))
            stats = json.loads(self.stats_path.read_text())
            assert len(stats) == 1, stats
            return stats[0]
        finally:
            self.eng.close()

    def close(self):
        self.eng.close()


def _vllm(tmp_path, name, port, steps, model):
    return run_engine_lmcache({"model": model, "port": port,
                               "prompt_len": PROMPT_LEN,
                               "max_tokens": MAX_TOKENS, "steps": steps},
                              tmp_path, name)


def run_engine_lmcache(spec, tmp_path, name):
    spec_path = tmp_path / (name + ".json")
    out_path = tmp_path / (name + ".out.json")
    spec_path.write_text(json.dumps(spec))
    eng = Engine([sys.executable, os.path.join(HERE, "lmcache_engine_run.py"),
                  str(spec_path), str(out_path)],
                 str(tmp_path / (name + ".log")))
    try:
        rc = eng.wait()
        if rc != 0 or not out_path.exists():
            pytest.fail("%s exited with %s:\n%s" % (name, rc, eng.log_tail()))
    finally:
        eng.close()
    return json.loads(out_path.read_text())


def _same_output(run, ref):
    assert run["tokens"] == ref["tokens"]
    assert run["logprobs"] == pytest.approx(ref["logprobs"], abs=1e-4)


@pytest.fixture(scope="module")
def cold(tmp_path_factory, tiny_model_dir):
    """A cold generation through a cache server whose L2 is swapio: the
    reference output, and the store it filled (the server stopped)."""
    tmp = tmp_path_factory.mktemp("lmcache-cold")
    params = {"dirs": [str(tmp / "l2a"), str(tmp / "l2b")],
              "namespace": "kv"}
    srv = CacheServer(tmp, "server-cold", params)
    try:
        runs = _vllm(tmp, "vllm-cold", srv.port, ["gen"], tiny_model_dir)
    finally:
        stats = srv.stop()
    assert runs[0]["num_cached_tokens"] == 0
    return {"tmp": tmp, "params": params, "ref": runs[0], "stats": stats}


@pytest.mark.engine
def test_server_restart_loads_from_swapio(cold, tmp_path, tiny_model_dir):
    # The cold run stored every whole chunk of the prompt, and read none.
    st = cold["stats"]
    assert st["blocks"] == CACHED // CHUNK_TOKENS, st
    assert st["hits"] == 0, st

    # A new server (empty L1) on the same dirs and a new vLLM (empty
    # prefix cache): the prefix can come only from swapio.
    srv = CacheServer(tmp_path, "server-warm", cold["params"])
    try:
        runs = _vllm(tmp_path, "vllm-warm", srv.port,
                     ["gen", "reset", "gen"], tiny_model_dir)
    finally:
        st = srv.stop()
    for run in runs:
        assert run["num_cached_tokens"] == CACHED
        _same_output(run, cold["ref"])
    assert st["hits"] >= CACHED // CHUNK_TOKENS, st
    assert st["bad_checksums"] == 0 and st["misses"] == 0, st
    assert st["blocks"] == CACHED // CHUNK_TOKENS, st


@pytest.mark.engine
def test_server_damaged_block_is_a_miss(cold, tmp_path, tiny_model_dir):
    # A copy of the cold store with the first chunk's block damaged.
    params = dict(cold["params"])
    params["dirs"] = []
    for i, d in enumerate(cold["params"]["dirs"]):
        dst = str(tmp_path / ("copy%d" % i))
        shutil.copytree(d, dst)
        params["dirs"].append(dst)
    assert _damage_one_block(params["dirs"], params["namespace"],
                             (tiny_model_dir + "@").encode())

    srv = CacheServer(tmp_path, "server-damaged", params)
    try:
        runs = _vllm(tmp_path, "vllm-damaged", srv.port,
                     ["gen", "reset", "gen"], tiny_model_dir)
    finally:
        st = srv.stop()
    # The damaged chunk is a miss, and so is the prefix past it: vLLM
    # computes them, the output is the cold run's. The chunk is stored
    # again, and the next request loads it.
    assert runs[0]["num_cached_tokens"] in (0, CHUNK_TOKENS)
    assert runs[1]["num_cached_tokens"] == CACHED
    for run in runs:
        _same_output(run, cold["ref"])
    assert st["bad_checksums"] == 1, st
    assert st["puts"] >= 1 and st["blocks"] == CACHED // CHUNK_TOKENS, st


@pytest.mark.engine
def test_server_full_disk_serves_on(cold, tmp_path, tiny_model_dir):
    mnt = str(tmp_path / "small")
    _mount_tmpfs(mnt, 1 << 20)
    try:
        srv = CacheServer(tmp_path, "server-full",
                          {"dirs": mnt, "namespace": "full"})
        try:
            # Fill what the store left free.
            _fill(mnt)
            runs = _vllm(tmp_path, "vllm-full", srv.port,
                         ["gen", "reset", "gen"], tiny_model_dir)
        finally:
            st = srv.stop()
    finally:
        _umount(mnt)
    # Every store failed, softly: the server reported them failed (so it
    # kept the chunks in L1 and served the next request from there), and
    # the output is the cold run's each time.
    for run in runs:
        _same_output(run, cold["ref"])
    assert runs[0]["num_cached_tokens"] == 0
    assert runs[1]["num_cached_tokens"] == CACHED
    assert st["failed"] >= 1 and st["blocks"] == 0, st


def _fill(mnt):
    """Fills the file system at MNT to the last byte."""
    fd = os.open(os.path.join(mnt, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        size = 1 << 16
        while size:
            try:
                os.write(fd, b"\xa5" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC
                size //= 2
    finally:
        os.close(fd)


def _damage_one_block(dirs, namespace, key_prefix):
    """Flips a byte in the payload of one block of the store, found by its
    key (whose first bytes are KEY_PREFIX) in the extent's header: a data
    file is extents of a 4096-byte header block, then the payload."""
    for d in dirs:
        path = os.path.join(d, namespace, "data")
        if not os.path.exists(path):
            continue
        with open(path, "r+b") as f:
            data = f.read()
            i = data.find(key_prefix)
            if i < 0:
                continue
            at = i - i % 4096 + 4096 + 100
            f.seek(at)
            f.write(bytes([data[at] ^ 0xFF]))
            return True
    return False
