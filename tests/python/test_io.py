"""Round trips of NumPy arrays, torch tensors and Python buffers, on every
engine: sync, async, wait_any, wait_all, asyncio."""

import asyncio
import mmap

import numpy as np
import pytest

import swapio

SIZES = (1, 4095, 4096, 1_000_003, 3 << 20)
OFFSETS = (0, 1, 4096, 12_345)


def rand(n, dtype=np.uint8):
    rng = np.random.default_rng(n)
    return rng.integers(0, 255, n, dtype=np.uint8).view(dtype)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("off", OFFSETS)
def test_numpy_sync(handle, path, n, off):
    a = rand(n)
    with handle.open(path, "w+") as f:
        assert f.pwrite(a, off) == n
        assert f.size == off + n
        b = np.zeros_like(a)
        assert f.pread(b, off) == n
    assert np.array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8,
                                   np.float64])
def test_numpy_dtypes_async(handle, path, dtype):
    a = rand(8 * 333_333).view(dtype)
    b = np.zeros_like(a)
    with handle.open(path, "w+") as f:
        assert f.write_async(a, 4096).wait() == a.nbytes
        op = f.read_async(b, 4096)
        assert op.wait(timeout=30) == a.nbytes
        assert op.done() and op.result == a.nbytes
    assert np.array_equal(a.view(np.uint8), b.view(np.uint8))


@pytest.mark.parametrize("name", ["float32", "bfloat16", "float16", "int8"])
def test_torch(handle, path, name):
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, name)
    t = torch.randn(513, 77).to(dtype) if name != "int8" else \
        torch.randint(-128, 127, (513, 77), dtype=torch.int8)
    out = torch.zeros_like(t)
    with handle.open(path, "w+") as f:
        assert f.pwrite(t, 3) == t.numel() * t.element_size()
        assert f.read_async(out, 3).wait() == t.numel() * t.element_size()
    assert torch.equal(t, out)
    # A view at an odd offset within a larger tensor.
    big = torch.zeros(513 * 77 + 5, dtype=dtype)
    with handle.open(path, "r") as f:
        f.pread(big[5:], 3)
    assert torch.equal(big[5:].view(513, 77), t)


def test_empty_torch_roundtrip(handle, path):
    torch = pytest.importorskip("torch")
    t = swapio.empty_torch((1 << 20,), torch.bfloat16)
    t.copy_(torch.randn(1 << 20).to(torch.bfloat16))
    u = swapio.empty_torch((1 << 20,), torch.bfloat16, pinned=False)
    handle.pwrite(path, t)
    handle.pread(path, u)
    assert torch.equal(t, u)


def test_python_buffers(handle, path):
    data = bytes(range(256)) * 100 + b"x"
    assert handle.pwrite(path, data) == len(data)
    ba = bytearray(len(data))
    assert handle.pread(path, ba) == len(data)
    assert ba == data
    mv = memoryview(bytearray(len(data)))
    handle.read_async(path, mv).wait()
    assert mv.tobytes() == data
    m = mmap.mmap(-1, len(data))
    assert handle.pread(path, m) == len(data)
    assert m[:] == data
    m.close()


def test_short_read_at_eof(handle, path):
    handle.pwrite(path, b"abc")
    buf = bytearray(10)
    assert handle.pread(path, buf) == 3


def test_empty_is_aligned_and_zeroed():
    a = swapio.empty((3, 5000), np.float32)
    assert a.shape == (3, 5000) and a.dtype == np.float32
    assert a.ctypes.data % 4096 == 0
    assert not a.any()
    buf = a.base
    while not isinstance(buf, swapio.Buffer):
        buf = buf.base if hasattr(buf, "base") else buf.obj
    assert buf.pinned


def test_wait_any_and_wait_all(handle, path):
    a = rand(1 << 20)
    with handle.open(path, "w+") as f:
        ops = [f.write_async(a, i << 20) for i in range(4)]
        i = swapio.wait_any(ops, timeout=30)
        assert 0 <= i < 4 and ops[i].done()
        handle.wait_all(timeout=30)
        assert all(op.done() for op in ops)
        assert [op.wait() for op in ops] == [1 << 20] * 4
        # A finished op answers at once, the lowest index first.
        assert swapio.wait_any(ops) == 0


