"""torch.distributed.checkpoint (DCP) storage written and read by swapio.

:class:`Writer` and :class:`Reader` are ``FileSystemWriter`` and
``FileSystemReader`` with their I/O done by swapio: the on-disk format is
theirs (``.distcp`` files of torch.save-format items, a pickled
``.metadata``), so the stock reader loads what :class:`Writer` writes and
:class:`Reader` loads what the stock writer wrote; DCP's planners (and so
resharding from N ranks to M) work unchanged::

    import torch.distributed.checkpoint as dcp
    import swapio.torch
    dcp.save(state_dict, storage_writer=swapio.torch.dcp.Writer(path))
    dcp.load(state_dict, storage_reader=swapio.torch.dcp.Reader(path))

Crash rules: every save writes its data files under names of their own
(``__<rank>_<token>_<n>.distcp``, the token new for each save), each under
a temporary name, ``fdatasync``-ed and renamed; ``finish`` then replaces
``.metadata`` atomically (written to a temporary name, synced, renamed
over the old one, directory synced) and only then removes the data files
the new metadata does not name. A crash at any point leaves the previous
checkpoint (its metadata and the files it names) whole, or the new one.
``sync_files=False`` skips the syncs.

Several drives: ``Writer([dir_a, dir_b, ...])`` spreads every rank's data
files over the directories (one file per directory at least, written at
the same time, one thread and one :class:`swapio.Handle` per directory);
the first directory is the checkpoint's (``.metadata`` lies there) and
names the other files by a path relative to it (``../../b/ckpt/...``).
The stock ``FileSystemReader`` and :class:`Reader` given the first
directory read it, as long as the directories keep their places relative
to each other.
"""

import dataclasses
import io
import os
import pickle
import re
import secrets
from concurrent.futures import ThreadPoolExecutor

import torch
from torch.distributed._shard._utils import narrow_tensor_by_index
from torch.distributed.checkpoint import filesystem as _fs
from torch.distributed.checkpoint.planner import (
    LoadItemType,
    WriteItemType,
)
from torch.distributed.checkpoint.storage import WriteResult
from torch.futures import Future

import swapio
from swapio import _ckpt, _torch_ckpt

__all__ = ["Reader", "Writer"]

_GROUP = 64 << 20   # the reader's read-ahead: one group read, one placed
_DIRECT_MIN = 1 << 20   # items read straight into their tensors
_ENDS = 16 << 10        # bytes read at each end of such an item first

_OURS = re.compile(r"^__\d+_([0-9a-f]{8}_)?\d+\.distcp$")


def _cpu_tensor(t):
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.untyped_storage().size() != t.numel() * t.element_size():
        t = t.clone()
    return t


