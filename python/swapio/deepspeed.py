"""A drop-in for DeepSpeed's ``async_io`` and ``pin_memory`` ops, on swapio.

One line switches DeepSpeed's NVMe swapping (ZeRO-Infinity's parameter and
optimizer swappers, ``AsyncTensorSwapper``, FastPersist) to swapio, with no
JIT compile, no libaio-dev and no CUDA::

    import swapio.deepspeed; swapio.deepspeed.install()

:class:`aio_handle` has the surface of DeepSpeed's ``aio_handle``: the same
constructor (positional and keyword), methods, argument order and return
codes (0, -1 or a count of ops). What differs is what hurt users: errors
raise instead of asserting or aborting, every op's result is checked (the C
core retries short I/O), nothing is printed on stdout, ``wait()`` with
nothing pending returns 0, the GIL is released in every blocking call,
contiguous CPU tensors are read and written in place (pinned or not),
contiguous CUDA tensors go through swapio's device path (pinned staging
chunks overlapped with the file I/O, or GPUDirect Storage; docs/GPU.md)
and other tensors through a pooled bounce buffer, not an mlock per op.
:class:`gds_handle`, DeepSpeed's handle for ``"use_gds": true``, is the
same with GPUDirect Storage asked for, and needs no pinned device buffer.
"""

import bisect
import errno as _errno
import logging
import operator
import os
import sys
import threading
import types

from . import _device, _swapio

__all__ = ["aio_handle", "gds_handle", "pin_handle", "aio_read",
           "aio_write", "deepspeed_memcpy", "ValidationError", "install",
           "uninstall", "async_io", "pin_memory"]

_log = logging.getLogger("swapio.deepspeed")

# The engine new handles use: install(engine=...) or SWAPIO_DS_ENGINE.
_engine = os.environ.get("SWAPIO_DS_ENGINE", "auto")


class ValidationError(_swapio.Error):
    """A ``validate=True`` op found the file and the buffer different."""


# ---------------------------------------------------------------- buffers

def _torch():
    import torch
    return torch


def _nbytes(t):
    if not hasattr(t, "numel"):         # a DLPack device buffer
        return int(t.nbytes)
    return t.numel() * t.element_size()



def _cuda_device(t):
    """The CUDA device ordinal of a contiguous device buffer (a torch CUDA
    tensor or any DLPack producer on kDLCUDA / kDLCUDAManaged), else None:
    such buffers go to swapio's device path, not the bounce buffer."""
    torch = _torch()
    if isinstance(t, torch.Tensor):
        if t.device.type != "cuda" or not t.is_contiguous():
            return None
        return t.device.index or 0
    return _device.cuda_ordinal(t)


def _direct_view(t):
    """The tensor's bytes as a flat uint8 CPU tensor, or None if it cannot
    be used in place (not on the CPU, or not contiguous)."""
    if t.device.type != "cpu" or not t.is_contiguous():
        return None
    t = t.detach()
    if t.dim() != 1:
        t = t.reshape(-1)
    return t.view(_torch().uint8)


class _BouncePool:
    """Reused page-aligned buffers for tensors that cannot be used in place
    (device memory, non-contiguous views). Pinned once when allocated, not
    per op; at most *keep_bytes* are kept for reuse."""

    def __init__(self, keep_bytes=1 << 30):
        self.keep_bytes = keep_bytes
        self.kept = 0
        self.free = {}          # size class -> [Buffer]
        self.lock = threading.Lock()

    @staticmethod
    def _class(n):
        c = 1 << 20
        while c < n:
            c <<= 1
        return c

    def get(self, nbytes):
        c = self._class(nbytes)
        with self.lock:
            lst = self.free.get(c)
            if lst:
                self.kept -= c
                return lst.pop()
        try:
            return _swapio._alloc(c, True, True)
        except _swapio.Error:
            return _swapio._alloc(c, False, True)

    def put(self, buf):
        c = len(buf)
        with self.lock:
            if self.kept + c <= self.keep_bytes:
                self.free.setdefault(c, []).append(buf)
                self.kept += c


_bounce = _BouncePool()


