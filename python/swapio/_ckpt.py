"""The checkpoint writers' and readers' shared core.

A checkpoint file is planned as a list of pieces, ``(file offset, data)``,
that cover it: small ones (headers, pickles, small tensors) are gathered
into page-aligned staging buffers and written as one op per run, large
tensors are written from their own memory; all ops are in flight at once
through one :class:`swapio.Handle`. :class:`Publish` gives the crash
rules: the file is written under a temporary name in the same directory,
``fdatasync``-ed, renamed over the final name, and the directory synced;
on any failure the temporary file is removed and the final name keeps
what it had.

Internal: used by swapio.torch, swapio.torch_dcp and swapio.safetensors.
"""

import mmap
import os
import secrets

import numpy as np

import swapio
from swapio import _device

SMALL = 1 << 20         # pieces below this are staged
STAGE = 16 << 20        # the largest staging buffer
GAP = 64 << 10          # reads of small pieces this close are merged
PAGE = mmap.PAGESIZE


def sync_dir(path):
    """fsync the directory *path* (makes a rename or a new name durable)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask_mode():
    """0666 less the umask, read without changing it (other threads may
    be creating files)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o22)
    os.umask(mask)
    return 0o666 & ~mask


class Publish:
    """``with Publish(path, durable) as tmp:`` write *tmp* (and make its
    data durable when *durable*); on a clean exit *tmp* gets the mode a new
    file gets from the umask, is renamed to *path* and the directory is
    synced (when *durable*). On an exception *tmp* is removed and *path* is
    left as it was."""

    def __init__(self, path, durable=True):
        self.path = os.path.abspath(os.fspath(path))
        self.dir, base = os.path.split(self.path)
        self.tmp = os.path.join(
            self.dir, ".%s.%s.swapio-tmp" % (base, secrets.token_hex(4)))
        self.durable = durable

    def __enter__(self):
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                os.chmod(self.tmp, _umask_mode())
                os.rename(self.tmp, self.path)
                if self.durable:
                    sync_dir(self.dir)
                return False
            except BaseException:
                self._discard()
                raise
        self._discard()
        return False

    def _discard(self):
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


def save_handle():
    """The handle a save makes when given none. It bounces every request
    (``bounce=True``): a save writes from torch's memory, on 4 KiB pages,
    where a direct request pins every page and is a segment per
    physically contiguous run; a copy into the workers' huge-page blocks
    measured cheaper in CPU and faster (docs/ARCHITECTURE.md,
    "Checkpoints in PyTorch's formats"). Loads read into memory they
    place themselves and bounce nothing."""
    return swapio.Handle(bounce=True)


def nbytes(data):
    n = getattr(data, "nbytes", None)
    if n is None:
        n = len(data)
    return int(n)


def new_at(off, n):
    """*n* new bytes (a 1-D uint8 NumPy array) for the data at file offset
    *off*, placed as placed() places them. Freed when the last view of it
    goes."""
    return placed([(off, n)])[1][0]


def placed(spans, buf=None):
    """One buffer (*buf* where it is large enough, else a new one, on huge
    pages) and views of it for *spans* (``(file offset, nbytes)``), each at
    the same address modulo the page as its offset, so that a direct read
    or write of it needs no bounce."""
    at, pos = [], 0
    for off, n in spans:
        pos += (off - pos) % PAGE
        at.append(pos)
        pos += n
    if buf is None or buf.size < pos:
        buf = swapio.empty((max(pos, 1),), np.uint8, pinned=False)
    return buf, [buf[p:p + n] for p, (_, n) in zip(at, spans)]


def _as_np(data):
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    return data.numpy()  # a 1-D uint8 CPU tensor


def _wait_all(ops):
    """Wait for every ``(op, bytes expected)``; raise the first error (or
    short transfer) after all are done."""
    first = None
    for op, want in ops:
        try:
            got = op.wait()
            if got != want and first is None:
                first = swapio.Error(
                    5, "checkpoint: moved %d bytes of %d at one op (a "
                    "truncated file?)" % (got, want))
        except BaseException as e:  # noqa: B036 - re-raised below
            if first is None:
                first = e
    if first is not None:
        raise first


def write_pieces(f, pieces):
    """Write *pieces* (``(offset, data)``; data is bytes-like, a NumPy
    array or a 1-D uint8 CPU tensor) to the swapio File *f*, all in
    flight; small adjacent pieces go through staging buffers."""
    pieces = sorted(pieces, key=lambda p: p[0])
    ops = []
    run = []
    state = {"start": 0, "end": 0}

    def flush():
        if not run:
            return
        start, end = state["start"], state["end"]
        buf = new_at(start, end - start)
        for off, data in run:
            a = _as_np(data)
            buf[off - start:off - start + a.size] = a
        run.clear()
        ops.append((f.write_async(buf, start), end - start))

    try:
        for off, data in pieces:
            n = nbytes(data)
            if n == 0:
                continue
            if n >= SMALL:
                flush()
                ops.append((f.write_async(data, off), n))
                continue
            if run and (off != state["end"]
                        or state["end"] - state["start"] + n > STAGE):
                flush()
            if not run:
                state["start"] = off
            run.append((off, data))
            state["end"] = off + n
        flush()
    finally:
        _wait_all(ops)


def read_spans(f, spans):
    """Read *spans* (``(offset, dest)``; dest a writable 1-D uint8 CPU
    tensor or NumPy array, or CUDA memory) from the swapio File *f*, all
    in flight; small host ones close together share one read into a
    staging buffer."""
    read_spans_many([(f, spans)])


def read_spans_many(files):
    """read_spans() of every ``(File, spans)`` of *files*, all of them in
    flight together."""
    Reads(files).wait()


class Reads:
    """``Reads(files)`` submits read_spans() of every ``(File, spans)`` of
    *files*, all in flight together; ``wait()`` waits for them, raises the
    first error, and copies the staged small spans to their places."""

    def __init__(self, files):
        self.ops = []
        self.copies = []
        try:
            for f, spans in files:
                self._submit(f, spans)
        except BaseException:
            self.abandon()
            raise

    def _submit(self, f, spans):
        run = []

        def flush():
            if not run:
                return
            start = run[0][0]
            end = max(off + nbytes(d) for off, d in run)
            buf = new_at(start, end - start)
            self.ops.append((f.read_async(buf, start), end - start))
            self.copies.append((buf, start, list(run)))
            run.clear()

        for off, dest in sorted(spans, key=lambda s: s[0]):
            n = nbytes(dest)
            if n == 0:
                continue
            if n >= SMALL or _device.cuda_ordinal(dest) is not None:
                self.ops.append((f.read_async(dest, off), n))
                continue
            if run:
                rs = run[0][0]
                re = max(o + nbytes(d) for o, d in run[-4:])
                if off > re + GAP or off + n - rs > STAGE:
                    flush()
            run.append((off, dest))
        flush()

    def wait(self):
        ops, self.ops = self.ops, []
        _wait_all(ops)
        for buf, start, items in self.copies:
            for off, dest in items:
                a = _as_np(dest)
                a[:] = buf[off - start:off - start + a.size]
        self.copies = []

    def abandon(self):
        """Wait for what was submitted, keeping no error: on a failure
        elsewhere, before the memory or files go."""
        ops, self.ops = self.ops, []
        try:
            _wait_all(ops)
        except BaseException:  # noqa: B036 - the caller raises its own
            pass
        self.copies = []