class Writer(_fs.FileSystemWriter):
    """A DCP ``StorageWriter``: ``FileSystemWriter``'s format and
    arguments (``single_file_per_rank``, ``sync_files``, ``thread_count``:
    the number of files per rank), written by swapio with every item of a
    file in flight through one :class:`swapio.Handle` (*handle*, or a new
    one per save).

    *path* may be a list of directories, one per drive: the first is the
    checkpoint's directory, and each rank writes at least one file into
    each directory, all directories at once (*handle* is then ignored: each
    directory gets a handle of its own)."""

    def __init__(self, path, single_file_per_rank=True, sync_files=True,
                 thread_count=1, per_thread_copy_ahead=10_000_000,
                 cache_staged_state_dict=False, overwrite=True, *,
                 handle=None):
        dirs = self._dir_list(path)
        super().__init__(dirs[0], single_file_per_rank=single_file_per_rank,
                         sync_files=sync_files, thread_count=thread_count,
                         per_thread_copy_ahead=per_thread_copy_ahead,
                         cache_staged_state_dict=cache_staged_state_dict,
                         overwrite=overwrite)
        self._dirs = dirs
        self._handle = handle

    @staticmethod
    def _dir_list(path):
        if isinstance(path, (list, tuple)):
            if not path:
                raise ValueError("swapio.torch.dcp.Writer: no directory")
            dirs = [os.path.realpath(os.fspath(d)) for d in path]
            if len(set(dirs)) != len(dirs):
                raise ValueError("swapio.torch.dcp.Writer: a directory is "
                                 "named twice: %r" % (dirs,))
            for d in dirs[1:]:
                os.makedirs(d, exist_ok=True)
            return dirs
        return [path]

    def reset(self, checkpoint_id=None):
        if checkpoint_id:
            dirs = self._dir_list(checkpoint_id)
            self._dirs = dirs
            checkpoint_id = dirs[0]
        super().reset(checkpoint_id)

    def _file_dir(self, n):
        """The directory of a rank's *n*-th data file, and the file's
        name relative to the checkpoint directory's."""
        if len(self._dirs) == 1:
            return os.fspath(self.path), ""
        d = self._dirs[n % len(self._dirs)]
        rel = os.path.relpath(d, os.path.realpath(os.fspath(self.path)))
        return d, ("" if rel == "." else rel + os.sep)

    def prepare_global_plan(self, plans):
        token = secrets.token_hex(4)
        return [dataclasses.replace(
                    p, storage_data=_fs._StoragePrefix(f"__{i}_{token}_"))
                for i, p in enumerate(plans)]

    def write_data(self, plan, planner):
        prefix = plan.storage_data.prefix
        if self.single_file_per_rank:
            bins = _fs._split_by_size_and_type(
                max(self.thread_count, len(self._dirs)), plan.items)
        else:
            bins = [[item] for item in plan.items]
        ndirs = len(self._dirs)
        per_dir = [[(n, items) for n, items in enumerate(bins)
                    if n % ndirs == k] for k in range(ndirs)]
        done = []

        def one_dir(jobs, handle):
            h = handle if handle is not None else _ckpt.save_handle()
            res = []
            try:
                for n, items in jobs:
                    d, rel = self._file_dir(n)
                    name = f"{prefix}{n}{_fs.DEFAULT_SUFFIX}"
                    res += self._write_file(h, d, rel + name, name, items,
                                            planner)
                    done.append(os.path.join(d, name))
            finally:
                if handle is None:
                    h.close()
            return res

        results = []
        try:
            if ndirs == 1:
                results = one_dir(per_dir[0], self._handle)
            else:
                with ThreadPoolExecutor(ndirs) as ex:
                    futs = [ex.submit(one_dir, jobs, None)
                            for jobs in per_dir if jobs]
                    errs = []
                    for fu in futs:
                        try:
                            results += fu.result()
                        except BaseException as e:  # noqa: B036
                            errs.append(e)
                    if errs:
                        raise errs[0]
        except BaseException:
            for path in done:  # no metadata names them: drop them
                try:
                    os.unlink(path)
                except OSError:
                    pass
            raise
        fut = Future()
        fut.set_result(results)
        return fut

    def _write_file(self, h, d, rel, name, items, planner):
        pieces = []
        results = []
        off = 0
        items = ([i for i in items if i.type == WriteItemType.BYTE_IO]
                 + [i for i in items if i.type != WriteItemType.BYTE_IO])
        for item in items:
            data = planner.resolve_data(item)
            if item.type == WriteItemType.BYTE_IO:
                b = bytes(data.getbuffer())
                sub, length = [(0, b)], len(b)
            else:
                sub, length = _torch_ckpt.plan(_cpu_tensor(data))
            pieces += [(off + o, d) for o, d in sub]
            results.append(WriteResult(
                index=item.index, size_in_bytes=length,
                storage_data=_fs._StorageInfo(rel, off, length)))
            off += length
        path = os.path.join(d, name)
        _torch_ckpt.write_file(path, pieces, off, self.sync_files, h)
        return results

    def finish(self, metadata, results):
        metadata.version = _fs.CURRENT_DCP_VERSION
        storage_md = {}
        for wr_list in results:
            storage_md.update({wr.index: wr.storage_data for wr in wr_list})
        metadata.storage_data = storage_md
        metadata.storage_meta = self.storage_meta()
        if not self.use_collectives and self.rank is not None:
            md_path = self._get_metadata_path(self.rank)
        else:
            md_path = self._get_metadata_path()
        d = os.fspath(self.path)
        if self.sync_files:
            for e in self._dirs[1:]:
                _ckpt.sync_dir(e)
            _ckpt.sync_dir(d)  # the data files' names, before the switch
        b = pickle.dumps(metadata)
        _torch_ckpt.write_file(os.fspath(md_path), [(0, b)], len(b),
                               self.sync_files, self._handle)
        if self.use_collectives or self.rank is None:
            top = os.path.realpath(d)
            keep = {os.path.normpath(os.path.join(top, s.relative_path))
                    for s in storage_md.values()}
            dirs = [top] + [e for e in self._dirs[1:] if e != top]
            for e_dir in dirs:
                for e in os.listdir(e_dir):
                    full = os.path.join(e_dir, e)
                    if (_OURS.match(e) and full not in keep) or \
                            e.endswith(".swapio-tmp"):
                        try:
                            os.unlink(full)
                        except FileNotFoundError:
                            pass


