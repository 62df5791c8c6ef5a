"""Checkpoints in torch's own formats: swapio.torch.save/load against the
real torch.save/torch.load, both ways, bit for bit; the crash rules
(SIGKILL at random points, ENOSPC on a small filesystem)."""

import errno
import os
import pickle
import random
import signal
import subprocess
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import swapio  # noqa: E402
import swapio.torch as st  # noqa: E402

_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16,
           torch.complex64, torch.complex128, torch.complex32, torch.int8,
           torch.int16, torch.int32, torch.int64, torch.uint8, torch.uint16,
           torch.uint32, torch.uint64, torch.bool]
for _n in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
           "float8_e5m2fnuz", "float8_e8m0fnu"):
    if hasattr(torch, _n):
        _DTYPES.append(getattr(torch, _n))


def _rand(shape, dtype, gen):
    """Random bits of *dtype* (bool: 0 or 1)."""
    n = int(np.prod(shape)) if shape else 1
    size = torch.empty((), dtype=dtype).element_size()
    raw = torch.randint(0, 256, (n * size,), dtype=torch.uint8,
                        generator=gen)
    if dtype == torch.bool:
        raw &= 1
    return raw.view(dtype).reshape(shape)


def _same(a, b):
    """Equal bit for bit, recursively; tensors of the same dtype, shape,
    strides and storage offset."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor)
        assert (a.dtype, a.shape, a.stride(), a.storage_offset()) == \
            (b.dtype, b.shape, b.stride(), b.storage_offset())
        sa, sb = a.untyped_storage(), b.untyped_storage()
        assert sa.nbytes() == sb.nbytes()
        ba = torch.empty(0, dtype=torch.uint8).set_(sa, 0, (sa.nbytes(),))
        bb = torch.empty(0, dtype=torch.uint8).set_(sb, 0, (sb.nbytes(),))
        assert torch.equal(ba, bb)
        return
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert a == b


def _state(seed=1, big=True):
    """Every dtype, odd sizes, views and shared storages, non-contiguous
    tensors, nested containers and plain objects."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for i, dt in enumerate(_DTYPES):
        sd[str(dt)] = _rand((3, 7 + i), dt, g)
    base = _rand((1001,), torch.float32, g)
    sd["view"] = base[17:333]               # a view: its storage is base's
    sd["base"] = base
    sd["again"] = [base, {"deep": (base[5:9], 3.5, None)}]
    sd["t"] = _rand((37, 65), torch.float64, g).t()       # transposed
    sd["strided"] = _rand((11, 13), torch.int32, g)[::2, 1::3]
    sd["empty"] = torch.empty((0, 5))
    sd["scalar"] = torch.tensor(7.25)
    sd["cl"] = _rand((2, 3, 5, 7), torch.float16, g).contiguous(
        memory_format=torch.channels_last)
    if big:
        sd["big"] = _rand((3, 400_003), torch.float32, g)   # staged in place
        sd["big_bf16"] = _rand((1_000_001,), torch.bfloat16, g)
    sd["meta"] = {"step": 12, "lr": 1e-3, "name": "gpt", "tuple": (1, "x"),
                  "bytes": b"\x00\xff", "size": torch.Size([2, 3]),
                  "dtype": torch.bfloat16}
    return sd


def _check_views(sd):
    """Views still share their base's storage after a load."""
    ptr = sd["base"].untyped_storage().data_ptr()
    assert sd["view"].untyped_storage().data_ptr() == ptr
    assert sd["again"][0].untyped_storage().data_ptr() == ptr
    assert sd["again"][1]["deep"][0].untyped_storage().data_ptr() == ptr


def test_swapio_save_torch_load(handle, tmp_path):
    sd = _state()
    p = tmp_path / "a.pt"
    st.save(sd, p, handle=handle)
    got = torch.load(p)                     # weights_only (the default)
    _same(sd, got)
    _check_views(got)
    assert not [e for e in os.listdir(tmp_path) if e != "a.pt"]


def test_torch_save_swapio_load(handle, tmp_path):
    sd = _state(seed=2)
    p = tmp_path / "b.pt"
    torch.save(sd, p)
    got = st.load(p, handle=handle)
    _same(sd, got)
    _check_views(got)


