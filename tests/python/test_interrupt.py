"""Ctrl-C: SIGINT during any blocking wait raises KeyboardInterrupt at once.

Completions are held back 3 s (SWAPIO_FAULT delay_ms, first request only),
SIGINT comes 0.1 s into the wait: KeyboardInterrupt must arrive well
before the op could complete. Afterwards the handle works, and the
interrupted op completes into the memory it was given (which it keeps).
"""

import contextlib
import os
import signal
import threading
import time

import numpy as np
import pytest

import swapio

DELAY = "delay_ms=3000,nth=1"
N = 64 << 10                    # one request: below every block size


@contextlib.contextmanager
def interrupted():
    """Expect KeyboardInterrupt from the body, 0.1 s in, well under 3 s.

    Python's own SIGINT handler is put in place for the body: a process
    started in the background of a non-interactive shell (as CI may start
    the suite) inherits SIGINT ignored, and Python then keeps it ignored.
    """
    timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT))
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    t0 = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGINT, old)
    assert time.monotonic() - t0 < 2.0


def _data(seed):
    return np.random.default_rng(seed).integers(0, 256, N, dtype=np.uint8)


def _round_trip(h, path):
    a = _data(99)
    b = np.zeros_like(a)
    with h.open(path, "r+") as f:
        assert f.pwrite(a, N) == N
        assert f.pread(b, N) == N
    assert np.array_equal(a, b)


@pytest.fixture
def slow(monkeypatch):
    """A handle whose first request completes 3 s late. The waits do not
    depend on the engine: test_op_wait and the store run on each."""
    monkeypatch.setenv("SWAPIO_FAULT", DELAY)
    with swapio.Handle(engine="threads", block_size=1 << 20) as h:
        yield h


def _file_with(path, data):
    with open(path, "wb") as f:
        f.write(data.tobytes())


def test_op_wait(monkeypatch, engine, path):
    monkeypatch.setenv("SWAPIO_FAULT", DELAY)
    slow = swapio.Handle(engine=engine)
    data = _data(1)
    _file_with(path, data)
    got = np.zeros(N, np.uint8)
    with slow, slow.open(path, "r+") as f:
        op = f.read_async(got, 0)
        with interrupted():
            op.wait()
        assert not op.done()
        _round_trip(slow, path)
        assert op.wait() == N           # still going, then complete
    assert np.array_equal(got, data)


def test_file_pread_keeps_buffer(slow, path):
    data = _data(2)
    _file_with(path, data)
    got = np.zeros(N, np.uint8)
    with slow.open(path, "r+") as f:
        with interrupted():
            f.pread(got, 0)
        _round_trip(slow, path)
        slow.wait_all()                 # waits for the interrupted read
    assert np.array_equal(got, data)


def test_file_pwrite(slow, path):
    data = _data(3)
    _file_with(path, np.zeros(N, np.uint8))
    with slow.open(path, "r+") as f:
        with interrupted():
            f.pwrite(data, 0)
        slow.wait_all()
    with open(path, "rb") as f:
        assert f.read(N) == data.tobytes()
    _round_trip(slow, path)


def test_path_pread_buffer_dropped(slow, path):
    # The caller drops its only reference: the op keeps the memory.
    data = _data(4)
    _file_with(path, data)
    got = np.zeros(N, np.uint8)
    view = memoryview(got)
    with interrupted():
        slow.pread(path, view)
    del view
    _round_trip(slow, path)
    slow.wait_all()
    assert np.array_equal(got, data)


def test_path_pwrite(slow, path):
    data = _data(5)
    with interrupted():
        slow.pwrite(path, data)
    slow.wait_all()
    with open(path, "rb") as f:
        assert f.read() == data.tobytes()


def test_wait_any_and_wait_all(slow, path):
    data = _data(6)
    _file_with(path, data)
    got = np.zeros(N, np.uint8)
    with slow.open(path, "r+") as f:
        op = f.read_async(got, 0)
        with interrupted():
            swapio.wait_any([op])
        with interrupted():
            slow.wait_all()
        assert swapio.wait_any([op]) == 0
    assert op.result == N
    assert np.array_equal(got, data)


def test_dropped_op_does_not_block(slow, path):
    # Dropping an op in flight neither waits nor frees its buffer.
    data = _data(7)
    _file_with(path, data)
    got = np.zeros(N, np.uint8)
    with slow.open(path, "r+") as f:
        t0 = time.monotonic()
        op = f.read_async(memoryview(got), 0)
        del op
        assert time.monotonic() - t0 < 2.0
        _round_trip(slow, path)
        slow.wait_all()
    assert np.array_equal(got, data)


def test_close_with_interrupted_op(monkeypatch, tmp_path):
    # Closing the handle and the file with an interrupted op in flight
    # releases them only once it completed; the data lands.
    monkeypatch.setenv("SWAPIO_FAULT", DELAY)
    path = str(tmp_path / "c")
    data = _data(8)
    h = swapio.Handle(engine="threads")
    f = h.open(path, "w+")
    with interrupted():
        f.pwrite(data, 0)
    f.close()
    h.close()
    with pytest.raises(ValueError):
        h.stats()
    time.sleep(3.2)
    with swapio.Handle() as h2:
        h2.wait_all()                   # reaps the finished orphan
    with open(path, "rb") as fh:
        assert fh.read() == data.tobytes()


def test_store_put_get(monkeypatch, tmp_path):
    engine = "threads"
    a, b = _data(9), _data(10)
    with swapio.Handle(engine=engine) as h, \
            swapio.Store(str(tmp_path / "st"), h) as s:
        s.put("k", a)
    monkeypatch.setenv("SWAPIO_FAULT", DELAY)
    with swapio.Handle(engine=engine) as h, \
            swapio.Store(str(tmp_path / "st"), h) as s:
        got = np.zeros(N, np.uint8)
        with interrupted():
            s.get("k", got)
        h.wait_all()
        s.put("k2", b)                  # the store still works
        assert np.array_equal(np.frombuffer(s.get("k2"), np.uint8), b)
        assert np.array_equal(got, a)
    monkeypatch.setenv("SWAPIO_FAULT", DELAY)
    with swapio.Handle(engine=engine) as h, \
            swapio.Store(str(tmp_path / "st"), h) as s:
        with interrupted():
            s.put("k3", b)
        op = s.get_async("k2")
        with interrupted():
            op.wait()
        assert op.wait() == N
        h.wait_all()
        assert np.array_equal(np.frombuffer(s.get("k"), np.uint8), a)


def test_deepspeed_handle(monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")
    ds = pytest.importorskip("swapio.deepspeed")
    monkeypatch.setenv("SWAPIO_FAULT", DELAY)
    h = ds.aio_handle(engine="threads")
    path = str(tmp_path / "ds")
    a = torch.from_numpy(_data(11))
    with interrupted():
        h.sync_pwrite(a, path)
    assert h.wait() == 1                # the interrupted write completes
    b = torch.zeros(N, dtype=torch.uint8)
    assert h.async_pread(b, path) == 0
    assert h.wait() == 1
    assert torch.equal(a, b)
    monkeypatch.setenv("SWAPIO_FAULT", DELAY)
    h2 = ds.aio_handle(engine="threads")
    c = torch.zeros(N, dtype=torch.uint8)
    assert h2.async_pread(c, path) == 0
    with interrupted():
        h2.wait()
    assert h2.wait() == 1
    assert torch.equal(a, c)
    h.close()
    h2.close()
