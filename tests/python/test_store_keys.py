"""Store keys of any bytes, and gets racing replaces of another size."""

import threading

import numpy as np
import pytest

import swapio


@pytest.fixture
def store(handle, tmp_path):
    with swapio.Store(str(tmp_path / "st"), handle) as s:
        yield s


def test_non_utf8_keys_round_trip(store):
    raw = b"\xff\xfe"
    a = np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8)
    store.put(raw, a)
    store.put("caf\u00e9", a[:10])
    keys = store.keys()
    assert sorted(keys) == sorted(["\udcff\udcfe", "caf\u00e9"])
    k = [k for k in keys if k != "caf\u00e9"][0]
    # Every form names the same key: the str from keys(), the bytes.
    for form in (k, raw):
        assert form in store
        assert store.size(form) == a.nbytes
        assert np.array_equal(np.frombuffer(store.get(form), np.uint8), a)
        out = np.zeros_like(a)
        assert store.get_async(form, out).wait() == a.nbytes
        assert np.array_equal(out, a)
    assert "caf\u00e9".encode() in store
    store.remove(k)
    assert raw not in store and k not in store
    with pytest.raises(swapio.NoSuchKey):
        store.get(raw)
    store.put(k, a[:7])                 # a str key from keys() puts too
    assert store.get(raw).nbytes == 7
    with pytest.raises(ValueError):
        store.put(b"a\x00b", a)
    with pytest.raises(TypeError):
        store.put(5, a)


def test_get_races_replaces_of_another_size(store):
    # One thread replaces the key with values of changing sizes; another
    # gets it without an output buffer: every get returns one whole value
    # (its size and bytes agree), never EMSGSIZE.
    vals = [np.full(n, n % 251, dtype=np.uint8)
            for n in (4096, 100, 3 << 20, 1, 8192 + 3, 70000)]
    store.put("k", vals[0])
    stop = threading.Event()
    errors = []

    def writer():
        i = 0
        try:
            while not stop.is_set():
                i += 1
                store.put("k", vals[i % len(vals)])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=writer)
    t.start()
    try:
        seen = set()
        for _ in range(4000):
            got = np.frombuffer(store.get("k"), np.uint8)
            op = store.get_async("k")
            op.wait()
            for v in (got, np.frombuffer(op.out, np.uint8)):
                assert v.nbytes in {x.nbytes for x in vals}
                assert np.all(v == v.nbytes % 251)
                seen.add(v.nbytes)
    finally:
        stop.set()
        t.join()
    assert not errors
    assert len(seen) > 1                # the race really ran
