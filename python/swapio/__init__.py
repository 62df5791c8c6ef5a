"""swapio: move large buffers (tensors) between memory and NVMe files.

Quick start::

    import numpy as np, swapio

    with swapio.Handle() as h, h.open("/nvme/opt.swp", "w+") as f:
        a = swapio.empty((1 << 20,), np.float32)   # pinned, page-aligned
        f.pwrite(a, 0)                              # GIL released
        op = f.read_async(a, 0)                     # returns at once
        ...                                         # compute
        op.wait()                                   # or: await op

Buffers are anything with the buffer protocol (NumPy arrays, bytearray,
memoryview, mmap) or with ``__dlpack__`` (CPU torch tensors and others;
CUDA tensors go through the device path of docs/GPU.md).
Errors raise :class:`swapio.Error`, an :class:`OSError`.
See docs/PYTHON.md for the rules on buffers, threads and fork.
"""

from . import _aio
from ._swapio import (
    EBADSTORE,
    ECUDA,
    EDRIVES,
    EFORKED,
    EMEMLOCK,
    ENOCUDA,
    Buffer,
    Error,
    File,
    Handle,
    NoSuchKey,
    Op,
    Store,
    StoreOp,
    Timeout,
    _Pipeline,
    checksum,
    hugepages,
    probe,
    strerror,
    version,
    wait_any,
)
from . import _swapio
from ._tier import BlockTier

__all__ = [
    "EBADSTORE", "ECUDA", "EDRIVES", "EFORKED", "EMEMLOCK", "ENOCUDA",
    "BlockTier", "Buffer", "Error", "File", "Group", "Handle", "NoSuchKey", "Op",
    "Pipeline", "Store", "StoreOp", "Timeout", "alloc", "checksum", "empty",
    "empty_torch", "engines", "hugepages", "probe", "strerror", "version",
    "wait_any",
]

__version__ = "%d.%d.%d" % version()

_swapio._set_await_hook(_aio.await_op)


def engines():
    """The engines that can run here, in preference order."""
    return [e for e in ("uring", "aio", "threads") if probe(e) == 0]


def alloc(nbytes, pinned=True, huge=True):
    """Page-aligned, zero-filled memory of *nbytes* as a :class:`Buffer`.

    *pinned* locks it in memory (swapio.Error with errno ENOMEM and code
    EMEMLOCK if RLIMIT_MEMLOCK forbids it); *huge* asks for transparent
    huge pages. The memory is freed when the last view of it goes.
    """
    return _swapio._alloc(nbytes, pinned, huge)


def _shape(shape):
    if isinstance(shape, int):
        return (shape,)
    return tuple(int(d) for d in shape)


def empty(shape, dtype="float32", pinned=True, huge=True):
    """A NumPy array over swapio's page-aligned (and pinned) memory.

    DeepSpeed's ``new_cpu_locked_tensor`` for NumPy. The contents are
    zero. The memory is freed when the last view of the array goes.
    In a forked child the memory of a pinned array is not mapped
    (MADV_DONTFORK): do not touch the parent's pinned arrays there.
    """
    import numpy as np

    shape = _shape(shape)
    dtype = np.dtype(dtype)
    count = 1
    for d in shape:
        count *= d
    buf = alloc(count * dtype.itemsize, pinned, huge)
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape)


def empty_torch(shape, dtype=None, pinned=True, huge=True):
    """A torch tensor over swapio's page-aligned (and pinned) memory.

    *dtype* is a torch dtype (default torch.float32); torch is imported
    only when this is called. The memory is freed when the last view
    goes.
    """
    import torch

    dtype = torch.float32 if dtype is None else dtype
    shape = _shape(shape)
    count = 1
    for d in shape:
        count *= d
    itemsize = torch.empty((), dtype=dtype).element_size()
    buf = alloc(count * itemsize, pinned, huge)
    if count == 0:
        return torch.empty(shape, dtype=dtype)
    flat = torch.frombuffer(buf, dtype=torch.uint8)
    return flat.view(dtype).view(shape)


class Group:
    """One group a :class:`Pipeline` hands out: ``index`` and ``buffers``
    (one memoryview per tensor, in the group's order). Valid until
    released; :meth:`release` writes it back, or not."""

    __slots__ = ("index", "buffers", "_pipe", "released")

    def __init__(self, pipe, index, buffers):
        self._pipe = pipe
        self.index = index
        self.buffers = [memoryview(b) for b in buffers]
        self.released = False

    def release(self, write_back=True):
        """Give the group back; with *write_back*, its tensors not marked
        read-only are written to the store."""
        if not self.released:
            self.released = True
            for b in self.buffers:
                b.release()
            self._pipe.release(self.index, write_back)

    def arrays(self, dtype="uint8"):
        """The buffers as NumPy arrays of *dtype*."""
        import numpy as np

        return [np.frombuffer(b, dtype=dtype) for b in self.buffers]


class Pipeline:
    """Stream groups of tensors from a :class:`Store` through a pinned pool.

    *groups* is a list of groups, each a list of ``(key, nbytes)`` or
    ``(key, nbytes, read_only)``. Iterating makes one pass: each item is a
    :class:`Group`, read ahead (up to *depth* groups) while the caller
    computes; a group not released by the time the next is asked for is
    released with write-back. At the end of a pass, every write-back is
    flushed; leaving the loop early ends the pass there (the groups not
    yet handed out are not read), so the next one starts at group 0::

        for g in swapio.Pipeline(store, groups):
            step(g.arrays(np.float32))        # in place
    """

    def __init__(self, store, groups, budget_bytes=0, depth=0, pinned=True,
                 huge=True):
        self._p = _Pipeline(store, groups, budget_bytes, depth, pinned, huge)

    def __iter__(self):
        self._p.begin()
        held = None
        try:
            while True:
                if held is not None and not held.released:
                    held.release(True)
                held = None
                item = self._p.next()
                if item is None:
                    break
                held = Group(self._p, item[0], item[1])
                yield held
        finally:
            if held is not None and not held.released:
                held.release(True)
            self._p.cancel()        # a no-op once the pass is over
        self._p.flush()

    def cancel(self):
        """End the running pass without reading the rest (no group may be
        held); write-backs in flight go on."""
        self._p.cancel()

    def flush(self):
        """Wait for every write-back in flight."""
        self._p.flush()

    def stats(self):
        """Counters of the current or last pass."""
        return self._p.stats()

    def close(self):
        """Finish what is in flight, then free the pipeline's buffers."""
        self._p.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