# ----------------------------------------------------- locked tensor ranges

class _Ranges:
    """The process-wide table of memory handed out by new_cpu_locked_tensor
    (DeepSpeed's pin manager is process-wide too): start -> (end, Buffer)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.starts = []
        self.table = {}

    def add(self, start, end, buf):
        with self.lock:
            bisect.insort(self.starts, start)
            self.table[start] = (end, buf)

    def remove(self, start):
        with self.lock:
            if start not in self.table:
                return False
            del self.table[start]
            self.starts.pop(bisect.bisect_left(self.starts, start))
            return True

    def covers(self, start, end):
        with self.lock:
            i = bisect.bisect_right(self.starts, start) - 1
            if i < 0:
                return False
            return end <= self.table[self.starts[i]][0]


_ranges = _Ranges()
_warned_mlock = False


def _new_locked(num_elem, example):
    global _warned_mlock
    torch = _torch()
    num_elem = _index("num_elem", num_elem)
    if num_elem < 0:
        raise ValueError("num_elem must be >= 0")
    dtype = example.dtype
    nbytes = num_elem * example.element_size()
    if nbytes == 0:
        return torch.empty(0, dtype=dtype)
    try:
        buf = _swapio._alloc(nbytes, True, True)
    except _swapio.Error as e:
        if e.code != _swapio.EMEMLOCK:
            raise
        # Locking is not what O_DIRECT needs (alignment is); carry on with
        # aligned memory rather than fail the run, and say so once.
        if not _warned_mlock:
            _warned_mlock = True
            _log.warning("swapio: mlock refused (RLIMIT_MEMLOCK); locked "
                         "tensors are page-aligned but not locked")
        buf = _swapio._alloc(nbytes, False, True)
    t = torch.frombuffer(buf, dtype=torch.uint8).view(dtype)
    _ranges.add(buf.address, buf.address + nbytes, buf)
    return t


def _is_pinned(t):
    try:
        if t.is_pinned():
            return True
    except RuntimeError:
        pass
    if t.device.type != "cpu":
        return False
    start = t.data_ptr()
    return _ranges.covers(start, start + _nbytes(t))


def _free_locked(t):
    return _ranges.remove(t.data_ptr())


# ------------------------------------------------------------ aio_handle

def _index(what, v):
    """An integer argument as an int: TypeError for a float, a str or
    anything without __index__, never truncated or parsed."""
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError("%s must be an int, not %s"
                        % (what, type(v).__name__)) from None


def _typed(flat, t):
    """The uint8 bounce view *flat* seen as *t*'s dtype and shape."""
    return flat.view(t.dtype).view(t.shape)


def _named(e, name):
    """*e*, an OSError, naming the caller's file *name* (the path or fd it
    gave) rather than the descriptor swapio reached it through."""
    if isinstance(e, OSError) and e.filename is not None:
        e.filename = name
    return e


class _Pending:
    __slots__ = ("op", "file", "tensor", "bounce", "bview", "nbytes",
                 "is_read", "validate", "path", "offset")


def _read_file(path, offset, nbytes):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        out = bytearray()
        while len(out) < nbytes:
            chunk = os.pread(fd, nbytes - len(out), offset + len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)
    finally:
        os.close(fd)


