"""CUDA device memory through the Python API and swapio.deepspeed, with no
GPU: tests/gpu/cuda_standin.c (the CUDA runtime and cuFile over host memory) is
compiled here and injected by SWAPIO_CUDA_LIBRARY / SWAPIO_CUFILE_LIBRARY,
and a test-only DLPack producer claims kDLCUDA over its "device" memory.
Every transfer is checked bit for bit against the file."""

import ctypes
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import _dlpack as _dl
import swapio

SRC = (pathlib.Path(__file__).resolve().parent.parent / "gpu"
       / "cuda_standin.c")
CHUNK = 64 << 10
SIZES = (1, 4095, 4097, 3 * CHUNK + 17)
OFFSETS = (0, 7, 65536)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not SRC.exists():
        pytest.skip("no C compiler or no tests/gpu/cuda_standin.c")
    lib = tmp_path_factory.mktemp("standin") / "libswapio_cuda_standin.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-pthread", "-I",
                    str(SRC.parent.parent.parent / "src" / "gpu"), "-o", str(lib),
                    str(SRC)], check=True)
    old = {k: os.environ.get(k) for k in
           ("SWAPIO_CUDA_LIBRARY", "SWAPIO_CUFILE_LIBRARY",
            "SWAPIO_GPU_CHUNK", "SWAPIO_GPU_PATH")}
    # Loaded once per process, at the first device call: before it.
    os.environ["SWAPIO_CUDA_LIBRARY"] = str(lib)
    os.environ["SWAPIO_CUFILE_LIBRARY"] = str(lib)
    os.environ["SWAPIO_GPU_CHUNK"] = str(CHUNK)
    os.environ.pop("SWAPIO_GPU_PATH", None)
    so = ctypes.CDLL(str(lib))
    so.swapio_standin_set.argtypes = (ctypes.c_char_p, ctypes.c_long)
    so.swapio_standin_get.argtypes = (ctypes.c_char_p,)
    so.swapio_standin_get.restype = ctypes.c_long
    so.cudaMalloc.argtypes = (ctypes.POINTER(ctypes.c_void_p),
                              ctypes.c_size_t)
    so.cudaFree.argtypes = (ctypes.c_void_p,)
    yield so
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def sd(standin):
    for k in ("fail_memcpy", "cufile_fail", "cufile_delay_us",
              "violations", "unpinned_copies", "cufile_calls"):
        standin.swapio_standin_set(k.encode(), 0)
    return standin


