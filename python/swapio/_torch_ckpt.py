"""torch.save / torch.load in torch's own zip format, at the drive's speed.

The archive's skeleton (local headers, the pickle, the small records, the
central directory) comes from torch's own writer, ``PyTorchFileWriter``,
given every storage record's size but not its bytes (as
``torch.serialization.skip_data`` does): the writer seeks over each
record's data, so the skeleton is a list of small pieces with a hole per
storage, at the 64-byte aligned offset torch chose. swapio then writes the
pieces and every storage's bytes at its offset, all in flight. A save
writes each big storage as soon as torch's writer has placed it, while
the pickling goes on. A load
opens the archive with torch's ``PyTorchFileReader``, reads every storage
record with swapio into new memory, all in flight, and lets torch's own
unpickler (``weights_only`` or not) rebuild the object.

The records' CRC-32 fields are left as torch's writer sets them for a
skipped record (not the data's CRC); torch.load does not check them.
"""

import io
import os
import pickle
import sys
import zipfile

import torch
import torch.serialization as ts

import swapio
from swapio import _ckpt

_DEFAULT_PROTOCOL = ts.DEFAULT_PROTOCOL


class _Sparse:
    """A seekable sink for PyTorchFileWriter: keeps what is written as
    pieces and each record's skipped data as a hole."""

    def __init__(self, emit=None):
        self.pos = 0
        self.end = 0
        self.pieces = []
        self.pending = None
        self.emit = emit    # takes big records as they are placed

    def write(self, b):
        n = memoryview(b).nbytes
        last = self.pieces[-1][1] if self.pieces else None
        if (type(last) is bytearray
                and self.pieces[-1][0] + len(last) == self.pos):
            last += b       # torch's writer writes a header in many calls
        else:
            self.pieces.append((self.pos, bytearray(b)))
        self.pos += n
        self.end = max(self.end, self.pos)
        return n

    def seek(self, off, whence=0):
        new = off if whence == 0 else (
            self.pos + off if whence == 1 else self.end + off)
        if self.pending is not None and new > self.pos:
            n = new - self.pos
            if n != self.pending.nbytes:
                raise RuntimeError("swapio.torch.save: torch's writer "
                                   "skipped %d bytes for a record of %d"
                                   % (n, self.pending.nbytes))
            if self.emit and self.pending.nbytes >= _ckpt.SMALL:
                self.emit(self.pos, self.pending)
            else:
                self.pieces.append((self.pos, self.pending))
            self.pending = None
        self.pos = new
        self.end = max(self.end, new)
        return new

    def tell(self):
        return self.pos

    def flush(self):
        pass


def _bytes_of(storage):
    """A 1-D uint8 CPU tensor over all of *storage*'s bytes (no copy)."""
    t = torch.empty((0,), dtype=torch.uint8)
    return t.set_(storage, 0, (storage.nbytes(),), (1,))


class _Writer:
    """What torch.serialization._save calls: small records go to the
    writer, storages become holes."""

    def __init__(self, sink):
        self.sink = sink
        self.w = torch._C.PyTorchFileWriter(
            sink, ts.get_crc32_options(), ts._get_storage_alignment())

    def write_record(self, name, data, n):
        if isinstance(data, torch.UntypedStorage):
            if n == 0:
                self.w.write_record_metadata(name, 0)
                return
            self.sink.pending = _bytes_of(data)
            self.w.write_record_metadata(name, n)
            if self.sink.pending is not None:
                raise RuntimeError("swapio.torch.save: torch's writer did "
                                   "not skip record %s" % name)
        else:
            self.w.write_record(name, data, n)

    def write_record_metadata(self, name, n):
        self.w.write_record_metadata(name, n)


