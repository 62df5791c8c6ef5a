"""swapio.deepspeed.aio_handle: DeepSpeed's surface, on every engine."""

import os

import pytest

torch = pytest.importorskip("torch")
sd = pytest.importorskip("swapio.deepspeed")

import swapio  # noqa: E402

SIZES = (1, 511, 4096, 1000003)


@pytest.fixture
def h(engine):
    return sd.aio_handle(1 << 20, 8, False, True, 1, engine=engine)


def rand(n, dtype=torch.float32):
    g = torch.Generator().manual_seed(n)
    return torch.randn(n, generator=g).to(dtype)


def test_constructor_positional_keyword_defaults(engine):
    d = sd.aio_handle(engine=engine)
    assert (d.get_block_size(), d.get_queue_depth(), d.get_single_submit(),
            d.get_overlap_events(), d.get_intra_op_parallelism()) == \
        (1048576, 128, False, False, 1)
    p = sd.aio_handle(262144, 16, True, True, 2, engine=engine)
    k = sd.aio_handle(block_size=262144, queue_depth=16, single_submit=True,
                      overlap_events=True, intra_op_parallelism=2,
                      engine=engine)
    for x in (p, k):
        assert x.get_block_size() == 262144 and x.get_queue_depth() == 16
        assert x.get_single_submit() and x.get_overlap_events()
        assert x.get_intra_op_parallelism() == 2
        assert x.get_alignment() == 1024
        assert x.engine == engine


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16, torch.int8))
def test_async_round_trip_and_wait_counts(h, tmp_path, n, dtype):
    a, b = rand(n, dtype), rand(n + 1, dtype)[:n].clone()
    pa, pb = str(tmp_path / "a"), str(tmp_path / "b")
    assert h.wait() == 0
    assert h.async_pwrite(a, pa) == 0
    assert h.async_pwrite(b, pb, 0) == 0
    assert h.wait() == 2
    assert h.wait() == 0
    ra, rb = torch.empty_like(a), torch.empty_like(b)
    assert h.async_pread(ra, pa) == 0 and h.async_pread(rb, pb, 0) == 0
    assert h.wait() == 2
    assert torch.equal(ra.view(torch.uint8), a.view(torch.uint8))
    assert torch.equal(rb.view(torch.uint8), b.view(torch.uint8))
    assert os.stat(pa).st_mode & 0o777 == 0o600


def test_sync_forms_and_offsets(h, tmp_path):
    p = str(tmp_path / "f")
    a = rand(200000)
    assert h.sync_pwrite(a, p) == 1
    assert h.sync_pwrite(a[:1000], p, 1 << 20) == 1
    assert os.path.getsize(p) == (1 << 20) + 4000
    r = torch.empty(1000)
    assert h.sync_pread(r, p, 1 << 20) == 1
    assert torch.equal(r, a[:1000])
    # No O_TRUNC: a shorter rewrite keeps the tail, as DeepSpeed's.
    assert h.sync_pwrite(a[:10], p) == 1
    assert os.path.getsize(p) == (1 << 20) + 4000


def test_pread_pwrite_validate_async(h, tmp_path):
    p = str(tmp_path / "v")
    a = rand(123457)
    assert h.pwrite(a, p, True, False) == 1
    assert h.pwrite(a, p, True, True, 0) == 0
    assert h.wait() == 1
    r = torch.empty_like(a)
    assert h.pread(r, p, True, False) == 1 and torch.equal(r, a)
    r.zero_()
    assert h.pread(r, p, False, **{"async": True}) == 0
    assert h.wait() == 1 and torch.equal(r, a)
    assert h.wait() == 0


def test_read_write_whole_file(h, tmp_path):
    p = str(tmp_path / "w")
    a = rand(5000)
    assert h.write(a, p, True) == 0
    r = torch.empty_like(a)
    assert h.read(r, p, True) == 0 and torch.equal(r, a)
    with pytest.raises(ValueError):
        h.read(torch.empty(10), p, False)
    assert sd.aio_write(a, p, 1 << 20, 8, False, True, True) == 0
    assert sd.aio_read(r, p, 1 << 20, 8, False, True, True) == 0


def test_by_fd_stays_open(h, tmp_path):
    p = str(tmp_path / "fd")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_DIRECT)
    try:
        lt = h.new_cpu_locked_tensor(8192, torch.empty(0, dtype=torch.uint8))
        lt.copy_(rand(8192, torch.int8).view(torch.uint8))
        assert h.async_pwrite(lt[:4096], fd, 0) == 0
        assert h.async_pwrite(lt[4096:], fd, 4096) == 0
        assert h.wait() == 2
        os.fstat(fd)            # still open
    finally:
        os.close(fd)
    with open(p, "rb") as f:
        assert f.read() == bytes(lt.numpy())


def test_unpinned_and_noncontiguous(h, tmp_path):
    p = str(tmp_path / "nc")
    a = rand(64 * 65).view(64, 65).t()           # not contiguous
    assert h.sync_pwrite(a, p) == 1
    r = torch.empty(64, 65).t()
    assert h.sync_pread(r, p) == 1
    assert torch.equal(r, a)
    base = rand(10001)
    odd = base[3:]                                 # unaligned address
    assert h.sync_pwrite(odd, p) == 1
    out = torch.empty(10001)[1:9999]
    assert h.sync_pread(out, p) == 1 and torch.equal(out, odd)


