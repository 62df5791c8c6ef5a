"""A store whose index lost records never opens silently."""

import errno
import os
import warnings

import numpy as np
import pytest

import swapio

REC = 320  # the index's record size


def _values():
    rng = np.random.default_rng(19)
    return {k: rng.integers(0, 256, n, dtype=np.uint8)
            for k, n in (("a", 5000), ("b", 70000), ("d", 12345))}


def _fill(d, handle, vals):
    s = swapio.Store(d, handle)
    for k, v in vals.items():
        s.put(k, v)
    return s


def test_torn_tail_warns_and_recover_brings_back(handle, tmp_path):
    d = str(tmp_path / "st")
    idx = os.path.join(d, "index")
    vals = _values()
    s = _fill(d, handle, vals)
    # The index as a process killed now leaves it, its last record (the
    # put of "d") then torn as a power loss can leave it.
    with open(idx, "rb") as f:
        log = bytearray(f.read())
    s.close()
    log[-100:-96] = b"torn"
    with open(idx, "wb") as f:
        f.write(log)

    with pytest.warns(RuntimeWarning, match=r"1 record\(s\) dropped"):
        s = swapio.Store(d, handle)
    with s:
        assert s.info()["dropped_records"] == 1
        assert sorted(s.keys()) == ["a", "b"]
        assert np.array_equal(s.get("b", np.empty(70000, np.uint8)),
                              vals["b"])

    # Closed cleanly since, nothing more to drop; recover still finds
    # the value whose record was lost.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with swapio.Store(d, handle) as s:
            assert s.info()["dropped_records"] == 0
        with swapio.Store(d, handle, recover=True) as s:
            info = s.info()
            assert info["recovered_keys"] == 1
            assert info["lost_values"] == 0
            for k, v in vals.items():
                out = np.empty(v.size, np.uint8)
                s.get(k, out)
                assert np.array_equal(out, v)


def test_damage_in_closed_log_is_an_error(handle, tmp_path):
    d = str(tmp_path / "st")
    idx = os.path.join(d, "index")
    vals = _values()
    _fill(d, handle, vals).close()
    with open(idx, "r+b") as f:
        f.seek(3 * REC + 64)
        f.write(os.urandom(64))
    with pytest.raises(swapio.Error) as e:
        swapio.Store(d, handle)
    assert e.value.errno == errno.EUCLEAN
    with swapio.Store(d, handle, recover=True) as s:
        assert len(s) == 3
        for k, v in vals.items():
            assert np.array_equal(s.get(k, np.empty(v.size, np.uint8)), v)