class aio_handle:
    """DeepSpeed's ``aio_handle`` on swapio.

    ``aio_handle(block_size=1048576, queue_depth=128, single_submit=False,
    overlap_events=False, intra_op_parallelism=1)``; *engine* (keyword
    only, a swapio addition) picks "uring", "aio", "threads" or "auto".
    Sync calls return the count of ops completed (normally 1), async calls
    return 0 and a later :meth:`wait` returns the count; -1 where DeepSpeed
    returns it (a file that cannot be opened, a size not a multiple of
    intra_op_parallelism). I/O errors and short transfers raise
    :class:`swapio.Error`.
    """

    _gpu_path = "auto"      # device ops: GDS where it measures faster

    def __init__(self, block_size=1048576, queue_depth=128,
                 single_submit=False, overlap_events=False,
                 intra_op_parallelism=1, *, engine=None):
        self._block_size = _index("block_size", block_size)
        self._queue_depth = _index("queue_depth", queue_depth)
        self._single_submit = bool(single_submit)
        self._overlap_events = bool(overlap_events)
        self._intra_op_parallelism = _index("intra_op_parallelism",
                                            intra_op_parallelism)
        if self._intra_op_parallelism < 1:
            raise ValueError("intra_op_parallelism must be >= 1")
        if self._block_size < 1 or self._queue_depth < 1:
            raise ValueError("block_size and queue_depth must be >= 1")
        # The getters echo DeepSpeed's values; swapio's core gets them
        # within its bounds (blocks of 4 KiB multiples up to 1 GiB, queue
        # depth up to 4096, up to 64 threads): they tune, never change
        # what is read or written.
        blk = min(max(4096, (self._block_size + 4095) // 4096 * 4096),
                  1 << 30)
        self._h = _swapio.Handle(
            block_size=blk, queue_depth=min(self._queue_depth, 4096),
            threads=min(self._intra_op_parallelism, 64),
            engine=engine or _engine, direct=True,
            single_submit=self._single_submit,
            overlap=self._overlap_events, gpu_path=self._gpu_path)
        self._lock = threading.Lock()
        self._pending = []
        self._done = 0          # completed by sync calls' implicit waits

    # Getters, as DeepSpeed's.
    def get_block_size(self):
        return self._block_size

    def get_queue_depth(self):
        return self._queue_depth

    def get_single_submit(self):
        return self._single_submit

    def get_overlap_events(self):
        return self._overlap_events

    def get_intra_op_parallelism(self):
        return self._intra_op_parallelism

    def get_alignment(self):
        return self._intra_op_parallelism * 512

    @property
    def engine(self):
        """The swapio engine in use (a swapio addition)."""
        return self._h.engine

    # Submission.
    def _memory(self, buffer, device, nbytes, is_read):
        """The memory an op moves: (view, bounce). A contiguous CPU tensor
        in place, a CUDA one by the device path, anything else (a strided
        view, other devices) through a bounce buffer, filled now for a
        write. Done before the file is touched, so a tensor that cannot be
        moved leaves no file behind."""
        torch = _torch()
        if not nbytes:
            return None, None
        if device is not None:
            # Device memory: swapio's device path, on the stream the
            # tensor's producer readies it on (DLPack).
            return (buffer.detach() if hasattr(buffer, "detach")
                    else buffer), None
        view = _direct_view(buffer)
        if view is not None:
            return view, None
        bounce = _bounce.get(nbytes)
        try:
            view = torch.frombuffer(bounce, dtype=torch.uint8, count=nbytes)
            if not is_read:
                _typed(view, buffer).copy_(buffer.detach())
        except BaseException:
            _bounce.put(bounce)
            raise
        return view, bounce

    def _submit(self, buffer, target, is_read, validate, file_offset,
                whole_file=False):
        """Queue one op; 0 on success, -1 where DeepSpeed returns it."""
        torch = _torch()
        device = _cuda_device(buffer)
        if device is None and not isinstance(buffer, torch.Tensor):
            raise TypeError("buffer must be a torch.Tensor")
        file_offset = _index("file_offset", file_offset)
        if file_offset < 0:
            raise ValueError("file_offset must be >= 0")
        if device is None and buffer.is_meta:
            raise ValueError("a meta tensor has no memory to read into or "
                             "write from; allocate it on the CPU (or a "
                             "device) first")
        nbytes = _nbytes(buffer)
        if not whole_file and nbytes % self._intra_op_parallelism:
            return -1
        if isinstance(target, bool) or not isinstance(target, (int, str,
                                                                bytes,
                                                                os.PathLike)):
            raise TypeError("filename must be a path or an int fd")
        view, bounce = self._memory(buffer, device, nbytes, is_read)
        # Errors name what the caller gave: the path, or the fd.
        name = target if isinstance(target, int) else os.fsdecode(target)
        try:
            if isinstance(target, int):
                path = "/proc/self/fd/%d" % target
                os.fstat(target)
            else:
                path = name
            if is_read:
                f = self._h.open(path, "r")
            elif isinstance(target, int):
                f = self._h.open(path, "a")
            else:
                # O_CREAT, mode 0600, no O_TRUNC: as DeepSpeed.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC,
                             0o600)
                try:
                    f = self._h.open("/proc/self/fd/%d" % fd, "a")
                finally:
                    os.close(fd)
        except OSError as e:
            if bounce is not None:
                _bounce.put(bounce)
            _log.error("swapio: cannot open %r: %s", target, _named(e, name))
            return -1
        p = None
        try:
            if is_read:
                size = f.size
                if whole_file and nbytes != size:
                    raise ValueError(
                        "read: buffer of %d bytes, file %r of %d bytes"
                        % (nbytes, name, size))
                if file_offset + nbytes > size:
                    raise ValueError(
                        "read of %d bytes at %d past the end of %r (%d bytes)"
                        % (nbytes, file_offset, name, size))
            p = _Pending()
            p.file = f
            p.tensor = buffer
            p.nbytes = nbytes
            p.is_read = is_read
            p.validate = bool(validate)
            p.path = name
            p.offset = file_offset
            p.bounce = bounce
            p.bview = view
            p.op = None
            if nbytes:
                submit = f.read_async if is_read else f.write_async
                try:
                    p.op = submit(view, file_offset)
                except OSError as e:
                    raise _named(e, name)
        except BaseException:
            f.close()
            if bounce is not None:
                _bounce.put(bounce)
            raise
        with self._lock:
            self._pending.append(p)
        return 0

    def _finish(self, p):
        """Complete one op: check its count, copy a bounce back, validate.
        Interrupted (KeyboardInterrupt) while the op is in flight, *p* is
        left as it was, its file open and its bounce buffer held, for the
        next wait()."""
        torch = _torch()
        n = None
        try:
            if p.op is not None:
                n = p.op.wait()
        except Exception as e:
            self._release(p)
            raise _named(e, p.path)
        try:
            if p.op is not None:
                if n != p.nbytes:
                    raise _swapio.Error(
                        _errno.EIO, "%s of %d bytes moved %d"
                        % ("read" if p.is_read else "write", p.nbytes, n),
                        p.path)
                if p.is_read and p.bounce is not None:
                    p.tensor.detach().copy_(_typed(p.bview, p.tensor))
            if p.validate:
                path = p.path
                if isinstance(path, int):  # an fd
                    path = "/proc/self/fd/%d" % path
                try:
                    disk = _read_file(path, p.offset, p.nbytes)
                except OSError as e:
                    raise _named(e, p.path)
                mem = p.tensor.detach().cpu().contiguous().reshape(-1) \
                    .view(torch.uint8).numpy().tobytes()
                if disk != mem:
                    raise ValidationError(
                        _errno.EIO, "validate: %r at %d differs from the "
                        "buffer" % (p.path, p.offset))
        finally:
            self._release(p)

    @staticmethod
    def _release(p):
        """The op completed: close its file, give its bounce back."""
        p.file.close()
        if p.bounce is not None:
            _bounce.put(p.bounce)
            p.bounce = None

    def wait(self):
        """Wait for every pending op; return how many completed since the
        last wait (0 if none was pending). If any failed, all are still
        waited for and the first error is raised. A KeyboardInterrupt
        (Ctrl-C) stops the wait at once: the ops not yet completed stay
        pending, holding their buffers, for the next wait()."""
        with self._lock:
            ops, self._pending = self._pending, []
            count, self._done = self._done, 0
        err = None
        for i, p in enumerate(ops):
            try:
                self._finish(p)
                count += 1
            except Exception as e:
                if err is None:
                    err = e
            except BaseException:
                with self._lock:
                    self._pending[:0] = ops[i:]
                    self._done += count
                raise
        if err is not None:
            raise err
        return count

    # DeepSpeed's method family.
    def _sync(self, buffer, target, is_read, validate, file_offset,
              whole_file=False):
        r = self._submit(buffer, target, is_read, validate, file_offset,
                         whole_file)
        if r < 0:
            return r
        return self.wait()

    def read(self, buffer, filename, validate, file_offset=0):
        """Read the whole file into buffer; 0, or -1 if it cannot be
        opened. Raises ValueError if the sizes differ."""
        r = self._sync(buffer, filename, True, validate, file_offset, True)
        return r if r < 0 else 0

    def write(self, buffer, filename, validate, file_offset=0):
        """Write buffer to filename at file_offset; 0, or -1."""
        r = self._sync(buffer, filename, False, validate, file_offset, True)
        return r if r < 0 else 0

    def pread(self, buffer, filename, validate, async_op, file_offset=0):
        """DeepSpeed's ``pread(buffer, filename, validate, async,
        file_offset=0)``: the count if sync, 0 if async, -1 on failure."""
        if async_op:
            return self._submit(buffer, filename, True, validate,
                                file_offset)
        return self._sync(buffer, filename, True, validate, file_offset)

    def pwrite(self, buffer, filename, validate, async_op, file_offset=0):
        """DeepSpeed's ``pwrite(buffer, filename, validate, async,
        file_offset=0)``."""
        if async_op:
            return self._submit(buffer, filename, False, validate,
                                file_offset)
        return self._sync(buffer, filename, False, validate, file_offset)

    def sync_pread(self, buffer, filename, file_offset=0):
        return self._sync(buffer, filename, True, False, file_offset)

    def sync_pwrite(self, buffer, filename, file_offset=0):
        return self._sync(buffer, filename, False, False, file_offset)

    def async_pread(self, buffer, filename, file_offset=0):
        return self._submit(buffer, filename, True, False, file_offset)

    def async_pwrite(self, buffer, filename=None, file_offset=0, *, fd=None):
        """By path, or by a caller's int fd (FastPersist; positional or
        ``fd=``), which stays open."""
        if fd is not None:
            if filename is not None:
                raise TypeError("async_pwrite: both filename and fd given")
            filename = _index("fd", fd)
        elif filename is None:
            raise TypeError("async_pwrite: filename or fd is required")
        return self._submit(buffer, filename, False, False, file_offset)

    # Locked tensors.
    def new_cpu_locked_tensor(self, num_elem, example_tenosr):
        """A 1-D CPU tensor of num_elem elements of example_tenosr's dtype
        in page-aligned, locked memory (the keyword is DeepSpeed's)."""
        return _new_locked(num_elem, example_tenosr)

    def free_cpu_locked_tensor(self, tensor):
        """Forget a tensor from new_cpu_locked_tensor: True if it was one.
        The memory goes when the last view of it does."""
        return _free_locked(tensor)

    def is_pinned(self, buffer):
        """buffer.is_pinned(), or it lies wholly inside memory from
        new_cpu_locked_tensor (views count)."""
        return _is_pinned(buffer)

    def close(self):
        """Wait for what is pending, then close (a swapio addition)."""
        try:
            self.wait()
        finally:
            self._h.close()

    def __del__(self):
        try:
            with self._lock:
                ops, self._pending = self._pending, []
            for p in ops:
                try:
                    self._finish(p)
                except BaseException:
                    pass
        except Exception:
            pass


