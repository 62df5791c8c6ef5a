"""safetensors files written and read by swapio, byte for byte the
``safetensors`` package's format.

A file is an 8-byte little-endian header length N, N bytes of JSON
(``__metadata__`` first, then each tensor's ``dtype``, ``shape`` and
``data_offsets`` relative to the data, padded with spaces to a multiple
of 8), then the tensors' bytes, largest alignment first, then by name:
what ``safetensors.torch.save_file`` writes for the same dict.

:func:`save_file` writes every tensor from its own memory at its offset,
all in flight, under the crash rules of :func:`swapio.torch.save` (a
temporary name, ``fdatasync``, rename, directory sync; ``durable=False``
skips the syncs). :func:`load_file` reads every tensor, all in flight,
into new memory or into the caller's tensors (``out=``: load weights into
an allocated model). :func:`safe_open` reads tensors one at a time.
"""

import json
import math
import os

import torch

import swapio
from swapio import _ckpt

__all__ = ["load", "load_file", "safe_open", "save", "save_file"]

# Names and the order of the safetensors Dtype enum (data is sorted by
# it, descending, then by name).
_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16",
          "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"]
_DTYPES = {
    "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8,
    "I16": torch.int16, "F16": torch.float16, "BF16": torch.bfloat16,
    "I32": torch.int32, "F32": torch.float32, "C64": torch.complex64,
    "F64": torch.float64, "I64": torch.int64,
}
for _name, _attr in (("F8_E5M2", "float8_e5m2"), ("F8_E4M3", "float8_e4m3fn"),
                     ("F8_E8M0", "float8_e8m0fnu"), ("U16", "uint16"),
                     ("U32", "uint32"), ("U64", "uint64")):
    if hasattr(torch, _attr):
        _DTYPES[_name] = getattr(torch, _attr)
_NAMES = {v: k for k, v in _DTYPES.items()}


def _layout(tensors, metadata):
    if not isinstance(tensors, dict):
        raise ValueError("Expected a dict of [str, torch.Tensor] but "
                         "received %s" % type(tensors))
    seen = {}
    items = []
    for k, v in tensors.items():
        if not isinstance(v, torch.Tensor):
            raise ValueError("Key `%s` is invalid, expected torch.Tensor "
                             "but received %s" % (k, type(v)))
        if v.layout != torch.strided:
            raise ValueError("swapio.safetensors: `%s` is a sparse tensor"
                             % k)
        if v.dtype not in _NAMES:
            raise ValueError("swapio.safetensors: `%s` has dtype %s, which "
                             "safetensors does not store" % (k, v.dtype))
        if v.numel():
            key = (v.untyped_storage().data_ptr(), v.device)
            if key in seen:
                raise RuntimeError(
                    "Some tensors share memory, this will lead to duplicate "
                    "memory on disk: %s" % [[seen[key], k]])
            seen[key] = k
        items.append((k, v))
    items.sort(key=lambda kv: (-_ORDER.index(_NAMES[kv[1].dtype]), kv[0]))
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    data = []
    off = 0
    for k, v in items:
        n = v.numel() * v.element_size()
        header[k] = {"dtype": _NAMES[v.dtype], "shape": list(v.shape),
                     "data_offsets": [off, off + n]}
        data.append((off, v))
        off += n
    hb = json.dumps(header, separators=(",", ":"),
                    ensure_ascii=False).encode()
    hb += b" " * (-len(hb) % 8)
    return hb, data, off


def _flat(v):
    v = v.detach()
    if v.device.type != "cpu":
        v = v.cpu()
    v = v.contiguous()
    return v.reshape(-1).view(torch.uint8) if v.numel() else None


def save_file(tensors, filename, metadata=None, *, durable=True,
              handle=None):
    """``safetensors.torch.save_file``'s drop-in (the same bytes)."""
    hb, data, total = _layout(tensors, metadata)
    base = 8 + len(hb)
    pieces = [(0, len(hb).to_bytes(8, "little") + hb)]
    for off, v in data:
        b = _flat(v)
        if b is not None:
            pieces.append((base + off, b))
    from swapio import _torch_ckpt
    _torch_ckpt.write_file(filename, pieces, base + total, durable, handle)


def save(tensors, metadata=None):
    """The file's bytes (as ``safetensors.torch.save``)."""
    hb, data, total = _layout(tensors, metadata)
    out = bytearray(len(hb).to_bytes(8, "little") + hb)
    for _, v in data:
        b = _flat(v)
        if b is not None:
            out += b.numpy().tobytes()
    return bytes(out)


def _header(path):
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise swapio.Error(22, "%s: not a safetensors file (%d bytes)"
                               % (path, len(head)))
        n = int.from_bytes(head, "little")
        size = os.fstat(f.fileno()).st_size
        if n > size - 8 or n > 100 << 20:
            raise swapio.Error(22, "%s: header length %d past the file's "
                               "end (%d bytes)" % (path, n, size))
        hdr = json.loads(f.read(n))
    meta = hdr.pop("__metadata__", None)
    base = 8 + n
    for k, v in hdr.items():
        a, b = v["data_offsets"]
        if v["dtype"] not in _DTYPES or not 0 <= a <= b or base + b > size:
            raise swapio.Error(22, "%s: tensor `%s`: bad entry %r"
                               % (path, k, v))
    return hdr, meta, base


