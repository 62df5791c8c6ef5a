"""swapio.BlockTier through its Python API: batches from slices of one
buffer, byte for byte, on every engine; the eventfd; buffers kept alive
by the tier while it uses them; misses, damage, capacity, deadlines,
restart across processes, namespaces, and the errors of bad arguments."""

import errno
import gc
import os
import select
import subprocess
import sys
import time

import numpy as np
import pytest

import swapio
from swapio import _tier

KiB = 1024


def reap_one(t, bid, timeout=30):
    """Wait on the eventfd until batch @bid's record comes; its results."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([t.fileno()], [], [], 1.0)
        for got, res in t.reap():
            if got == bid:
                return res
    raise AssertionError("batch %d never finished" % bid)


def slices(buf, n, size, stride=None, off=0):
    mv = memoryview(buf).cast("B")
    stride = stride or size
    return [mv[off + i * stride: off + i * stride + size] for i in range(n)]


@pytest.mark.parametrize("size,off", [(256 * KiB, 0), (12345, 7),
                                      (2 * 1024 * KiB + 3, 512)])
def test_round_trip(tmp_path, engine, size, off):
    n = 24
    rng = np.random.default_rng(size)
    src = rng.integers(0, 256, n * (size + off) + off, dtype=np.uint8)
    dst = np.zeros_like(src)
    keys = ["model@%08x@0@%064x" % (i, i * 7919) for i in range(n)]
    with swapio.BlockTier(str(tmp_path), namespace="ns-a",
                          engine=engine) as t:
        res = reap_one(t, t.submit_put(keys, slices(src, n, size,
                                                    size + off, off)))
        assert res == [0] * n
        res = reap_one(t, t.submit_get(keys, slices(dst, n, size,
                                                     size + off, off)))
        assert res == [0] * n
        for i in range(n):
            a = off + i * (size + off)
            assert np.array_equal(dst[a:a + size], src[a:a + size])
        assert all(k in t for k in keys)
        st = t.stats()
        assert st["blocks"] == n and st["hits"] == n and st["puts"] == n
        assert st["read_bytes"] == st["written_bytes"] == n * size


def test_exists_remove_and_miss(tmp_path):
    size, n = 64 * KiB, 10
    src = np.random.default_rng(1).integers(0, 256, n * size, dtype=np.uint8)
    keys = [b"blk-%d" % i for i in range(n)]
    with swapio.BlockTier([str(tmp_path)], namespace="x") as t:
        assert reap_one(t, t.submit_put(keys, slices(src, n, size))) == [0] * n
        assert reap_one(t, t.submit_remove(keys[::2])) == [0] * (n // 2)
        res = reap_one(t, t.submit_exists(keys + [b"never"]))
        assert res == [-errno.ENOENT if i % 2 == 0 else 0
                       for i in range(n)] + [-errno.ENOENT]
        dst = bytearray(size)
        assert reap_one(t, t.submit_get([keys[0]], [dst])) == [-errno.ENOENT]
        # The wrong size is refused per block, not read.
        assert reap_one(t, t.submit_get([keys[1]], [bytearray(size - 1)])) \
            == [-errno.EMSGSIZE]
        # Misses count gets only: the lookups' and removes' answers not.
        st = t.stats()
        assert st["misses"] == 1 and st["failed"] == 1


def test_buffers_kept_alive_by_the_tier(tmp_path):
    """Buffers dropped by the caller right after submit are still what the
    tier reads and writes: it holds them until the batch is reaped."""
    size, n = 128 * KiB, 32
    data = [os.urandom(size) for _ in range(n)]
    keys = ["k%d" % i for i in range(n)]
    with swapio.BlockTier(str(tmp_path), namespace="alive") as t:
        bid = t.submit_put(keys, [bytearray(d) for d in data])
        gc.collect()
        assert reap_one(t, bid) == [0] * n
        outs = [bytearray(size) for _ in range(n)]
        views = [memoryview(o) for o in outs]
        bid = t.submit_get(keys, views)
        del views
        gc.collect()
        assert reap_one(t, bid) == [0] * n
        assert [bytes(o) for o in outs] == data


def test_torch_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    x = torch.randn(16, 4096)
    y = torch.zeros_like(x)
    keys = ["t%d" % i for i in range(16)]
    with swapio.BlockTier(str(tmp_path), namespace="torch") as t:
        assert reap_one(t, t.submit_put(keys, [r.numpy() for r in x])) \
            == [0] * 16
        assert reap_one(t, t.submit_get(keys, [r.numpy() for r in y])) \
            == [0] * 16
    assert torch.equal(x, y)


def test_damaged_block_is_a_miss(tmp_path):
    size, n = 64 * KiB, 6
    src = np.random.default_rng(3).integers(0, 256, n * size, dtype=np.uint8)
    keys = ["d%d" % i for i in range(n)]
    with swapio.BlockTier(str(tmp_path), namespace="dmg") as t:
        assert reap_one(t, t.submit_put(keys, slices(src, n, size))) == [0] * n
    data = tmp_path / "dmg" / "data"
    raw = bytearray(data.read_bytes())
    at = raw.find(src[2 * size:3 * size].tobytes())
    assert at >= 0
    with open(data, "r+b") as f:
        f.seek(at + 100)
        f.write(bytes([raw[at + 100] ^ 1]))
    dst = np.zeros_like(src)
    with swapio.BlockTier(str(tmp_path), namespace="dmg") as t:
        res = reap_one(t, t.submit_get(keys, slices(dst, n, size)))
        assert res == [0, 0, -errno.EBADMSG, 0, 0, 0]
        for i in (0, 1, 3, 4, 5):
            assert np.array_equal(dst[i * size:(i + 1) * size],
                                  src[i * size:(i + 1) * size])
        assert t.stats()["bad_checksums"] == 1
        assert "d2" not in t


def test_capacity_evicts_oldest(tmp_path):
    size = 64 * KiB
    cap = 10 * (size + 4 * KiB)
    src = np.random.default_rng(4).integers(0, 256, 40 * size, dtype=np.uint8)
    keys = ["c%d" % i for i in range(40)]
    with swapio.BlockTier(str(tmp_path), namespace="cap", capacity=cap,
                          high_watermark=1.0, low_watermark=0.5) as t:
        for i in range(0, 40, 4):
            assert reap_one(t, t.submit_put(
                keys[i:i + 4], slices(src[i * size:], 4, size))) == [0] * 4
        st = t.stats()
        assert st["disk_bytes"] <= cap
        assert st["evicted"] == 40 - st["blocks"]
        assert all(k in t for k in keys[-4:])
        assert "c0" not in t


def test_deadline_fails_a_hung_batch(tmp_path, monkeypatch):
    """Reads held back 1.5 s: a batch with a 100 ms deadline says
    -ETIMEDOUT for every block, flagged EXPIRED and HELD, long before the
    I/O ends; its buffers come back with a RELEASED record later."""
    size, n = 64 * KiB, 8
    src = os.urandom(n * size)
    keys = ["h%d" % i for i in range(n)]
    monkeypatch.setenv("SWAPIO_FAULT", "delay_ms=1500,dir=read")
    t = swapio.BlockTier(str(tmp_path), namespace="hang")
    monkeypatch.delenv("SWAPIO_FAULT")
    try:
        assert reap_one(t, t.submit_put(keys, slices(src, n, size))) == [0] * n
        out = bytearray(n * size)
        t0 = time.monotonic()
        bid = t.submit_get(keys, slices(out, n, size), timeout_ms=100)
        submitted = time.monotonic()
        recs = []
        while not recs:
            assert t.wait(30000)
            recs = [r for r in t.reap_flags() if r[0] == bid]
        expired = time.monotonic()
        _, flags, res = recs[0]
        assert res == [-errno.ETIMEDOUT] * n
        assert flags & _tier.EXPIRED and flags & _tier.HELD
        assert t.stats()["expired"] == 1
        # Order, not speed: the submit came back, then the deadline, and
        # only then did the held-back reads end.
        assert t0 <= submitted <= expired
        while t.stats()["inflight"]:
            time.sleep(0.05)
        assert time.monotonic() - t0 >= 1.0
        t.reap()
    finally:
        t.close()


RESTART = r"""
import sys, numpy as np, swapio
root, phase = sys.argv[1], sys.argv[2]
size, n = 256 * 1024, 12
src = np.random.default_rng(9).integers(0, 256, n * size, dtype=np.uint8)
keys = ["r%d" % i for i in range(n)]
t = swapio.BlockTier(root, namespace="restart")
mv = memoryview(src)
if phase == "put":
    bid = t.submit_put(keys, [mv[i*size:(i+1)*size] for i in range(n)])
    t.wait(); assert t.reap() == [(bid, [0] * n)]
    t.close()
