"""Integer arguments are taken in range or refused, never wrapped or
truncated: OverflowError out of range, TypeError for floats and strings."""

import pytest

import swapio


BIG = [2**32 + 1, 2**64 + 4096, -1]


@pytest.mark.parametrize("kw", ["queue_depth", "threads", "block_size"])
@pytest.mark.parametrize("value", BIG)
def test_handle_ints_out_of_range(kw, value):
    if kw == "block_size" and value == 2**32 + 1:
        value = 2**64 + 1
    with pytest.raises(OverflowError):
        swapio.Handle(**{kw: value})


@pytest.mark.parametrize("value", [1.5, "12", 4096.0, None])
def test_handle_ints_wrong_type(value):
    for kw in ("queue_depth", "threads", "block_size"):
        with pytest.raises(TypeError):
            swapio.Handle(**{kw: value})


def test_offsets(handle, path):
    with handle.open(path, "w+") as f:
        for off in (1.5, "12"):
            with pytest.raises(TypeError):
                f.pwrite(b"x", off)
            with pytest.raises(TypeError):
                handle.pwrite(path, b"x", off)
        with pytest.raises(OverflowError):
            f.pwrite(b"x", 2**64)
        with pytest.raises(ValueError):
            f.pwrite(b"x", -1)
        with pytest.raises(TypeError):
            f.allocate(0.5, 4096)
        assert f.size == 0              # nothing was written


def test_store_and_pipeline_ints(handle, tmp_path):
    d = str(tmp_path / "s")
    with pytest.raises(OverflowError):
        swapio.Store(d, handle, capacity=2**64)
    with pytest.raises(OverflowError):
        swapio.Store(d, handle, stripe_unit=-1)
    with pytest.raises(TypeError):
        swapio.Store(d, handle, grow_bytes=1.5)
    with swapio.Store(d, handle) as s:
        s.put("k", bytes(4096))
        with pytest.raises(OverflowError):
            swapio.Pipeline(s, [[("k", 2**64 + 4096)]])
        with pytest.raises(TypeError):
            swapio.Pipeline(s, [[("k", 4096.0)]])
        with pytest.raises(OverflowError):
            swapio.Pipeline(s, [[("k", 4096)]], depth=2**32 + 1)
        with pytest.raises(OverflowError):
            swapio.Pipeline(s, [[("k", 4096)]], budget_bytes=-1)
        p = swapio._Pipeline(s, [[("k", 4096)]])
        with pytest.raises(OverflowError):
            p.release(2**32, False)
        p.close()
    with pytest.raises(OverflowError):
        swapio.alloc(2**64)
    with pytest.raises(TypeError):
        swapio.alloc(1.0)
    with pytest.raises(OverflowError):
        swapio.strerror(2**32 - 5)      # not -5 wrapped
    assert swapio.strerror(-5) == "Input/output error"


def test_deepspeed_ints(tmp_path):
    torch = pytest.importorskip("torch")
    ds = pytest.importorskip("swapio.deepspeed")
    path = str(tmp_path / "d")
    h = ds.aio_handle()
    t = torch.arange(256, dtype=torch.uint8)
    for bad in (1.5, "12", 2.0):
        with pytest.raises(TypeError):
            h.sync_pwrite(t, path, bad)
        with pytest.raises(TypeError):
            h.async_pread(t, path, bad)
    with pytest.raises(OverflowError):
        h.sync_pwrite(t, path, 2**64)
    import os
    assert not os.path.exists(path) or os.path.getsize(path) == 0
    for kw in ("block_size", "queue_depth", "intra_op_parallelism"):
        with pytest.raises(TypeError):
            ds.aio_handle(**{kw: 1.5})
        with pytest.raises(TypeError):
            ds.aio_handle(**{kw: "12"})
    with pytest.raises(TypeError):
        h.new_cpu_locked_tensor(2.5, t)
    assert h.wait() == 0
    h.close()