# pread/pwrite take the argument DeepSpeed calls ``async``, a Python
# keyword: accept it through **{"async": ...} as well.
def _kw_async(fn):
    def wrapper(self, buffer, filename, validate, *args, **kw):
        if "async" in kw:
            kw["async_op"] = kw.pop("async")
        return fn(self, buffer, filename, validate, *args, **kw)
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


aio_handle.pread = _kw_async(aio_handle.pread)
aio_handle.pwrite = _kw_async(aio_handle.pwrite)


class pin_handle:
    """DeepSpeed's ``pin_handle`` (PinMemoryBuilder's op)."""

    def new_cpu_locked_tensor(self, num_elem, example_tensor):
        return _new_locked(num_elem, example_tensor)

    def free_cpu_locked_tensor(self, locked_tensor):
        return _free_locked(locked_tensor)

    def free_cpu_locked_tensor_by_ptr(self, address):
        return _ranges.remove(int(address))

    def is_pinned(self, buffer):
        return _is_pinned(buffer)


def _one_shot(buffer, filename, block_size, queue_depth, single_submit,
              overlap_events, validate, is_read):
    h = aio_handle(block_size, queue_depth, single_submit, overlap_events)
    try:
        r = h._sync(buffer, filename, is_read, validate, 0, True)
        return r if r < 0 else 0
    finally:
        h.close()


