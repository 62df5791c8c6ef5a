"""Errors name the file the caller gave, never a descriptor swapio reached
it through (the drop-in's /proc/self/fd/N twin)."""

import errno
import os
import subprocess

import pytest

import swapio


def test_op_errors_name_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("SWAPIO_FAULT", "errno=EIO,dir=write")
    path = str(tmp_path / "f")
    with swapio.Handle(engine="threads") as h:
        with h.open(path, "w+") as f:
            op = f.write_async(bytes(4096), 0)
            with pytest.raises(swapio.Error) as e:
                op.wait()
            assert e.value.errno == errno.EIO
            assert e.value.filename == path
            with pytest.raises(swapio.Error) as e:
                f.pwrite(bytes(4096), 0)
            assert e.value.filename == path
        op = h.write_async(path, bytes(4096))
        with pytest.raises(swapio.Error) as e:
            op.wait()
        assert e.value.filename == path
        with pytest.raises(swapio.Error) as e:
            op.result                   # observed: the same error again
        assert e.value.filename == path


def _ds(monkeypatch, fault=None):
    torch = pytest.importorskip("torch")
    ds = pytest.importorskip("swapio.deepspeed")
    if fault:
        monkeypatch.setenv("SWAPIO_FAULT", fault)
    return torch, ds.aio_handle(engine="threads")


def _check(e, name):
    assert e.errno == errno.ENOSPC
    assert e.filename == name
    assert "/proc/self/fd" not in str(e)


def test_ds_enospc_names_the_swap_file(monkeypatch, tmp_path):
    torch, h = _ds(monkeypatch, "errno=ENOSPC,dir=write")
    path = str(tmp_path / "swap.bin")
    t = torch.ones(1 << 16)
    with pytest.raises(swapio.Error) as e:
        h.sync_pwrite(t, path)
    _check(e.value, path)
    assert h.async_pwrite(t, path) == 0
    with pytest.raises(swapio.Error) as e:
        h.wait()
    _check(e.value, path)
    fd = os.open(path, os.O_WRONLY)
    try:
        assert h.async_pwrite(t, fd=fd) == 0
        with pytest.raises(swapio.Error) as e:
            h.wait()
        _check(e.value, fd)             # the caller gave an fd
    finally:
        os.close(fd)
    h.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a 1 MiB tmpfs: root")
def test_ds_full_disk_names_the_swap_file(monkeypatch, tmp_path):
    torch, h = _ds(monkeypatch)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                        str(mnt)], capture_output=True)
    if r.returncode:
        pytest.skip("cannot mount a tmpfs here: %s" % r.stderr.decode())
    try:
        path = str(mnt / "swap.bin")
        with pytest.raises(swapio.Error) as e:
            h.sync_pwrite(torch.ones(1 << 20), path)
        _check(e.value, path)
        h.close()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
