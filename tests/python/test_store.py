"""The store and the pipeline in Python's shapes."""

import errno
import random

import numpy as np
import pytest

import swapio


@pytest.fixture
def store(handle, tmp_path):
    with swapio.Store(str(tmp_path / "st"), handle) as s:
        yield s


def test_store_roundtrip(store):
    a = np.arange(100_003, dtype=np.float32)
    store.put("a", a)
    store.put("b", b"hello")
    assert "a" in store and "zz" not in store and len(store) == 2
    assert store.keys() == ["a", "b"]
    assert store.size("a") == a.nbytes
    out = np.zeros_like(a)
    assert store.get("a", out) is out
    assert np.array_equal(out, a)
    assert bytes(store.get("b")) == b"hello"
    op = store.put_async("c", a * 2)
    assert op.wait() == a.nbytes
    g = store.get_async("c")
    assert g.wait() == a.nbytes
    assert np.array_equal(np.frombuffer(g.out, np.float32), a * 2)
    store.remove("b")
    assert "b" not in store
    with pytest.raises(KeyError):
        store.get("b")
    with pytest.raises(swapio.NoSuchKey):
        store.remove("b")
    store.sync()
    info = store.info()
    assert info["keys"] == 2 and info["value_bytes"] == 2 * a.nbytes


def test_store_size_mismatch(store):
    store.put("k", bytes(100))
    with pytest.raises(swapio.Error) as e:
        store.get("k", bytearray(99))
    import errno
    assert e.value.errno == errno.EMSGSIZE


def test_store_busy(handle, tmp_path):
    d = str(tmp_path / "st")
    with swapio.Store(d, handle):
        with pytest.raises(swapio.Error) as e:
            swapio.Store(d, handle)
        import errno
        assert e.value.errno == errno.EBUSY


def test_pipeline(store):
    groups = []
    for g in range(5):
        keys = []
        for t in range(2):
            k = f"g{g}t{t}"
            store.put(k, np.full(1000 + t, g, dtype=np.float32))
            keys.append((k, (1000 + t) * 4))
        groups.append(keys)
    pipe = swapio.Pipeline(store, groups, pinned=False)
    seen = []
    for grp in pipe:
        a, b = grp.arrays(np.float32)
        assert (a == grp.index).all() and (b == grp.index).all()
        a += 10
        b += 10
        seen.append(grp.index)
    assert seen == list(range(5))
    seen = []
    for grp in pipe:
        assert (grp.arrays(np.float32)[0] == grp.index + 10).all()
        grp.release(write_back=False)
        seen.append(grp.index)
    assert seen == list(range(5))
    # Leaving a pass early ends it: the next starts at group 0 again, and
    # what was written back before the break is kept.
    for grp in pipe:
        grp.arrays(np.float32)[0][:] = 99
        break
    assert [g.index for g in pipe] == list(range(5))
    pipe.close()
    out = np.zeros(1000, np.float32)
    store.get("g0t0", out)
    assert (out == 99).all()
    store.get("g3t0", out)
    assert (out == 13).all()


def test_store_striped(tmp_path):
    """A list of directories: a striped store, a Handle per drive."""
    dirs = [str(tmp_path / f"drive{i}") for i in range(3)]
    rng = np.random.default_rng(12)
    vals = {f"v{i}": rng.integers(0, 256, n, dtype=np.uint8)
            for i, n in enumerate((1, 4095, 65537, (3 << 20) + 7))}
    hs = [swapio.Handle(engine="threads") for _ in dirs]
    try:
        with swapio.Store(dirs, hs, stripe_unit=64 << 10) as s:
            for k, v in vals.items():
                s.put(k, v)
            info = s.info()
            assert info["drives"] == 3 and info["stripe_unit"] == 64 << 10
            s.sync()
        # Reopened with one shared handle, and the recorded unit.
        with swapio.Store(tuple(dirs), hs[0]) as s:
            for k, v in vals.items():
                assert np.array_equal(np.frombuffer(s.get(k), np.uint8), v)
        with pytest.raises(swapio.Error) as e:
            swapio.Store(dirs[::-1], hs)
        assert e.value.errno == errno.EXDEV
        with pytest.raises(swapio.Error) as e:
            swapio.Store(dirs[0], hs[0])
        assert e.value.errno == errno.EXDEV
        (tmp_path / "drive1").rename(tmp_path / "away")
        with pytest.raises(swapio.Error) as e:
            swapio.Store(dirs, hs)
        assert e.value.errno == errno.ENOENT and e.value.filename == dirs[1]
        with pytest.raises(ValueError):
            swapio.Store(dirs, hs[:2])
        with pytest.raises(TypeError):
            swapio.Store(dirs, [hs[0], None, hs[2]])
    finally:
        for h in hs:
            h.close()


def test_handle_share_node(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.delenv("SWAPIO_SHARE_NODE", raising=False)
    with swapio.Handle(queue_depth=32, share_node=True) as h:
        assert h.config["queue_depth"] == 8
    with swapio.Handle(queue_depth=32) as h:
        assert h.config["queue_depth"] == 32
    monkeypatch.setenv("SWAPIO_SHARE_NODE", "1")
    with swapio.Handle() as h:
        assert h.config["queue_depth"] == 8


def test_handle_spin_wait(tmp_path):
    """spin_wait=False reaches the handle; small ops at depth 1 stay exact
    either way (the spinning waiter sees the same result)."""
    for spin in (True, False):
        with swapio.Handle(spin_wait=spin) as h:
            assert h.config["spin_wait"] is spin
            path = str(tmp_path / f"f{spin}")
            src = bytes(random.Random(7).randbytes(4096 * 9 + 5))
            for off in range(0, len(src), 4096):
                assert h.pwrite(path, src[off:off + 4096], off) == \
                    len(src[off:off + 4096])
            dst = bytearray(len(src))
            for off in range(0, len(src), 4096):
                view = memoryview(dst)[off:off + 4096]
                assert h.pread(path, view, off) == len(view)
            assert dst == src