def test_locked_tensors_and_ranges(h):
    ex = torch.empty(0, dtype=torch.float16)
    t = h.new_cpu_locked_tensor(100000, example_tenosr=ex)
    assert t.dtype == torch.float16 and t.shape == (100000,)
    assert t.data_ptr() % 4096 == 0
    assert h.is_pinned(t) and h.is_pinned(t[10:20]) and h.is_pinned(t[-1:])
    assert not h.is_pinned(torch.empty(100))
    other = sd.aio_handle()
    assert other.is_pinned(t)                      # process-wide
    assert h.free_cpu_locked_tensor(t) is True
    assert h.free_cpu_locked_tensor(t) is False
    assert not h.is_pinned(t)
    ph = sd.pin_handle()
    u = ph.new_cpu_locked_tensor(10, example_tensor=torch.empty(0))
    assert ph.is_pinned(u)
    assert ph.free_cpu_locked_tensor_by_ptr(u.data_ptr())
    assert not ph.is_pinned(u)
    assert h.new_cpu_locked_tensor(0, ex).numel() == 0


def test_errors_raise_or_return_minus_one(h, tmp_path):
    missing = str(tmp_path / "no" / "such")
    assert h.async_pread(torch.empty(10), missing) == -1
    assert h.sync_pwrite(torch.empty(10), missing) == -1
    assert h.wait() == 0
    p = str(tmp_path / "short")
    h.sync_pwrite(torch.empty(10), p)
    with pytest.raises(ValueError):
        h.async_pread(torch.empty(100), p)           # past the end
    two = sd.aio_handle(intra_op_parallelism=2, engine=h.engine)
    assert two.sync_pwrite(torch.empty(3, dtype=torch.int8), p) == -1
    with pytest.raises(TypeError):
        h.async_pwrite([1, 2, 3], p)
    with pytest.raises(ValueError):
        h.async_pwrite(torch.empty(10), p, -1)
    assert h.wait() == 0


def test_error_in_one_op_raises_after_waiting_all(h, tmp_path):
    ok = str(tmp_path / "ok")
    a = rand(1000)
    assert h.async_pwrite(a, ok) == 0
    # A fd that swapio cannot reopen for I/O (a pipe) returns -1, as
    # DeepSpeed's open failure; the op already queued still completes.
    r, w = os.pipe()
    try:
        assert h.async_pwrite(a, w) == -1
    finally:
        os.close(r)
        os.close(w)
    assert h.wait() == 1
    out = torch.empty_like(a)
    assert h.sync_pread(out, ok) == 1 and torch.equal(out, a)


def test_no_stdout(h, tmp_path, capfd):
    p = str(tmp_path / "q")
    a = rand(1000)
    h.write(a, p, True)
    h.read(a, p, True)
    h.pwrite(a, p, True, False)
    assert capfd.readouterr().out == ""


def test_small_block_and_fd_keyword(engine, tmp_path):
    # DeepSpeed's own tests use 1 KiB blocks and QD 2; the getters echo
    # them while swapio's core runs within its bounds.
    h = sd.aio_handle(1024, 2, False, False, 2, engine=engine)
    assert h.get_block_size() == 1024 and h.get_queue_depth() == 2
    p = str(tmp_path / "k")
    a = rand(4096)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT)
    try:
        assert h.async_pwrite(buffer=a, fd=fd, file_offset=0) == 0
        assert h.wait() == 1
    finally:
        os.close(fd)
    r = torch.empty_like(a)
    assert h.pread(r, p, False, False, 0) == 1 and torch.equal(r, a)


def test_io_error_after_submission_raises_and_keeps_the_handle(
        engine, tmp_path, monkeypatch):
    """A request that fails inside the engine, after async_pwrite returned
    0: wait() raises the errno (no abort), still waits for every op, and
    leaves nothing pending; later ops on the handle work."""
    import errno

    monkeypatch.setenv("SWAPIO_FAULT", "errno=EIO,dir=write,nth=2")
    h = sd.aio_handle(65536, 8, False, True, 1, engine=engine)
    a, b = rand(300001), rand(70001)
    pa, pb = str(tmp_path / "a"), str(tmp_path / "b")
    assert h.async_pwrite(a, pa) == 0
    assert h.async_pwrite(b, pb) == 0
    with pytest.raises(swapio.Error) as e:
        h.wait()
    assert e.value.errno == errno.EIO
    assert h.wait() == 0
    # The fault was the second request only: a rewrite and reads succeed.
    assert h.sync_pwrite(a, pa) == 1 and h.sync_pwrite(b, pb) == 1
    ra, rb = torch.empty_like(a), torch.empty_like(b)
    assert h.async_pread(ra, pa) == 0 and h.async_pread(rb, pb) == 0
    assert h.wait() == 2
    assert torch.equal(ra, a) and torch.equal(rb, b)


def test_read_error_raises_and_leaves_the_tensor_alone(engine, tmp_path,
                                                        monkeypatch):
    """A failed read through the bounce path (a non-contiguous tensor)
    raises and copies nothing into the caller's tensor."""
    import errno

    p = str(tmp_path / "x")
    src = rand(2 * 40001)
    sd.aio_handle(engine=engine).sync_pwrite(src, p)
    monkeypatch.setenv("SWAPIO_FAULT", "errno=EIO,dir=read")
    h = sd.aio_handle(1 << 20, 8, False, True, 1, engine=engine)
    base = torch.full((2 * 40001, 2), 7.0)
    dst = base[:, 0]                      # a strided view: bounced
    assert not dst.is_contiguous()
    with pytest.raises(swapio.Error) as e:
        h.sync_pread(dst, p)
    assert e.value.errno == errno.EIO
    assert torch.equal(base, torch.full_like(base, 7.0))