def plan(obj, pickle_module=pickle, pickle_protocol=_DEFAULT_PROTOCOL,
         disable_byteorder_record=False, emit=None):
    """The pieces ``(offset, data)`` of *obj*'s torch.save archive and
    its size in bytes. With *emit*, each storage record of at least
    _ckpt.SMALL bytes goes to ``emit(offset, data)`` as soon as torch's
    writer has placed it, instead of into the pieces."""
    sink = _Sparse(emit)
    w = _Writer(sink)
    ts._save(obj, w, pickle_module, pickle_protocol,
             disable_byteorder_record)
    w.w.write_end_of_file()
    return sink.pieces, sink.end


def write_file(path, pieces, size, durable=True, handle=None):
    """Write *pieces* to a new file at *path* under the crash rules."""
    h = handle if handle is not None else _ckpt.save_handle()
    try:
        with _ckpt.Publish(path, durable) as tmp:
            with h.open(tmp, "w") as f:
                if size:
                    try:
                        f.allocate(0, size)
                    except swapio.Error as e:
                        if e.errno not in (95,):  # EOPNOTSUPP
                            raise
                _ckpt.write_pieces(f, pieces)
                if durable:
                    f.sync()
    finally:
        if handle is None:
            h.close()


def _is_path(f):
    return isinstance(f, (str, bytes, os.PathLike))


def save(obj, f, pickle_module=pickle, pickle_protocol=_DEFAULT_PROTOCOL,
         _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False, *, durable=True, handle=None):
    """torch.save's drop-in; see swapio.torch.save."""
    if not _is_path(f) or not _use_new_zipfile_serialization:
        return torch.save(obj, f, pickle_module, pickle_protocol,
                          _use_new_zipfile_serialization,
                          _disable_byteorder_record)
    h = handle if handle is not None else _ckpt.save_handle()
    try:
        with _ckpt.Publish(os.fsdecode(f), durable) as tmp:
            with h.open(tmp, "w") as out:
                # Big storages are written while torch pickles the rest.
                # An error must not cross torch's C++ writer (it would
                # leave it broken): it is kept and raised after it.
                ops, failed = [], []

                def emit(off, data):
                    if failed:
                        return
                    try:
                        ops.append((out.write_async(data, off), data.nbytes))
                    except BaseException as e:  # noqa: B036 - raised below
                        failed.append(e)

                try:
                    pieces, _ = plan(obj, pickle_module, pickle_protocol,
                                     _disable_byteorder_record, emit=emit)
                    if failed:
                        raise failed[0]
                    _ckpt.write_pieces(out, pieces)
                finally:
                    _ckpt._wait_all(ops)
                if durable:
                    out.sync()
    finally:
        if handle is None:
            h.close()
    return None


class _Seekable(io.RawIOBase):
    """A read-only, seekable file of *length* bytes; readinto() is the
    subclass's."""

    def __init__(self, length):
        self.length, self.pos = length, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, off, whence=0):
        self.pos = off if whence == 0 else (
            self.pos + off if whence == 1 else self.length + off)
        return self.pos

    def tell(self):
        return self.pos


class _View(_Seekable):
    """Bytes [base, base + length) of an open file."""

    def __init__(self, fobj, base, length):
        super().__init__(length)
        self.f, self.base = fobj, base

    def readinto(self, b):
        n = max(0, min(len(b), self.length - self.pos))
        if n == 0:
            return 0
        got = os.preadv(self.f.fileno(), [memoryview(b)[:n]],
                        self.base + self.pos)
        self.pos += got
        return got

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.length - self.pos
        b = bytearray(max(0, min(n, self.length - self.pos)))
        got = self.readinto(b)
        return bytes(b[:got])


class _Reader:
    """torch's PyTorchFileReader with the storages read ahead by swapio."""

    def __init__(self, r, storages):
        self.r = r
        self.storages = storages

    def __getattr__(self, name):
        return getattr(self.r, name)

    def get_storage_from_record(self, name, nbytes, cls):
        t = self.storages.get(name)
        if t is None or t.numel() != nbytes:
            return self.r.get_storage_from_record(name, nbytes, cls)
        return t