def aio_read(buffer, filename, block_size, queue_depth, single_submit,
             overlap_events, validate):
    """Read the whole file into buffer; 0 or -1."""
    return _one_shot(buffer, filename, block_size, queue_depth,
                     single_submit, overlap_events, validate, True)


def aio_write(buffer, filename, block_size, queue_depth, single_submit,
              overlap_events, validate):
    """Write buffer as the file; 0 or -1."""
    return _one_shot(buffer, filename, block_size, queue_depth,
                     single_submit, overlap_events, validate, False)


def deepspeed_memcpy(dest, src):
    """dest.copy_(src); 0."""
    dest.copy_(src)
    return 0


class gds_handle(aio_handle):
    """DeepSpeed's ``gds_handle`` (``"aio": {"use_gds": true}``) on swapio.

    The constructor and methods of :class:`aio_handle`; CUDA tensors go by
    GPUDirect Storage (swapio's ``gpu_path="gds"``: cuFile for every op
    it can take, the staging path for the rest and for any file cuFile
    refuses; docs/GPU.md), CPU tensors as in :class:`aio_handle`. Plus
    DeepSpeed's four device-buffer calls. swapio registers no device
    memory with cuFile (an unregistered buffer goes through cuFile's own
    bounce buffers), so :meth:`pin_device_tensor` is a check, not a
    requirement: where DeepSpeed's handle ends the process for a buffer
    that was never pinned, this one moves it.
    """

    _gpu_path = "gds"

    def new_pinned_device_tensor(self, num_elem, example_tenosr):
        """An empty tensor of *num_elem* elements like the example (its
        dtype and device); the keyword keeps DeepSpeed's spelling."""
        t = example_tenosr
        return _torch().empty(int(num_elem), dtype=t.dtype, device=t.device)

    def free_pinned_device_tensor(self, tensor):
        """True: the tensor is freed with its last reference."""
        return True

    def pin_device_tensor(self, tensor):
        """True for a contiguous CUDA tensor (nothing to register), else
        False, as DeepSpeed's returns for a buffer it cannot pin."""
        return _cuda_device(tensor) is not None

    def unpin_device_tensor(self, tensor):
        """True for a contiguous CUDA tensor, else False."""
        return _cuda_device(tensor) is not None