def _plain(t):
    """A contiguous CPU tensor whose bytes are its values as they are."""
    return (t.device.type == "cpu" and t.is_contiguous()
            and not t.is_conj() and not t.is_neg())


def _same_layout(dst, meta):
    """Can *dst* take the bytes of *meta*'s record as they are: a plain
    tensor of its dtype and shape."""
    return (_plain(dst) and dst.dtype == meta.dtype
            and dst.shape == meta.shape and dst.numel() > 0)


def _copy(dst, src):
    """``dst.copy_(src)``; one memcpy where both are plain tensors of one
    dtype: torch's copy_ of a large tensor starts its OpenMP threads,
    whose spinning after each copy takes the CPU the reads need (on 2
    cores, the largest share of the reader's CPU)."""
    if dst.dtype != src.dtype or not _plain(dst) or not _plain(src):
        dst.copy_(src)
    elif dst.numel():
        _ckpt._as_np(dst.reshape(-1).view(torch.uint8))[:] = \
            _ckpt._as_np(src.detach().reshape(-1).view(torch.uint8))


class Reader(_fs.FileSystemReader):
    """A DCP ``StorageReader`` for ``FileSystemWriter``'s format.

    Each item is a torch.save archive of one tensor. For an item of
    1 MiB or more, the reader first reads 16 KiB at each end (all such
    items in flight together) and finds there, with torch's own reader
    and ``weights_only`` unpickler over meta storage, where the tensor's
    bytes lie; if the planner's tensor is a contiguous CPU tensor of that
    dtype and shape and the plan wants all of it, those bytes are read
    straight into it. Every other item is read whole by swapio into one
    buffer per group (64 MiB, or half of *batch_bytes* if that is less),
    every file's items in flight together, each placed on the page as it
    lies in its file (no bounce); while the next group is read, each item
    of a group is opened in memory, torch's unpickler rebuilds the tensor
    over views of that buffer, and it is copied into the planner's
    tensor. At most two groups' memory is held.
    """

    def __init__(self, path, *, handle=None, batch_bytes=1 << 30):
        super().__init__(path)
        self._handle = handle
        self._group = max(1, min(batch_bytes // 2, _GROUP))

    def read_data(self, plan, planner):
        items = []
        for req in plan.items:
            md = self.storage_data[req.storage_index]
            if md.transform_descriptors:
                return super().read_data(plan, planner)
            items.append((md.relative_path, md.offset, md.length, req))
        items.sort(key=lambda it: (it[0], it[1]))
        h = self._handle if self._handle is not None else swapio.Handle()
        try:
            direct, rest = self._direct(h, items, planner)
            # The tensors that can take their record's bytes get them
            # straight from the drive; the reads run while the other
            # items are read and placed.
            files, opened = {}, []
            for rel, off, target, _ in direct:
                files.setdefault(rel, []).append(
                    (off, target.reshape(-1).view(torch.uint8)))
            reads = None
            try:
                for rel in files:
                    opened.append(self._open(h, rel))
                reads = _ckpt.Reads(list(zip(opened, files.values())))
                self._read_rest(h, rest, planner)
                reads.wait()
            finally:
                if reads is not None:
                    reads.abandon()     # after wait(): nothing left
                for f in opened:
                    f.close()
            for _, _, target, req in direct:
                planner.commit_tensor(req, target)
        finally:
            if self._handle is None:
                h.close()
        fut = Future()
        fut.set_result(None)
        return fut

    def _open(self, h, rel):
        return h.open(os.path.join(os.fspath(self.path), rel), "r")

    def _direct(self, h, items, planner):
        """Split *items* into ``(file, offset, target, req)`` of tensors
        whose record holds exactly the bytes of the planner's tensor
        (found from the first and last bytes of each archive, read all in
        flight) and the rest, read whole."""
        cand = [it for it in items if it[3].type == LoadItemType.TENSOR
                and it[2] >= _DIRECT_MIN]
        if not cand:
            return [], [it + (None,) for it in items]
        spans = []
        for _, off, n, _ in cand:
            spans += [(off, _ENDS), (off + n - _ENDS, _ENDS)]
        _, mem = _ckpt.placed(spans)
        files = {}
        for (rel, _, _, _), i in zip(cand, range(0, len(mem), 2)):
            files.setdefault(rel, []).extend(
                zip((spans[i][0], spans[i + 1][0]), mem[i:i + 2]))
        opened = []
        try:
            for rel in files:
                opened.append(self._open(h, rel))
            _ckpt.read_spans_many(list(zip(opened, files.values())))
        finally:
            for f in opened:
                f.close()
        direct, resolved = [], {}
        for (rel, off, n, req), i in zip(cand, range(0, len(mem), 2)):
            found = _torch_ckpt.tensor_record(mem[i], mem[i + 1], n)
            if found is None:
                continue
            rec, meta = found
            if any(req.storage_offsets) or \
                    list(req.lengths) != list(meta.shape):
                continue
            target = planner.resolve_tensor(req).detach()
            resolved[id(req)] = target
            if _same_layout(target, meta):
                direct.append((rel, off + rec, target, req))
        chosen = {id(d[3]) for d in direct}
        return direct, [it + (resolved.get(id(it[3])),) for it in items
                        if id(it[3]) not in chosen]

    def _read_rest(self, h, items, planner):
        """Read *items* whole, in groups, and place them."""
        groups, size = [[]], 0
        for it in items:
            if groups[-1] and size + it[2] > self._group:
                groups.append([])
                size = 0
            groups[-1].append(it)
            size += it[2]
        # Group n + 1 is read while group n's items are unpickled and
        # copied to their places. Their buffers are reused: new memory
        # would be faulted in and zeroed for every group.
        ahead, free = None, []
        try:
            for group in groups:
                reads = (self._read_group(h, group, free) if group
                         else None)
                if ahead is not None:
                    done, ahead = ahead, None
                    free.append(self._place(done, planner))
                ahead = reads
            if ahead is not None:
                done, ahead = ahead, None
                self._place(done, planner)
        finally:
            if ahead is not None:
                ahead[0].abandon()
                for f in ahead[1]:
                    f.close()

    def _read_group(self, h, group, free):
        """Submit the reads of *group*'s items into a buffer of *free* (or
        a new one); returns what _place() takes."""
        buf, mem = _ckpt.placed([(off, n) for _, off, n, _, _ in group],
                                free.pop() if free else None)
        views, files = [], {}
        for (rel, off, _, req, target), m in zip(group, mem):
            views.append((req, m, target))
            files.setdefault(rel, []).append((off, m))
        opened = []
        try:
            for rel in files:
                opened.append(self._open(h, rel))
            # Every file's items in flight at once, one op each (small
            # neighbours merged), whatever the number of files.
            reads = _ckpt.Reads(list(zip(opened, files.values())))
        except BaseException:
            for f in opened:
                f.close()
            raise
        return reads, opened, views, buf

    def _place(self, group, planner):
        """Wait for a group's reads, then unpickle each item and copy it
        into the planner's tensor; returns the group's buffer, free."""
        reads, opened, views, buf = group
        try:
            reads.wait()
        finally:
            for f in opened:
                f.close()
        for req, data, target in views:
            if req.type == LoadItemType.BYTE_IO:
                planner.load_bytes(req, io.BytesIO(data.tobytes()))
                continue
            tensor = _torch_ckpt.load_from_memory(data, map_location="cpu",
                                                  weights_only=True)
            tensor = narrow_tensor_by_index(tensor, req.storage_offsets,
                                            req.lengths)
            if target is None:
                target = planner.resolve_tensor(req).detach()
            if target.size() != tensor.size():
                raise AssertionError(
                    f"req {req.storage_index} mismatch sizes "
                    f"{target.size()} vs {tensor.size()}")
            _copy(target, tensor)
            planner.commit_tensor(req, target)
        return buf