def open_archive(fobj, base=0, length=None):
    """torch's reader over the archive at [base, base + length) of the
    open file *fobj*, and ``{record name: (absolute offset, nbytes)}`` of
    its storages."""
    if length is None:
        length = os.fstat(fobj.fileno()).st_size - base
    view = _View(fobj, base, length)
    r = torch._C.PyTorchFileReader(view)
    recs = {}
    with zipfile.ZipFile(_View(fobj, base, length)) as z:
        for info in z.infolist():
            parts = info.filename.split("/", 1)
            if len(parts) != 2 or not parts[1].startswith("data/"):
                continue
            name = parts[1]
            recs[name] = (base + r.get_record_offset(name), info.file_size)
    return r, recs


class _Mem(_Seekable):
    """Bytes in memory (a memoryview), read without a copy of them all."""

    def __init__(self, mv):
        super().__init__(len(mv))
        self.mv = mv

    def readinto(self, b):
        n = max(0, min(len(b), self.length - self.pos))
        memoryview(b)[:n] = self.mv[self.pos:self.pos + n]
        self.pos += n
        return n


class _MemReader:
    """torch's PyTorchFileReader over an archive in memory, whose storages
    are views of that memory, made when the unpickler asks for them."""

    def __init__(self, r, mv):
        self.r, self.mv = r, mv

    def __getattr__(self, name):
        return getattr(self.r, name)

    def get_storage_from_record(self, name, nbytes, cls):
        if not nbytes:
            return torch.empty((0,), dtype=torch.uint8)
        off = self.r.get_record_offset(name)
        return torch.frombuffer(self.mv[off:off + nbytes], dtype=torch.uint8)


def load_from_memory(data, map_location=None, weights_only=None):
    """Unpickle the archive held in *data* (a 1-D uint8 array): its
    storages are views of *data*, not copies."""
    mv = memoryview(data).cast("B")
    r = _MemReader(torch._C.PyTorchFileReader(_Mem(mv)), mv)
    return load_archive(r, {}, map_location=map_location,
                        weights_only=weights_only)


class _Ends(_Seekable):
    """An archive of *length* bytes of which only the first (*head*) and
    the last (*tail*) are at hand. A read of anything else returns zeros
    and sets ``missed``: nothing parsed after that is used (an exception
    must not cross torch's C++ reader)."""

    def __init__(self, head, tail, length):
        super().__init__(length)
        self.head, self.tail, self.missed = head, tail, False

    def readinto(self, b):
        n = max(0, min(len(b), self.length - self.pos))
        lo, hi, t0 = self.pos, self.pos + n, self.length - len(self.tail)
        mv = memoryview(b)
        if hi <= len(self.head):
            mv[:n] = self.head[lo:hi]
        elif lo >= t0:
            mv[:n] = self.tail[lo - t0:hi - t0]
        else:
            self.missed = True
            mv[:n] = bytes(n)
        self.pos += n
        return n


class _MetaReader:
    """torch's reader whose storages are meta tensors: unpickling gives
    the tensor's dtype, shape, strides and storage offset, no data."""

    def __init__(self, r):
        self.r, self.records = r, {}

    def __getattr__(self, name):
        return getattr(self.r, name)

    def get_storage_from_record(self, name, nbytes, cls):
        self.records[name] = nbytes
        return torch.empty((nbytes,), dtype=torch.uint8, device="meta")


def tensor_record(head, tail, length):
    """Where the data of a torch.save archive of one tensor lies, from
    its first and last bytes only: ``(offset in the archive, meta tensor)``
    for a tensor whose storage is one record holding exactly its bytes,
    contiguous and in this machine's byte order; None when the archive is
    anything else or *head* and *tail* do not hold what it takes to
    tell."""
    ends = _Ends(memoryview(head).cast("B"), memoryview(tail).cast("B"),
                 length)
    try:
        r = torch._C.PyTorchFileReader(ends)
        if ends.missed:
            return None
        if r.has_record("byteorder") and \
                bytes(r.get_record("byteorder")).decode() != sys.byteorder:
            return None
        meta = _MetaReader(r)
        t = load_archive(meta, {}, map_location=lambda s, loc: s,
                         weights_only=True)
        if ends.missed or not isinstance(t, torch.Tensor) or \
                type(t) is not torch.Tensor or len(meta.records) != 1:
            return None
        (name, nbytes), = meta.records.items()
        off = r.get_record_offset(name)
    except Exception:  # noqa: BLE001 - any doubt: read it whole
        return None
    if ends.missed or not t.is_meta or not t.is_contiguous() or \
            t.storage_offset() or t.numel() * t.element_size() != nbytes \
            or off + nbytes > length:
        return None
    return off, t