def _module(name, **attrs):
    # No __file__: DeepSpeed's pin-memory loader CDLLs a module's __file__.
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    return m


def cast_to_byte_tensor(src_tensor):
    """DeepSpeed's utils op: a tensor's bytes as a 1-D uint8 tensor over the
    same memory (a list gives a list); one byte or less comes back as is."""
    if isinstance(src_tensor, (list, tuple)):
        return [cast_to_byte_tensor(t) for t in src_tensor]
    if _nbytes(src_tensor) <= 1:
        return src_tensor
    if not src_tensor.is_contiguous():
        raise ValueError("cast_to_byte_tensor: tensor is not contiguous")
    return src_tensor.detach().reshape(-1).view(_torch().uint8)


class _UtilsBuilder:
    """What FastPersist's writer gets for UtilsBuilder once installed (on
    the CPU accelerator DeepSpeed hands it a NotImplementedBuilder)."""

    NAME = "utils"

    def load(self, verbose=False):
        return utils

    def is_compatible(self, verbose=False):
        return True


# One module for AsyncIOBuilder and GDSBuilder (a subclass of it in
# DeepSpeed, whose load() returns this module once installed).
async_io = _module("swapio.deepspeed.async_io", aio_handle=aio_handle,
                   gds_handle=gds_handle,
                   aio_read=aio_read, aio_write=aio_write,
                   deepspeed_memcpy=deepspeed_memcpy)
pin_memory = _module("swapio.deepspeed.pin_memory", pin_handle=pin_handle)
utils = _module("swapio.deepspeed.utils",
                cast_to_byte_tensor=cast_to_byte_tensor)


