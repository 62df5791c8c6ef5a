"""Bad input gives exceptions, never a crash; errno mapping."""

import ctypes
import errno
import os

import numpy as np
import pytest

import _dlpack as _dl
import swapio


def test_error_is_oserror():
    assert issubclass(swapio.Error, OSError)
    assert issubclass(swapio.Timeout, TimeoutError)
    assert issubclass(swapio.NoSuchKey, KeyError)


def test_enoent(handle, tmp_path):
    p = str(tmp_path / "missing")
    with pytest.raises(swapio.Error) as e:
        handle.open(p, "r")
    assert e.value.errno == errno.ENOENT and e.value.filename == p
    assert e.value.code == -errno.ENOENT
    assert e.value.strerror == swapio.strerror(-errno.ENOENT)
    with pytest.raises(swapio.Error) as e:
        handle.read_async(p, bytearray(1))
    assert e.value.errno == errno.ENOENT


def test_eisdir(handle, tmp_path):
    with pytest.raises(swapio.Error) as e:
        handle.open(str(tmp_path), "r+")
    assert e.value.errno == errno.EISDIR


def test_ebadf(handle, path):
    handle.pwrite(path, b"abc")
    with handle.open(path, "r") as f:
        with pytest.raises(swapio.Error) as e:
            f.pwrite(b"abc", 0)
        assert e.value.errno == errno.EBADF
    with handle.open(path, "a") as f:
        with pytest.raises(swapio.Error) as e:
            f.pread(bytearray(3), 0)
        assert e.value.errno == errno.EBADF


def test_espipe(handle):
    r, w = os.pipe()
    try:
        with pytest.raises(swapio.Error) as e:
            handle.open(f"/proc/self/fd/{r}", "r")
        assert e.value.errno == errno.ESPIPE
    finally:
        os.close(r)
        os.close(w)


def test_einval_handle_config():
    with pytest.raises(swapio.Error) as e:
        swapio.Handle(block_size=1000)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(ValueError):
        swapio.Handle(engine="nope")


def test_own_codes():
    for code, eno in ((swapio.EMEMLOCK, errno.ENOMEM),
                      (swapio.EBADSTORE, errno.EUCLEAN),
                      (swapio.EFORKED, errno.EPERM)):
        assert code < -3000
        assert swapio.strerror(code) != "unknown error"


def test_timeout(monkeypatch, path):
    monkeypatch.setenv("SWAPIO_FAULT", "delay_ms=300")
    with swapio.Handle(engine="threads") as h, h.open(path, "w+") as f:
        op = f.write_async(bytes(4096), 0)
        with pytest.raises(swapio.Timeout) as e:
            op.wait(timeout=0.01)
        assert e.value.errno == errno.ETIMEDOUT
        assert op.result is None
        assert op.wait() == 4096


def test_eio_from_fault(monkeypatch, path):
    monkeypatch.setenv("SWAPIO_FAULT", "errno=EIO")
    with swapio.Handle(engine="threads") as h, h.open(path, "w+") as f:
        with pytest.raises(swapio.Error) as e:
            f.pwrite(bytes(8192), 0)
        assert e.value.errno == errno.EIO
        op = f.write_async(bytes(8192), 0)
        with pytest.raises(swapio.Error):
            op.wait()
        with pytest.raises(swapio.Error):
            op.result


def test_bad_buffers(handle, path):
    handle.pwrite(path, bytes(100))
    with handle.open(path, "r+") as f:
        with pytest.raises(TypeError):
            f.pread(b"immutable", 0)          # read into read-only
        ro = np.zeros(10)
        ro.flags.writeable = False
        with pytest.raises(TypeError):
            f.pread(ro, 0)
        with pytest.raises(ValueError):
            f.pwrite(np.zeros((10, 10))[:, 1], 0)   # not contiguous
        with pytest.raises(TypeError):
            f.pwrite("a str", 0)
        with pytest.raises(TypeError):
            f.pwrite(12, 0)
        with pytest.raises(ValueError):
            f.pwrite(b"x", -1)
        with pytest.raises(ValueError):
            handle.open(path, "rw")


def test_bad_tensors(handle, path):
    torch = pytest.importorskip("torch")
    handle.pwrite(path, bytes(4096))
    with handle.open(path, "r+") as f:
        with pytest.raises(ValueError):
            f.pread(torch.zeros(10, 10).t(), 0)
        with pytest.raises(ValueError):
            f.pread(torch.empty(10, device="meta"), 0)


class FakeTensor:
    """A DLPack exporter built by hand: any device, any strides."""

    def __init__(self, device_type=1, strides=None):
        self.mem = ctypes.create_string_buffer(64)
        self.shape = (ctypes.c_int64 * 2)(4, 4)
        self.strides = (ctypes.c_int64 * 2)(*strides) if strides else None
        t = _dl.Tensor(ctypes.cast(self.mem, ctypes.c_void_p),
                    _dl.Device(device_type, 0), 2, _dl.DType(0, 32, 1),
                    self.shape, self.strides, 0)
        self.m = _dl.Managed(t, None, None)

    def __dlpack__(self, *a, **k):
        return _dl.capsule(self.m)


def test_dlpack_device_and_strides(handle, path):
    handle.pwrite(path, bytes(64))
    with handle.open(path, "r+") as f:
        assert f.pread(FakeTensor(), 0) == 64
        assert f.pread(FakeTensor(strides=(4, 1)), 0) == 64
        with pytest.raises(ValueError, match="device"):
            f.pread(FakeTensor(device_type=2), 0)     # CUDA memory
        with pytest.raises(ValueError, match="contiguous"):
            f.pread(FakeTensor(strides=(1, 4)), 0)


def test_closed_objects(handle, path):
    f = handle.open(path, "w+")
    f.close()
    f.close()
    with pytest.raises(ValueError):
        f.pwrite(b"x", 0)
    with pytest.raises(ValueError):
        f.size