def test_swapio_both_ways_and_map_location(tmp_path):
    sd = _state(seed=3, big=False)
    p = str(tmp_path / "c.pt")
    st.save(sd, p)
    _same(sd, st.load(p))
    _same(sd, st.load(p, map_location="cpu"))
    _same(sd, st.load(p, map_location={"cpu": "cpu"}))
    _same(sd, st.load(p, map_location=lambda s, loc: s))
    meta = st.load(p, map_location="meta")
    ref = torch.load(p, map_location="meta")
    assert meta["big_bf16" if "big_bf16" in meta else "base"].is_meta
    assert [type(v) for v in meta.values()] == [type(v) for v in ref.values()]


@pytest.mark.parametrize("writer", ["torch", "swapio"])
def test_large_records_read_straight_into_new_memory(tmp_path, writer):
    """A load reads each large record into memory of its own, placed on
    the page as the record lies in the file, and the small ones through
    staging placed alike: O_DIRECT reads all of it without a bounce."""
    g = torch.Generator().manual_seed(9)
    sd = {"w%d" % i: _rand((n,), dt, g) for i, (n, dt) in enumerate(
        ((262_147, torch.float32), (1_000_003, torch.bfloat16),
         (524_288, torch.int64), (333, torch.int16)))}
    sd["view"] = sd["w0"][1000:]
    p = tmp_path / "d.pt"
    (torch.save if writer == "torch" else st.save)(sd, p)
    h = swapio.Handle()
    try:
        got = st.load(p, handle=h)
        s = h.stats()
    finally:
        h.close()
    _same(sd, got)
    assert got["view"].untyped_storage().data_ptr() == \
        got["w0"].untyped_storage().data_ptr()
    assert s["bytes_read"] >= sum(v.nbytes for k, v in sd.items()
                                  if k != "view")
    assert s["bounced_bytes"] == 0
    # Each large tensor's memory is its own: changing one leaves the
    # others, and the file, as they were.
    got["w1"].zero_()
    _same(sd["w2"], got["w2"])
    _same(sd, torch.load(p))


def test_odd_sizes(tmp_path):
    """Sizes around the staging threshold and the page size."""
    g = torch.Generator().manual_seed(9)
    for n in (1, 63, 64, 65, 4095, 4097, (1 << 20) - 1, 1 << 20,
              (1 << 20) + 1, 3 * (1 << 20) + 17):
        sd = {"x": _rand((n,), torch.uint8, g), "y": _rand((n % 97,),
                                                            torch.int16, g)}
        p = tmp_path / ("%d.pt" % n)
        st.save(sd, p)
        _same(sd, torch.load(p))
        _same(sd, st.load(p))


class _Custom:
    def __init__(self, v):
        self.v = v

    def __eq__(self, o):
        return isinstance(o, _Custom) and o.v == self.v


def test_weights_only_kept(tmp_path):
    p = tmp_path / "w.pt"
    obj = {"c": _Custom(3), "t": torch.arange(5)}
    st.save(obj, p)
    with pytest.raises(pickle.UnpicklingError, match="Weights only"):
        st.load(p)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(p)
    got = st.load(p, weights_only=False)
    assert got["c"] == obj["c"] and torch.equal(got["t"], obj["t"])
    assert torch.load(p, weights_only=False)["c"] == obj["c"]
    with pytest.raises(RuntimeError, match="pickle_module"):
        st.load(p, pickle_module=pickle, weights_only=True)


def test_file_object_and_legacy_go_to_torch(tmp_path):
    import io
    sd = _state(seed=4, big=False)
    b = io.BytesIO()
    st.save(sd, b)
    b.seek(0)
    _same(sd, st.load(b))
    p = tmp_path / "legacy.pt"
    old = {"x": torch.arange(5.0), "y": [torch.ones(3, dtype=torch.int8)]}
    st.save(old, p, _use_new_zipfile_serialization=False)
    _same(old, st.load(p, weights_only=False))


def test_not_durable_still_whole(tmp_path):
    sd = _state(seed=5, big=False)
    p = tmp_path / "nd.pt"
    st.save(sd, p, durable=False)
    _same(sd, torch.load(p))
    q = tmp_path / "ref.pt"
    torch.save(sd, q)          # the mode a new file gets, as torch.save
    assert os.stat(p).st_mode == os.stat(q).st_mode


def test_truncated_file_fails(tmp_path):
    sd = {"x": torch.arange(1 << 20, dtype=torch.int32)}
    p = tmp_path / "tr.pt"
    st.save(sd, p)
    with open(p, "r+b") as f:
        data = f.read()
    # Cut the data of the record (keep the central directory readable:
    # write the tail back over a hole the size of the cut).
    with open(p, "r+b") as f:
        f.truncate(0)
        f.write(data[:200] + data[-4096:])
    with pytest.raises(Exception):
        st.load(p)


