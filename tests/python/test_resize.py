"""torch tensors resized while an op moves data into them.

Torch refuses resize_() of a storage that is not resizable: swapio's own
memory (swapio.empty_torch, the drop-in's locked tensors) and
torch.frombuffer. Any other CPU tensor torch resizes, releasing the memory
the op moves data into; swapio cannot stop that, and reports it when the
op completes (swapio.Error, EFAULT). That part runs in a subprocess
whose big buffers are mmap'd (MALLOC_MMAP_THRESHOLD_) and whose handle
is buffered, so that a read into released memory meets unmapped pages in
the kernel (EFAULT) rather than a heap it would corrupt.
"""

import errno
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import swapio  # noqa: E402

N = 1 << 18                             # int32 elements: 1 MiB


def test_swapio_memory_refuses_resize(monkeypatch, path):
    monkeypatch.setenv("SWAPIO_FAULT", "delay_ms=300,nth=2")
    src = torch.arange(N, dtype=torch.int32)
    with swapio.Handle(engine="threads", block_size=4 << 20) as h, \
            h.open(path, "w+") as f:
        f.pwrite(src, 0)                                 # request 1
        t = swapio.empty_torch((N,), torch.int32)
        keep = t[:]
        op = f.read_async(t, 0)                          # request 2: held
        with pytest.raises(RuntimeError, match="not resizable"):
            t.resize_(N * 8)
        with pytest.raises(RuntimeError):
            t[10:].resize_(N * 8)       # nor through a view
        assert op.wait() == N * 4
        assert torch.equal(keep, src)


CHILD = r"""
import os, sys, torch, swapio
N = %d
path = sys.argv[1]
with swapio.Handle(engine="threads", direct=False) as h, \
        h.open(path, "w+") as f:
    f.pwrite(torch.arange(N, dtype=torch.int32), 0)
    for how in ("op", "sync", "path"):
        t = torch.zeros(N, dtype=torch.int32)
        import threading
        def grow():
            import time
            time.sleep(0.1)
            t.resize_(N * 16)
        th = threading.Thread(target=grow)
        th.start()
        try:
            if how == "op":
                f.read_async(t, 0).wait()
            elif how == "sync":
                f.pread(t, 0)
            else:
                h.pread(path, t)
            print(how, "no error")
        except swapio.Error as e:
            print(how, e.errno, "resized" in str(e))
        th.join()
"""


def test_resized_tensor_reported(tmp_path):
    path = str(tmp_path / "r")
    env = dict(os.environ, SWAPIO_FAULT="delay_ms=400,dir=read",
               MALLOC_MMAP_THRESHOLD_="65536")
    r = subprocess.run([sys.executable, "-c", CHILD % N, path], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    for how in ("op", "sync", "path"):
        assert f"{how} {errno.EFAULT} True" in lines, r.stdout
