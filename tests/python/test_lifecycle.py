"""Closed and inherited objects behave as docs/PYTHON.md says.

After Handle.close() every method of the handle and of its files raises
ValueError (ops already in flight still complete). In a child of fork()
every call on an inherited object raises swapio.Error with code EFORKED,
while closing and dropping them never raises.
"""

import gc
import os

import numpy as np
import pytest

import swapio


def test_closed_handle_refuses_everything(tmp_path):
    path = str(tmp_path / "f")
    h = swapio.Handle()
    f = h.open(path, "w+")
    f.pwrite(b"x" * 4096, 0)
    op = f.write_async(bytes(1 << 20), 0)
    h.close()
    for call in (h.stats, h.reset_stats, h.fileno, h.wait_all,
                 lambda: h.config, lambda: h.engine, lambda: h.engine_note,
                 lambda: h.gpu_note, lambda: h.gpu_path(0),
                 lambda: h.open(path, "r"),
                 lambda: h.pread(path, bytearray(1)),
                 lambda: h.write_async(path, b"x"),
                 # its open file
                 lambda: f.pread(bytearray(1), 0),
                 lambda: f.pwrite(b"x", 0),
                 lambda: f.read_async(bytearray(1), 0),
                 lambda: f.write_async(b"x", 0),
                 f.sync, lambda: f.allocate(0, 4096),
                 lambda: f.size, lambda: f.direct, lambda: f.alignment):
        with pytest.raises(ValueError):
            call()
    assert h.closed
    assert op.wait() == 1 << 20         # in flight before: completes
    f.close()                           # closing never raises
    f.close()
    h.close()
    assert f.name == path


def _in_child(body):
    """Run body() in a forked child; return the status byte it reports
    (0: every check held). The child never returns into pytest."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = body()
        except BaseException:
            code = 98
        finally:
            os.write(w, bytes([code]))
            os._exit(0)
    os.close(w)
    got = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    return got


def _eforked(call):
    try:
        call()
    except swapio.Error as e:
        return e.code == swapio.EFORKED
    except BaseException:
        return False
    return False


def test_fork_child_uniform(monkeypatch, tmp_path):
    monkeypatch.setenv("SWAPIO_FAULT", "delay_ms=2000,nth=2")
    path = str(tmp_path / "f")
    h = swapio.Handle(engine="threads")
    f = h.open(path, "w+")
    f.pwrite(b"x" * 4096, 0)            # request 1
    done = f.write_async(b"y" * 4096, 0)    # request 2: held 2 s
    early = f.write_async(b"z" * 4096, 8192)
    early.wait()
    s = swapio.Store(str(tmp_path / "st"), h)
    s.put("k", np.arange(10))
    sop = s.put_async("k2", np.arange(10))

    def child():
        calls = [
            done.done, done.wait, lambda: done.result,
            early.done, early.wait, lambda: early.result,
            h.stats, h.reset_stats, h.fileno, h.wait_all,
            lambda: h.config, lambda: h.engine,
            lambda: h.open(path, "r"),
            lambda: h.pread(path, bytearray(1)),
            lambda: f.pread(bytearray(1), 0),
            lambda: f.write_async(b"x", 0),
            lambda: f.size, f.sync,
            lambda: swapio.wait_any([done]),
            lambda: len(s), lambda: "k" in s, s.keys, s.info, s.sync,
            lambda: s.get("k"), lambda: s.put("k", b"x"),
            lambda: s.size("k"), lambda: s.remove("k"),
            sop.done, sop.wait,
        ]
        bad = [i for i, c in enumerate(calls) if not _eforked(c)]
        if bad:
            return 1 + bad[0]
        # Closing and dropping never raise in the child.
        f.close()
        s.close()
        h.close()
        return 0

    try:
        assert _in_child(child) == b"\x00"
        # The parent's objects are untouched.
        assert done.wait() == 4096
        assert sop.wait() == 80
        assert np.array_equal(np.frombuffer(s.get("k"), np.int64),
                              np.arange(10))
        assert f.pread(bytearray(4096), 0) == 4096
    finally:
        s.close()
        f.close()
        h.close()


def test_fork_child_drops_inherited(tmp_path):
    path = str(tmp_path / "f")
    h = swapio.Handle()
    f = h.open(path, "w+")
    op = f.write_async(bytes(1 << 16), 0)

    def child():
        # Dropping the parent's objects (an op maybe still in flight
        # there) runs no destructor that raises or waits.
        import sys
        unraisable = []
        sys.unraisablehook = unraisable.append
        nonlocal_objs.clear()
        gc.collect()
        with swapio.Handle() as h2:     # a handle of its own works
            h2.pwrite(path + ".child", b"c" * 10)
        return 1 if unraisable else 0

    nonlocal_objs = [h, f, op]
    del h, f, op
    try:
        assert _in_child(child) == b"\x00"
    finally:
        for o in nonlocal_objs:
            if isinstance(o, swapio.Op):
                assert o.wait() == 1 << 16
        for o in nonlocal_objs[::-1]:
            if hasattr(o, "close"):
                o.close()
    with open(path + ".child", "rb") as fh:
        assert fh.read() == b"c" * 10


@pytest.mark.parametrize("name", ["File", "Op", "StoreOp", "Buffer"])
def test_library_made_types_refuse_direct_construction(name):
    """Files, ops and buffers come from a handle or a store: constructing
    one directly raises TypeError instead of making an object without its
    handle, on which any call would crash the interpreter."""
    with pytest.raises(TypeError):
        getattr(swapio, name)()


def test_uninitialised_handle_and_store_raise(tmp_path):
    """__new__ without __init__ (a subclass that forgets super().__init__):
    every call raises, none crashes."""
    h = swapio.Handle.__new__(swapio.Handle)
    with pytest.raises((ValueError, swapio.Error)):
        h.stats()
    with pytest.raises((ValueError, swapio.Error)):
        h.open(str(tmp_path / "f"), "w")
    s = swapio.Store.__new__(swapio.Store)
    with pytest.raises((ValueError, swapio.Error)):
        len(s)
    with pytest.raises((ValueError, swapio.Error)):
        s.keys()