class DevTensor:
    """A test-only DLPack producer: a 1-D uint8 tensor that says it lives on
    CUDA device 0 (kDLCUDA, or *device_type*), over stand-in memory. Records
    the stream each consumer asked for."""

    def __init__(self, so, nbytes, device_type=2, device_id=0, bits=8):
        self.so = so
        self.nbytes = nbytes
        self.device_type, self.device_id = device_type, device_id
        p = ctypes.c_void_p()
        caller = so.swapio_standin_get(b"current")
        so.swapio_standin_set(b"current", device_id)    # allocate there
        assert so.cudaMalloc(ctypes.byref(p), max(nbytes, 1)) == 0
        so.swapio_standin_set(b"current", caller)
        self.ptr = p.value
        self.shape = (ctypes.c_int64 * 1)(nbytes * 8 // bits)
        t = _dl.Tensor(self.ptr, _dl.Device(device_type, device_id), 1,
                    _dl.DType(1, bits, 1), self.shape, None, 0)
        self.m = _dl.Managed(t, None, None)
        self.streams = []
        self.current = []       # the current device at each export

    def __dlpack_device__(self):
        return (self.device_type, self.device_id)

    def __dlpack__(self, stream=None):
        self.streams.append(stream)
        self.current.append(self.so.swapio_standin_get(b"current"))
        return _dl.capsule(self.m)

    def fill(self, data):
        ctypes.memmove(self.ptr, data, len(data))

    def bytes(self):
        return ctypes.string_at(self.ptr, self.nbytes)

    def __del__(self):
        self.so.cudaFree(self.ptr)


def disk(path, off, n):
    with open(path, "rb") as f:
        f.seek(off)
        return f.read(n)


@pytest.fixture
def ghandle(engine):
    with swapio.Handle(engine=engine, block_size=16 << 10,
                       gpu_path="staging") as h:
        yield h


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("off", OFFSETS)
def test_device_round_trip(sd, ghandle, path, n, off):
    data = os.urandom(n)
    src, dst = DevTensor(sd, n), DevTensor(sd, n)
    src.fill(data)
    with ghandle.open(path, "w+") as f:
        assert f.pwrite(src, off) == n
        assert disk(path, off, n) == data
        assert f.pread(dst, off) == n
    assert dst.bytes() == data
    # DLPack: the producer was asked to ready its memory on swapio's stream.
    assert len(src.streams) == 1 and isinstance(src.streams[0], int)
    assert src.streams[0] not in (None, 0, -1)
    assert dst.streams == src.streams
    assert sd.swapio_standin_get(b"violations") == 0
    assert sd.swapio_standin_get(b"unpinned_copies") == 0
    assert ghandle.gpu_path(0, True) == "staging"


def test_device_async_and_by_path(sd, ghandle, tmp_path):
    ops, bufs = [], []
    for i in range(6):
        n = 50_000 * (i + 1) + i
        t = DevTensor(sd, n)
        data = os.urandom(n)
        t.fill(data)
        p = str(tmp_path / ("f%d" % i))
        ops.append(ghandle.write_async(p, t, 3))
        bufs.append((p, n, data, t))    # the producer outlives its op
    for op, (p, n, _, _) in zip(ops, bufs):
        assert op.wait(timeout=60) == n
    ghandle.wait_all()
    for p, n, data, _ in bufs:
        assert disk(p, 3, n) == data
        back = DevTensor(sd, n)
        with ghandle.open(p, "r") as f:
            assert f.read_async(back, 3).wait() == n
        assert back.bytes() == data
        back = DevTensor(sd, n)
        assert ghandle.pread(p, back, 3) == n
        assert back.bytes() == data


def test_cuda_error_names_the_call(sd, ghandle, path):
    t = DevTensor(sd, 4 * CHUNK)
    t.fill(os.urandom(4 * CHUNK))
    sd.swapio_standin_set(b"fail_memcpy", 2)
    with ghandle.open(path, "w+") as f:
        with pytest.raises(swapio.Error, match="cudaMemcpyAsync"):
            f.pwrite(t, 0)
        assert f.pwrite(t, 0) == 4 * CHUNK       # the handle goes on
    assert "cudaMemcpyAsync" in ghandle.gpu_note


def test_pinned_host_memory_is_host(sd, ghandle, path):
    """kDLCUDAHost is host memory: the ordinary path, no CUDA call."""
    t = DevTensor(sd, 5000, device_type=3)
    t.fill(b"x" * 5000)
    with ghandle.open(path, "w+") as f:
        assert f.pwrite(t, 0) == 5000
    assert t.streams == [None] or t.streams == []
    assert disk(path, 0, 5000) == b"x" * 5000


def test_gds_and_its_fallback(sd, engine, path):
    n = 4 * CHUNK
    data = os.urandom(n)
    with swapio.Handle(engine=engine, gpu_path="gds") as h:
        assert h.config["gpu_path"] == "gds"
        src, dst = DevTensor(sd, n), DevTensor(sd, n)
        src.fill(data)
        with h.open(path, "w+") as f:
            if not f.direct:
                pytest.skip("no O_DIRECT here: gds is not eligible")
            assert f.pwrite(src, 0) == n
            assert f.pread(dst, 0) == n
            assert dst.bytes() == data
            assert h.gpu_path(0, False) == "gds"
            assert sd.swapio_standin_get(b"cufile_calls") >= 2
            sd.swapio_standin_set(b"cufile_fail", 1)
            dst = DevTensor(sd, n)
            assert f.pread(dst, 0) == n           # restaged, not failed
            assert dst.bytes() == data
            calls = sd.swapio_standin_get(b"cufile_calls")
            assert f.pread(dst, 0) == n           # this file: staging
            assert sd.swapio_standin_get(b"cufile_calls") == calls
        assert "gds off for this file, staging used" in h.gpu_note
        assert h.gpu_path(0, False) == "gds"      # other files keep it


def test_export_on_the_tensors_device(sd, ghandle, path):
    """The producer exports with the tensor's device current (torch refuses
    another), and the caller's device (here none at all) is back after."""
    n = 3 * CHUNK + 11
    data = os.urandom(n)
    sd.swapio_standin_set(b"devices", 2)
    try:
        for caller in (-1, 0):
            sd.swapio_standin_set(b"current", caller)
            src, dst = DevTensor(sd, n, device_id=1), DevTensor(sd, n,
                                                                device_id=1)
            src.fill(data)
            with ghandle.open(path, "w+") as f:
                assert f.pwrite(src, 0) == n
                assert sd.swapio_standin_get(b"current") == caller
                assert f.pread(dst, 0) == n
                assert sd.swapio_standin_get(b"current") == caller
            assert dst.bytes() == data
            assert disk(path, 0, n) == data
            assert src.current == [1] and dst.current == [1]
    finally:
        sd.swapio_standin_set(b"current", -1)
        sd.swapio_standin_set(b"devices", 1)


def test_sub_byte_dtype_size(sd, ghandle, path):
    """A 4-bit tensor of 2n elements is n bytes, not 2n."""
    n = 4097
    data = os.urandom(n)
    src, dst = DevTensor(sd, n, bits=4), DevTensor(sd, n, bits=4)
    src.fill(data)
    with ghandle.open(path, "w+") as f:
        assert f.pwrite(src, 0) == n
        assert os.path.getsize(path) == n
        assert f.pread(dst, 0) == n
    assert dst.bytes() == data


def test_deepspeed_gds_handle(sd, tmp_path):
    """swapio.deepspeed.gds_handle: DeepSpeed's surface, GDS for device
    buffers (cuFile called), no pinning required, and DeepSpeed's
    GDSBuilder loads it once installed."""
    ds = pytest.importorskip("swapio.deepspeed")
    h = ds.gds_handle(block_size=1 << 16, queue_depth=8,
                      intra_op_parallelism=1)
    try:
        n = 4 * CHUNK
        p = str(tmp_path / "gds")
        data = os.urandom(n)
        src, dst = DevTensor(sd, n), DevTensor(sd, n)
        src.fill(data)
        assert h.pin_device_tensor(src) is True
        assert h.sync_pwrite(src, p) == 1
        assert disk(p, 0, n) == data
        assert h.async_pread(dst, p) == 0     # never pinned: fine
        assert h.wait() == 1
        assert dst.bytes() == data
        assert h.unpin_device_tensor(src) is True
        assert h.free_pinned_device_tensor(src) is True
        with h._h.open(p, "r") as f:
            direct = f.direct
        if direct:
            assert sd.swapio_standin_get(b"cufile_calls") >= 2
            assert h._h.gpu_path(0, True) == "gds"
        torch = pytest.importorskip("torch")
        ex = torch.zeros(3, dtype=torch.float16)
        t = h.new_pinned_device_tensor(10, ex)
        assert t.shape == (10,) and t.dtype == torch.float16
        assert h.pin_device_tensor(t) is False    # not CUDA memory
    finally:
        h.close()
    pytest.importorskip("deepspeed")
    # DeepSpeed's own class, as its CUDA accelerator hands it out (the
    # CPU accelerator has none: use_gds needs CUDA).
    from deepspeed.ops.op_builder.gds import GDSBuilder
    ds.install()
    try:
        assert GDSBuilder().load(verbose=False).gds_handle is ds.gds_handle
    finally:
        ds.uninstall()


def test_bad_gpu_path():
    with pytest.raises(ValueError, match="gpu_path"):
        swapio.Handle(gpu_path="fast")


def test_deepspeed_handle_device_tensors(sd, tmp_path):
    ds = pytest.importorskip("swapio.deepspeed")
    h = ds.aio_handle(block_size=1 << 16, queue_depth=8,
                      intra_op_parallelism=1)
    try:
        for n in (4096, 3 * CHUNK + 1, 1_000_003):
            p = str(tmp_path / ("ds%d" % n))
            data = os.urandom(n)
            src, dst = DevTensor(sd, n), DevTensor(sd, n)
            src.fill(data)
            assert h.sync_pwrite(src, p) == 1
            assert disk(p, 0, n) == data
            assert h.async_pread(dst, p) == 0
            assert h.wait() == 1
            assert dst.bytes() == data
            dst = DevTensor(sd, n)
            assert h.pread(dst, p, False, True) == 0
            assert h.wait() == 1
            assert dst.bytes() == data
        assert sd.swapio_standin_get(b"violations") == 0
    finally:
        h.close()


def test_safetensors_load_into_device_memory(sd, ghandle, tmp_path):
    """swapio.safetensors.load_file(out=...) reads each tensor straight
    into CUDA memory through the handle's device path, small ones too
    (never staged on the host), beside a host tensor; a target of the
    wrong size is refused before any read."""
    torch = pytest.importorskip("torch")
    sft = pytest.importorskip("safetensors.torch")
    import swapio.safetensors as ss

    g = torch.Generator().manual_seed(5)
    ref = {
        "big": torch.randint(0, 256, (3 * CHUNK + 17,), generator=g,
                             dtype=torch.uint8),
        "f32": torch.randn(1_000_003, generator=g),
        "small": torch.randint(-99, 99, (333,), generator=g,
                               dtype=torch.int16),
        "host": torch.randn(7, 5, generator=g).to(torch.bfloat16),
    }
    p = tmp_path / "w.safetensors"
    sft.save_file(ref, str(p))
    raw = {k: v.reshape(-1).view(torch.uint8).numpy().tobytes()
           for k, v in ref.items()}
    out = {k: DevTensor(sd, len(raw[k])) for k in ("big", "f32", "small")}
    out["host"] = torch.zeros(7, 5, dtype=torch.bfloat16)
    assert ss.load_file(p, out=out, handle=ghandle) is out
    for k in ("big", "f32", "small"):
        assert out[k].bytes() == raw[k], k
        assert len(out[k].streams) == 1      # exported once, on a stream
    assert torch.equal(out["host"], ref["host"])
    assert sd.swapio_standin_get(b"violations") == 0
    assert sd.swapio_standin_get(b"unpinned_copies") == 0

    wrong = {"small": DevTensor(sd, len(raw["small"]) + 2)}
    with pytest.raises(ValueError, match="small.*666 bytes in the file "
                                         "but 668"):
        ss.load_file(p, out=wrong, handle=ghandle)
    assert wrong["small"].streams == []


def test_missing_cuda_is_a_clear_error(tmp_path):
    """A fresh process whose CUDA library cannot be loaded."""
    code = r"""
import errno, sys
sys.path[:0] = [%r]
import swapio
class Fake:
    nbytes = 16
    def __dlpack_device__(self): return (2, 0)
    def __dlpack__(self, stream=None): raise AssertionError("not reached")
with swapio.Handle() as h, h.open(%r, "w+") as f:
    try:
        f.pwrite(Fake(), 0)
    except swapio.Error as e:
        assert e.errno == errno.ENODEV, e.errno
        assert "SWAPIO_CUDA_LIBRARY" in str(e), str(e)
        assert "not loaded" in str(e), str(e)
        assert f.pwrite(b"host memory still works", 0) == 23
        print("ok")
""" % (str(pathlib.Path(__file__).parent), str(tmp_path / "x"))
    env = dict(os.environ, SWAPIO_CUDA_LIBRARY="/nonexistent/libcudart.so")
    r = subprocess.run([sys.executable, "-c", code], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
