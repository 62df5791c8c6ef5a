"""Lifetimes, threads, the GIL and fork."""

import gc
import os
import threading

import numpy as np
import pytest

import swapio


def test_gc_while_in_flight(monkeypatch, path):
    # Slow completions: the ops are still in flight when we drop them.
    monkeypatch.setenv("SWAPIO_FAULT", "delay_ms=50")
    with swapio.Handle(engine="threads") as h, h.open(path, "w+") as f:
        f.pwrite(np.arange(1 << 18, dtype=np.uint32), 0)
        for _ in range(3):
            a = np.zeros(1 << 18, dtype=np.uint32)
            f.read_async(a, 0)          # Op dropped at once
            op = f.read_async(np.zeros(1 << 18, np.uint32), 0)
            del a, op
            gc.collect()
        b = np.zeros(1 << 18, dtype=np.uint32)
        f.pread(b, 0)
        assert np.array_equal(b, np.arange(1 << 18, dtype=np.uint32))


def test_op_keeps_buffer(monkeypatch, path):
    monkeypatch.setenv("SWAPIO_FAULT", "delay_ms=100")
    torch = pytest.importorskip("torch")
    with swapio.Handle(engine="threads") as h, h.open(path, "w+") as f:
        f.pwrite(b"\x07" * 65536, 0)
        t = torch.zeros(65536, dtype=torch.uint8)
        op = f.read_async(t, 0)
        del t
        gc.collect()
        # The tensor lives on inside the op until it completes.
        assert op.wait() == 65536


def test_close_with_ops_in_flight(path):
    h = swapio.Handle()
    f = h.open(path, "w+")
    op = f.write_async(bytes(1 << 20), 0)
    f.close()
    h.close()
    assert op.wait() == 1 << 20
    del op, f, h
    gc.collect()


def test_eight_threads(handle, tmp_path):
    errors = []

    def worker(i):
        try:
            a = np.full(300_001, i, dtype=np.int32)
            b = np.empty_like(a)
            p = str(tmp_path / f"t{i}")
            with handle.open(p, "w+") as f:
                for k in range(5):
                    f.write_async(a, k * a.nbytes).wait()
                    assert f.pread(b, k * a.nbytes) == a.nbytes
                    assert np.array_equal(a, b)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def _runs_meanwhile(call):
    """True if another Python thread ran while call() blocked."""
    order = []
    started = threading.Event()

    def other():
        started.wait()
        order.append("other")

    t = threading.Thread(target=other)
    t.start()
    started.set()
    call()
    order.append("call")
    t.join()
    return order == ["other", "call"]


def test_gil_released_during_wait(monkeypatch, path):
    # Completions held 300 ms: the other thread must run meanwhile.
    monkeypatch.setenv("SWAPIO_FAULT", "delay_ms=300")
    with swapio.Handle(engine="threads") as h, h.open(path, "w+") as f:
        op = f.write_async(bytes(4096), 0)
        assert _runs_meanwhile(op.wait)


def test_gil_released_during_sync_io(monkeypatch, path):
    monkeypatch.setenv("SWAPIO_FAULT", "delay_ms=300")
    with swapio.Handle(engine="threads") as h, h.open(path, "w+") as f:
        assert _runs_meanwhile(lambda: f.pwrite(bytes(4096), 0))


def test_fork_child_gets_eforked(path):
    with swapio.Handle() as h, h.open(path, "w+") as f:
        f.pwrite(b"x" * 4096, 0)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                f.pread(bytearray(4096), 0)
            except swapio.Error as e:
                code = 0 if e.code == swapio.EFORKED else 2
            except BaseException:
                code = 3
            try:
                h.pwrite(path, b"x")
            except swapio.Error as e:
                code |= 0 if e.code == swapio.EFORKED else 4
            # The child's own handle works.
            try:
                with swapio.Handle() as h2:
                    h2.pread(path, bytearray(1))
            except BaseException:
                code |= 8
            os.write(w, bytes([code]))
            os._exit(0)
        os.close(w)
        got = os.read(r, 1)
        os.close(r)
        os.waitpid(pid, 0)
        assert got == b"\x00"
        assert f.pread(bytearray(4096), 0) == 4096