def test_asyncio(handle, path):
    a = rand(1 << 20)

    async def main():
        with handle.open(path, "w+") as f:
            n = await f.write_async(a, 0)
            outs = [np.zeros_like(a) for _ in range(8)]
            res = await asyncio.gather(*(f.read_async(o, 0) for o in outs))
            return n, res, outs

    n, res, outs = asyncio.run(main())
    assert n == a.nbytes and res == [a.nbytes] * 8
    assert all(np.array_equal(o, a) for o in outs)


def test_asyncio_error(handle, tmp_path):
    async def main():
        await handle.read_async(str(tmp_path), bytearray(10))

    with pytest.raises(swapio.Error):
        asyncio.run(main())


def test_handle_knobs(tmp_path):
    with swapio.Handle(block_size=64 << 10, queue_depth=8, threads=2,
                       engine="threads", direct=False, single_submit=True,
                       overlap=False) as h:
        c = h.config
        assert c["block_size"] == 64 << 10 and c["queue_depth"] == 8
        assert c["threads"] == 2 and c["engine"] == "threads"
        assert not c["direct"] and c["single_submit"] and not c["overlap"]
        assert h.engine == "threads" and "threads" in h.engine_note
        assert h.fileno() >= 0
        p = str(tmp_path / "k")
        assert h.pwrite(p, b"x" * 5000) == 5000
        assert h.stats()["bytes_written"] == 5000
        h.reset_stats()
        assert h.stats()["bytes_written"] == 0
    assert h.closed
    with pytest.raises(ValueError):
        h.open(p)


@pytest.mark.parametrize("n", (4097, 1_000_003, 3 << 20))
@pytest.mark.parametrize("off", (0, 12_345))
def test_bounce_every_request(engine, path, n, off):
    """bounce=True copies every direct request through the bounce blocks,
    from aligned memory too; swapio's own locked buffers go direct."""
    with swapio.Handle(engine=engine, block_size=256 << 10,
                       bounce=True) as h:
        assert h.config["bounce"] is True
        with h.open(path, "w+") as f:
            if not f.direct:
                pytest.skip("no O_DIRECT under %s" % path)
            page = 4096
            body = max(0, (off + n) // page * page - -(-off // page) * page)
            # Memory on the page as the file offset: nothing needs a bounce.
            mem = swapio.empty((n + page,), np.uint8, pinned=False)
            a = mem[off % page:off % page + n]
            a[:] = rand(n)
            assert f.pwrite(a, off) == n
            back = swapio.empty((n + page,), np.uint8, pinned=False)
            b = back[off % page:off % page + n]
            assert f.pread(b, off) == n
            assert np.array_equal(a, b)
            assert h.stats()["bounced_bytes"] == 2 * body
            try:
                locked = swapio.empty((n + page,), np.uint8)
            except swapio.Error:
                return          # RLIMIT_MEMLOCK: nothing locked to check
            h.reset_stats()
            c = locked[off % page:off % page + n]
            assert f.pread(c, off) == n
            assert np.array_equal(a, c)
            if n + page >= 64 << 10:  # registered from 64 KiB (REG_MIN)
                assert h.stats()["bounced_bytes"] == 0


def _thp_on():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[never]" not in f.read()
    except OSError:
        return False


def test_hugepages_keeps_the_data_and_carries_io(handle, path):
    """swapio.hugepages() on ordinary NumPy memory: the whole 2 MiB pages
    inside it become huge pages, the content is unchanged, and O_DIRECT
    I/O through it round-trips."""
    n = (8 << 20) + 4097
    a = np.random.default_rng(7).integers(0, 256, n, dtype=np.uint8)
    want = a.copy()
    if not _thp_on():
        with pytest.raises(swapio.Error):
            swapio.hugepages(a)
        return
    got = swapio.hugepages(a)
    assert got % (2 << 20) == 0 and (6 << 20) <= got <= n
    assert np.array_equal(a, want)
    handle.pwrite(path, a)
    b = np.zeros(n, np.uint8)
    swapio.hugepages(b)
    handle.pread(path, b)
    assert np.array_equal(b, want)
    assert swapio.hugepages(b"tiny") == 0