# ----------------------------------------------------------------- install

_saved = []     # (object, attribute, old value or _MISSING)
_MISSING = object()


def _set(obj, name, value):
    _saved.append((obj, name, obj.__dict__.get(name, _MISSING)))
    setattr(obj, name, value)


def _builder_classes(kind):
    """Every class DeepSpeed may hand out for "AsyncIOBuilder" or
    "PinMemoryBuilder": the generic one, the accelerator's (the CPU one
    here), under both ``deepspeed.ops.op_builder`` and ``op_builder``."""
    import importlib

    mods = {"AsyncIOBuilder": ("async_io", "cpu.async_io"),
            "PinMemoryBuilder": ("pin_memory", "cpu.pin_memory")}[kind]
    found = []
    for top in ("deepspeed.ops.op_builder", "op_builder"):
        for sub in mods:
            try:
                m = importlib.import_module(top + "." + sub)
            except Exception:
                continue
            cls = getattr(m, kind, None)
            if isinstance(cls, type) and cls not in found:
                found.append(cls)
    try:
        from deepspeed.accelerator import get_accelerator

        cls = get_accelerator().get_op_builder(kind)
        if isinstance(cls, type) and cls not in found:
            found.append(cls)
    except Exception:
        pass
    try:
        import deepspeed.ops.op_builder as ob

        cls = getattr(ob, kind, None)
        if isinstance(cls, type) and cls not in found:
            found.append(cls)
    except Exception:
        pass
    return found


def install(engine=None):
    """Make DeepSpeed's AsyncIOBuilder().load() and PinMemoryBuilder().load()
    return swapio's modules, process-wide. Call it before DeepSpeed builds
    its swappers (before deepspeed.initialize). Idempotent; returns the
    async_io module. FastPersist's writer also gets a Python
    cast_to_byte_tensor, its only other op. *engine* ("uring", "aio", "threads") is the swapio
    engine the handles use; default "auto" or $SWAPIO_DS_ENGINE."""
    global _engine
    import importlib

    if engine is not None:
        _engine = engine
    if _saved:
        return async_io
    import deepspeed.ops  # noqa: F401 (raises ImportError without it)

    def load_aio(self, verbose=False):
        return async_io

    def load_pin(self, verbose=False):
        return pin_memory

    def compatible(self, verbose=False):
        return True

    for kind, load in (("AsyncIOBuilder", load_aio),
                       ("PinMemoryBuilder", load_pin)):
        for cls in _builder_classes(kind):
            _set(cls, "load", load)
            _set(cls, "is_compatible", compatible)
    for top in ("deepspeed.ops.op_builder", "op_builder"):
        try:
            b = importlib.import_module(top + ".builder")
        except Exception:
            continue
        ops = b.OpBuilder._loaded_ops
        for name in ("async_io", "gds"):    # gds_handle lives there too
            _saved.append((ops, name, ops.get(name, _MISSING)))
            ops[name] = async_io
    try:
        ffw = importlib.import_module("deepspeed.io.fast_file_writer")
        _set(ffw, "UtilsBuilder", _UtilsBuilder)
    except ImportError:
        pass
    _saved.append((sys, "_deepspeed_pin_memory_op_module",
                   getattr(sys, "_deepspeed_pin_memory_op_module", _MISSING)))
    sys._deepspeed_pin_memory_op_module = pin_memory
    import deepspeed.ops as dops

    compat = dops.__dict__.get("__compatible_ops__")
    if compat is None:
        compat = getattr(dops, "__compatible_ops__", None)
    if isinstance(compat, dict):
        _saved.append((compat, "async_io", compat.get("async_io", _MISSING)))
        compat["async_io"] = True
    return async_io


def uninstall():
    """Undo install()."""
    while _saved:
        obj, name, old = _saved.pop()
        if isinstance(obj, dict):
            if old is _MISSING:
                obj.pop(name, None)
            else:
                obj[name] = old
        elif old is _MISSING:
            try:
                delattr(obj, name)
            except AttributeError:
                pass
        else:
            setattr(obj, name, old)