def _device(device):
    return torch.device(device if not isinstance(device, int)
                        else "cuda:%d" % device)


def load_file(filename, device="cpu", *, out=None, handle=None):
    """``safetensors.torch.load_file``'s drop-in: a dict of new tensors on
    *device*. With *out* (a dict of name → tensor, e.g. a model's
    ``state_dict()``): its tensors of those names get the file's data in
    place (shapes and dtypes must match) and *out* is returned; names the
    file has but *out* lacks are loaded as new tensors into it. Contiguous
    CUDA tensors in *out* are read into straight from the file through the
    handle's device path, as is any other DLPack producer in *out* (its
    size in bytes must match: it gets the tensor's bytes)."""
    path = os.fsdecode(filename)
    hdr, _, base = _header(path)
    dev = _device(device)
    result = {} if out is None else out
    spans = []
    later = []
    for k, v in hdr.items():
        dtype = _DTYPES[v["dtype"]]
        shape = tuple(v["shape"])
        a, b = v["data_offsets"]
        target = result.get(k) if out is not None else None
        size = math.prod(shape) * dtype.itemsize
        if size != b - a:
            raise swapio.Error(22, "%s: tensor `%s`: %d bytes for shape %s"
                               % (path, k, b - a, list(shape)))
        if target is not None and not isinstance(target, torch.Tensor):
            # Any DLPack producer (CUDA memory too) takes the bytes.
            if _ckpt.nbytes(target) != size:
                raise ValueError(
                    "swapio.safetensors: `%s` is %d bytes in the file but "
                    "%d in out" % (k, size, _ckpt.nbytes(target)))
            if size:
                spans.append((base + a, target))
            continue
        if target is not None:
            if tuple(target.shape) != shape or target.dtype != dtype:
                raise ValueError(
                    "swapio.safetensors: `%s` is %s %s in the file but %s "
                    "%s in out" % (k, v["dtype"], list(shape),
                                   target.dtype, list(target.shape)))
            if target.is_contiguous() and size:
                # In place, on the host or straight to a CUDA tensor
                # through the handle's device path.
                spans.append((base + a, target.detach().reshape(-1)
                              .view(torch.uint8)))
                continue
        if size >= _ckpt.SMALL and (base + a) % dtype.itemsize == 0:
            # Read straight into its own memory (see _ckpt.new_at()).
            t = torch.frombuffer(_ckpt.new_at(base + a, size),
                                 dtype=torch.uint8)
            t = t.view(dtype).view(shape)
        else:
            t = torch.empty(shape, dtype=dtype)
        if b > a:
            spans.append((base + a, t.reshape(-1).view(torch.uint8)))
        later.append((k, t, target))
    h = handle if handle is not None else swapio.Handle()
    try:
        with h.open(path, "r") as f:
            _ckpt.read_spans(f, spans)
    finally:
        if handle is None:
            h.close()
    for k, t, target in later:
        if target is not None:
            with torch.no_grad():
                target.copy_(t)
        else:
            result[k] = t if dev.type == "cpu" else t.to(dev)
    return result


def load(data, device="cpu"):
    """Tensors from a file's bytes (as ``safetensors.torch.load``)."""
    import safetensors.torch
    return safetensors.torch.load(data)


class safe_open:  # noqa: N801 - the safetensors package's name
    """A lazy reader like ``safetensors.safe_open(path, framework="pt")``:
    ``keys()``, ``metadata()``, ``get_tensor(name)``; each tensor is read
    by swapio when asked for. A context manager."""

    def __init__(self, filename, framework="pt", device="cpu", *,
                 handle=None):
        if framework not in ("pt", "torch", "pytorch"):
            raise ValueError("swapio.safetensors.safe_open: framework %r: "
                             "only torch" % framework)
        self.path = os.fsdecode(filename)
        self._hdr, self._meta, self._base = _header(self.path)
        self._dev = _device(device)
        self._own = handle is None
        self._h = swapio.Handle() if handle is None else handle
        self._f = self._h.open(self.path, "r")

    def keys(self):
        return sorted(self._hdr)

    def metadata(self):
        return self._meta

    def get_tensor(self, name):
        v = self._hdr[name]
        t = torch.empty(tuple(v["shape"]), dtype=_DTYPES[v["dtype"]])
        a, b = v["data_offsets"]
        if b > a:
            _ckpt.read_spans(self._f, [(self._base + a,
                                        t.reshape(-1).view(torch.uint8))])
        return t if self._dev.type == "cpu" else t.to(self._dev)

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None
            if self._own:
                self._h.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
