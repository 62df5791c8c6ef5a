"""An LMCache second-level (L2) store on swapio's block tier.

LMCache's multiprocess cache server loads it as a ``native_plugin`` L2
adapter::

    python -m lmcache.v1.multiprocess.server ... --l2-adapter '{
        "type": "native_plugin", "module_path": "swapio.lmcache",
        "class_name": "SwapioL2Adapter",
        "adapter_params": {"dirs": ["/nvme0/kv", "/nvme1/kv"],
                           "capacity_bytes": 400000000000}}'

Each KV chunk LMCache hands over is one block of a :class:`swapio.BlockTier`
(keys as LMCache gives them, ``<model>@<kv_rank>@<group>@<chunk hash>``;
one store per root, striped over the roots), checksummed, written and read
by the tier's own I/O thread. Every ``submit_batch_*`` only queues the
batch and returns its future id; the tier's eventfd becomes readable when
batches finish, and :meth:`SwapioL2Adapter.drain_completions` reaps them
without blocking. Results are per key: a block that is missing, fails its
checksum, was written short or past the batch's deadline is a miss for that
key only, never wrong data, and a full disk fails the stores it hits (the
blocks already stored stay readable). The blocks survive a restart of the
server: a new adapter on the same dirs and namespace finds them.
"""

import errno as _errno
import os
import threading

from ._tier import HELD, RELEASED, BlockTier

__all__ = ["SwapioL2Adapter"]

_KEY_MAX = 255          # bytes of a BlockTier key


def _dirs(dirs):
    if isinstance(dirs, (str, bytes, os.PathLike)):
        dirs = [dirs]
    out = [os.fspath(d) for d in dirs]
    if not out:
        raise ValueError("swapio.lmcache: dirs is empty")
    for d in out:
        os.makedirs(d, mode=0o700, exist_ok=True)
    return out


def _capacity(capacity_bytes, max_capacity_gb):
    if capacity_bytes is not None:
        cap = int(capacity_bytes)
    elif max_capacity_gb:
        cap = int(float(max_capacity_gb) * (1 << 30))
    else:
        cap = 0
    if cap < 0:
        raise ValueError("swapio.lmcache: capacity_bytes %d is negative"
                         % cap)
    return cap


def _key(k):
    """The key's bytes, or a negative errno saying why it cannot be one."""
    if isinstance(k, str):
        try:
            k = k.encode("utf-8")
        except UnicodeEncodeError:
            return -_errno.EINVAL
    elif isinstance(k, (bytes, bytearray, memoryview)):
        k = bytes(k)
    else:
        return -_errno.EINVAL
    if not k or b"\0" in k:
        return -_errno.EINVAL
    if len(k) > _KEY_MAX:
        return -_errno.ENAMETOOLONG
    return k


def _buf(b, writable):
    """A flat byte view of a C-contiguous buffer, or a negative errno."""
    try:
        m = memoryview(b)
    except TypeError:
        return -_errno.EINVAL
    if not m.c_contiguous or m.nbytes == 0 or (writable and m.readonly):
        return -_errno.EINVAL
    if m.ndim != 1 or m.format != "B":
        m = m.cast("B")
    return m


def _describe(results):
    """One line naming the keys that failed and why, or ''."""
    bad = {}
    for r in results:
        if r != 0:
            bad[r] = bad.get(r, 0) + 1
    if not bad:
        return ""
    parts = []
    for r, n in sorted(bad.items()):
        name = _errno.errorcode.get(-r, str(-r))
        parts.append("%d %s (%s)" % (n, name, os.strerror(-r)))
    return "%d of %d keys failed: %s" % (sum(bad.values()), len(results),
                                         ", ".join(parts))


class _Batch:
    __slots__ = ("future", "op", "slots", "results", "refs")

    def __init__(self, future, op, n):
        self.future = future
        self.op = op
        self.slots = []         # index in the caller's list, per tier key
        self.results = [0] * n  # per key: 0 or -errno
        self.refs = None        # the views the tier reads or fills