def read_records(f, recs):
    """Read *recs* through the swapio File *f* into new uint8 tensors
    (the large ones over memory from _ckpt.new_at())."""
    out = {}
    spans = []
    for name, (off, n) in recs.items():
        if n >= _ckpt.SMALL:
            t = torch.frombuffer(_ckpt.new_at(off, n), dtype=torch.uint8)
        else:
            t = torch.empty((n,), dtype=torch.uint8)
        out[name] = t
        spans.append((off, t))
    _ckpt.read_spans(f, spans)
    return out


def _weights_only(weights_only, pickle_module):
    unset = weights_only is None
    if unset:
        weights_only = ts._default_to_weights_only(pickle_module)
    yes = ("1", "y", "yes", "true")
    force = os.getenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "0").lower() in yes
    force_no = os.getenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD",
                         "0").lower() in yes
    if force and force_no:
        raise RuntimeError(
            "Only one of `TORCH_FORCE_WEIGHTS_ONLY_LOAD` or "
            "`TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` should be set, but both "
            "were set.")
    if force:
        weights_only = True
    elif force_no and unset:
        weights_only = False
    if weights_only and pickle_module is not None:
        raise RuntimeError("Can not safely load weights when explicit "
                           "pickle_module is specified")
    return weights_only


def load_archive(reader, storages, map_location=None, pickle_module=None,
                 weights_only=None, **pickle_load_args):
    """Unpickle the archive of *reader* with the storages read ahead."""
    weights_only = _weights_only(weights_only, pickle_module)
    if "encoding" not in pickle_load_args:
        pickle_load_args["encoding"] = "utf-8"
    proxy = _Reader(reader, storages)
    if weights_only:
        try:
            return ts._load(proxy, map_location, ts._weights_only_unpickler,
                            **pickle_load_args)
        except pickle.UnpicklingError as e:
            raise pickle.UnpicklingError(
                "Weights only load failed. Re-running `swapio.torch.load` "
                "(or `torch.load`) with `weights_only` set to `False` will "
                "likely succeed, but it can result in arbitrary code "
                "execution. Do it only if you got the file from a trusted "
                "source.\n\nWeightsUnpickler error: " + str(e)) from None
    if pickle_module is None:
        pickle_module = pickle
    return ts._load(proxy, map_location, pickle_module, **pickle_load_args)


def load(f, map_location=None, pickle_module=None, *, weights_only=None,
         mmap=None, handle=None, **pickle_load_args):
    """torch.load's drop-in; see swapio.torch.load."""
    if not _is_path(f) or mmap or not zipfile.is_zipfile(f):
        return torch.load(f, map_location, pickle_module,
                          weights_only=weights_only, mmap=mmap,
                          **pickle_load_args)
    path = os.fsdecode(f)
    if path.endswith(".safetensors"):
        return torch.load(f, map_location, pickle_module,
                          weights_only=weights_only, **pickle_load_args)
    h = handle if handle is not None else swapio.Handle()
    try:
        with open(path, "rb") as fobj:
            reader, recs = open_archive(fobj)
            with h.open(path, "r") as sf:
                storages = read_records(sf, recs)
            return load_archive(reader, storages, map_location,
                                pickle_module, weights_only,
                                **pickle_load_args)
    finally:
        if handle is None:
            h.close()