# -- crash rules ------------------------------------------------------------

def _version(base, v):
    return {"v": v, "a": torch.from_numpy(base["a"] + np.float32(v)),
            "b": [torch.from_numpy(x + np.int16(v)) for x in base["b"]]}


def _child_saves(path, base, first):
    """Runs in a forked child: save versions first, first+1, ... forever."""
    try:
        with swapio.Handle() as h:
            v = first
            while True:
                st.save(_version(base, v), path, handle=h)
                v += 1
    finally:
        os._exit(1)


def test_sigkill_at_random_points(tmp_path):
    rng = np.random.default_rng(7)
    base = {"a": rng.standard_normal(700_001).astype(np.float32),
            "b": [rng.integers(-999, 999, size=n).astype(np.int16)
                  for n in (3, 1000, 70001)]}
    path = str(tmp_path / "ckpt.pt")
    st.save(_version(base, 0), path)
    last = 0
    kills = 0
    seen = set()
    deadline = time.monotonic() + 45
    rnd = random.Random(11)
    while kills < 60 and time.monotonic() < deadline:
        first = last + 1000
        pid = os.fork()
        if pid == 0:
            _child_saves(path, base, first)
        time.sleep(rnd.uniform(0, 0.12))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        kills += 1
        got = torch.load(path)     # the final name: always one whole save
        v = got["v"]
        assert v == last or v >= first
        assert torch.equal(got["a"], _version(base, v)["a"])
        for x, y in zip(got["b"], _version(base, v)["b"]):
            assert torch.equal(x, y)
        _same(got, st.load(path))
        seen.add(v != last)
        last = v
        for e in os.listdir(tmp_path):   # leftovers: temporary names only
            assert e == "ckpt.pt" or e.endswith(".swapio-tmp"), e
    assert kills >= 50, "only %d kills in the budget" % kills
    assert seen == {True, False}, "kills never landed both mid-save " \
        "and after a completed save"


@pytest.fixture
def small_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    d = tmp_path / "small"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs",
                        str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: " + r.stderr.strip())
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)


def test_enospc_keeps_previous(small_fs):
    small = {"x": torch.arange(100_000, dtype=torch.int32)}
    p = small_fs / "m.pt"
    st.save(small, p)
    big = {"x": torch.zeros(3_000_000, dtype=torch.int32)}   # 12 MB
    with pytest.raises(OSError) as ei:
        st.save(big, p)
    assert ei.value.errno == errno.ENOSPC
    assert os.listdir(small_fs) == ["m.pt"]
    _same(small, torch.load(p))


def test_enospc_safetensors_and_dcp(small_fs):
    import swapio.safetensors as ss
    small = {"x": torch.arange(100_000, dtype=torch.int32)}
    p = small_fs / "m.safetensors"
    ss.save_file(small, p)
    with pytest.raises(OSError) as ei:
        ss.save_file({"x": torch.zeros(3_000_000, dtype=torch.int32)}, p)
    assert ei.value.errno == errno.ENOSPC
    assert os.listdir(small_fs) == ["m.safetensors"]
    _same(small, ss.load_file(p))
    os.unlink(p)

    import torch.distributed.checkpoint as dcp
    d = small_fs / "dcp"
    dcp.save({"x": small["x"]}, storage_writer=st.dcp.Writer(d))
    before = sorted(os.listdir(d))
    with pytest.raises(BaseException) as ei:   # DCP: CheckpointException
        dcp.save({"x": torch.zeros(3_000_000, dtype=torch.int32),
                  "y": torch.zeros(1000)},
                 storage_writer=st.dcp.Writer(d, thread_count=2))
    failures = getattr(ei.value, "failures", {})   # CheckpointException
    errs = [f[0] if isinstance(f, tuple) else f for f in failures.values()]
    assert any(isinstance(e, OSError) and e.errno == errno.ENOSPC
               for e in errs) or (isinstance(ei.value, OSError) and
                                  ei.value.errno == errno.ENOSPC), ei.value
    assert sorted(os.listdir(d)) == before
    out = {"x": torch.zeros(100_000, dtype=torch.int32)}
    dcp.load(out, storage_reader=dcp.FileSystemReader(d))
    _same(small["x"], out["x"])