class SwapioL2Adapter:
    """LMCache's native-plugin L2 interface over a :class:`swapio.BlockTier`.

    ``adapter_params`` are the keyword arguments:

    - ``dirs``: one root per drive (a str or a list; made, mode 0700, if
      missing); the blocks go in ``<root>/<namespace>/`` and are striped
      over the roots.
    - ``namespace``: ``"lmcache"`` by default. Two servers need two
      namespaces (the second to open one gets ``OSError(EBUSY)``); a
      restarted server finds its blocks under the same one.
    - ``capacity_bytes``: bytes the blocks may take on disk, LRU blocks
      evicted past it; 0 (default) fills the disk and fails stores softly
      when it is full. ``max_capacity_gb`` is taken when ``capacity_bytes``
      is not given (LMCache keeps its own ``max_capacity_gb``, outside
      ``adapter_params``, for its usage accounting).
    - ``timeout_ms``: a deadline for each batch; its keys still at the
      device when it passes fail with ETIMEDOUT. -1 (default): none. A
      batch past its deadline is reported once its I/O has ended, not
      before, since LMCache reuses the batch's buffers once it has the
      result.
    - ``engine``: ``"uring"`` (or ``"io_uring"``), ``"aio"``,
      ``"threads"``; None: the best that runs.
    - ``checksum``: True (default) verifies every block read (XXH3); a
      block that fails is a miss and is dropped.
    - ``high_watermark``, ``low_watermark``: the tier's eviction band.

    Every ``submit_batch_*`` queues and returns a future id at once; the
    result of each comes out of :meth:`drain_completions` as ``(future id,
    ok, error, per_key)``: ``per_key`` is a list of bools, ``ok`` is True
    when every key succeeded (for ``submit_batch_exists``: when the lookup
    answered, misses included) and ``error`` names the keys that failed
    and why. A key that cannot name a block (empty, a NUL, over 255 bytes
    of UTF-8) or a buffer that is not C-contiguous fails that key alone.
    Thread-safe: LMCache submits from its controller threads while its
    demultiplexing thread drains.
    """

    def __init__(self, dirs, namespace="lmcache", capacity_bytes=None,
                 max_capacity_gb=None, timeout_ms=-1, engine=None,
                 checksum=True, high_watermark=None, low_watermark=None):
        if engine == "io_uring":
            engine = "uring"
        kw = {"namespace": str(namespace),
              "capacity": _capacity(capacity_bytes, max_capacity_gb),
              "engine": engine, "checksum": bool(checksum)}
        if high_watermark is not None:
            kw["high_watermark"] = float(high_watermark)
        if low_watermark is not None:
            kw["low_watermark"] = float(low_watermark)
        self._timeout_ms = int(timeout_ms)
        self._tier = BlockTier(_dirs(dirs), **kw)
        self._fd = self._tier.fileno()
        self._lock = threading.Lock()
        self._next = 1
        self._batches = {}      # tier batch id -> _Batch
        self._held = {}         # ... past the deadline, I/O still running
        self._local = []        # completions decided without the tier
        self._closed = False

    # ------------------------------------------------------------ interface

    def event_fd(self):
        """The eventfd LMCache polls: readable when completions wait."""
        return self._fd

    def submit_batch_set(self, keys, memviews):
        """Queue stores of ``memviews[i]`` under ``keys[i]``; a future id."""
        return self._submit("set", keys, memviews)

    def submit_batch_get(self, keys, memviews):
        """Queue loads of ``keys[i]`` into ``memviews[i]``; a future id."""
        return self._submit("get", keys, memviews)

    def submit_batch_exists(self, keys):
        """Queue a presence check of each key; a future id."""
        return self._submit("exists", keys, None)

    def submit_batch_delete(self, keys):
        """Queue removals; a key that is not there counts as removed."""
        return self._submit("delete", keys, None)

    def drain_completions(self):
        """The batches finished since the last call; never blocks.

        A list of ``(future_id, ok, error, per_key)``; it also resets the
        eventfd, so that the poller sleeps until the next batch finishes.
        """
        out = []
        with self._lock:
            if self._closed:
                return out
            for bid, flags, res in self._tier.reap_flags():
                if flags & RELEASED:
                    b = self._held.pop(bid, None)
                    if b is not None:
                        out.append(self._completion(b))
                    continue
                b = self._batches.pop(bid, None)
                if b is None:
                    continue
                for slot, r in zip(b.slots, res):
                    b.results[slot] = r
                if flags & HELD:
                    self._held[bid] = b     # its I/O still uses buffers
                else:
                    out.append(self._completion(b))
            local, self._local = self._local, []
        return [self._completion(b) for b in local] + out

    def close(self):
        """Wait for the batches in flight and close the tier; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._batches.clear()
            self._held.clear()
            self._local = []
            tier, self._tier = self._tier, None
        tier.close()

    # ---------------------------------------------------------------- extras

    def stats(self):
        """The tier's counters (``swapio.BlockTier.stats()``)."""
        with self._lock:
            if self._closed:
                raise ValueError("swapio.lmcache: adapter is closed")
            return self._tier.stats()

    def __contains__(self, key):
        k = _key(key)
        with self._lock:
            if self._closed or isinstance(k, int):
                return False
            return k in self._tier

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -------------------------------------------------------------- internal

    def _submit(self, op, keys, bufs):
        keys = list(keys)
        if bufs is not None:
            bufs = list(bufs)
            if len(bufs) != len(keys):
                raise ValueError("swapio.lmcache: %d keys but %d buffers"
                                 % (len(keys), len(bufs)))
        with self._lock:
            if self._closed:
                raise ValueError("swapio.lmcache: adapter is closed")
            b = _Batch(self._next, op, len(keys))
            self._next += 1
            tkeys, tbufs = [], []
            for i, key in enumerate(keys):
                k = _key(key)
                if bufs is not None and not isinstance(k, int):
                    m = _buf(bufs[i], op == "get")
                    if isinstance(m, int):
                        k = m
                    else:
                        tbufs.append(m)
                if isinstance(k, int):
                    b.results[i] = k
                    continue
                tkeys.append(k)
                b.slots.append(i)
            if not tkeys:
                self._local.append(b)
                os.eventfd_write(self._fd, 1)
                return b.future
            if op == "set":
                bid = self._tier.submit_put(tkeys, tbufs, self._timeout_ms)
            elif op == "get":
                bid = self._tier.submit_get(tkeys, tbufs, self._timeout_ms)
            elif op == "exists":
                bid = self._tier.submit_exists(tkeys)
            else:
                bid = self._tier.submit_remove(tkeys)
            b.refs = tbufs
            self._batches[bid] = b
            return b.future

    @staticmethod
    def _completion(b):
        res = b.results
        per_key = [r == 0 for r in res]
        if b.op in ("exists", "delete"):
            # A miss answers a lookup; a key not there is removed.
            res = [0 if r == -_errno.ENOENT else r for r in res]
        if b.op == "delete":
            per_key = [r == 0 for r in res]
        ok = all(r == 0 for r in res)
        if b.op == "exists":
            ok = True   # LMCache reads per_key only when ok
        return (b.future, ok, _describe(res), per_key)