else:
    dst = np.zeros_like(src); dv = memoryview(dst)
    bid = t.submit_get(keys, [dv[i*size:(i+1)*size] for i in range(n)])
    t.wait(); assert t.reap() == [(bid, [0] * n)]
    assert np.array_equal(dst, src) and t.stats()["blocks"] == n
    t.close()
print("ok", phase)
"""


def test_restart_across_processes(tmp_path):
    for phase in ("put", "get"):
        r = subprocess.run([sys.executable, "-c", RESTART, str(tmp_path),
                            phase], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "ok " + phase


def test_namespaces_and_one_owner(tmp_path):
    buf = os.urandom(4096)
    with swapio.BlockTier(str(tmp_path), namespace="a") as a, \
            swapio.BlockTier(str(tmp_path), namespace="b") as b:
        assert reap_one(a, a.submit_put(["k"], [buf])) == [0]
        assert reap_one(b, b.submit_exists(["k"])) == [-errno.ENOENT]
        with pytest.raises(swapio.Error) as e:
            swapio.BlockTier(str(tmp_path), namespace="a")
        assert e.value.errno == errno.EBUSY


@pytest.mark.parametrize("ns", ["", "../x", ".h", "a/b", "x" * 65])
def test_bad_namespace(tmp_path, ns):
    with pytest.raises(swapio.Error) as e:
        swapio.BlockTier(str(tmp_path), namespace=ns)
    assert e.value.errno == errno.EINVAL
    assert "namespace" in str(e.value)


def test_bad_arguments(tmp_path):
    with swapio.BlockTier(str(tmp_path), namespace="args") as t:
        with pytest.raises(ValueError):
            t.submit_put(["a", "b"], [b"x"])
        with pytest.raises(ValueError):
            t.submit_exists([])
        with pytest.raises(TypeError):
            t.submit_exists([3])
        with pytest.raises((TypeError, BufferError)):
            t.submit_get(["a"], [b"read-only"])
        assert reap_one(t, t.submit_exists(["x" * 300])) == [-errno.EINVAL]
        assert t.reap() == []
        assert t.wait(10) is False
    assert t.closed
    with pytest.raises(ValueError):
        t.submit_exists(["a"])
    with pytest.raises(ValueError):
        swapio.BlockTier(str(tmp_path), namespace="w", low_watermark=0.9,
                         high_watermark=0.5)
