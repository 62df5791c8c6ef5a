"""swapio.BlockTier: batches of KV-cache blocks by key over the store.

The Python face of the block tier of swapio.h (``swapio_tier_*``): one
object per namespace, whose blocks live in ``<dir>/<namespace>/`` on each
drive, moved by a thread of the tier's own. Every ``submit_*`` only queues
and returns the batch's id; ``reap()`` hands back finished batches and
never blocks; ``fileno()`` is an eventfd for event loops. Engines' adapters
(``swapio.vllm``, ``swapio.lmcache``) sit on it; docs/INFERENCE.md says
what it guarantees.
"""

import errno as _errno

from . import _swapio

PUT, GET, EXISTS, REMOVE = 1, 2, 3, 4

#: Flags of a finished batch (the second item of each reap() record).
EXPIRED, HELD, RELEASED = 1, 2, 4


def _pct(x, name):
    if not 0.0 < x <= 1.0:
        raise ValueError("%s: a fraction in (0, 1], not %r" % (name, x))
    return max(1, int(round(x * 100)))


class BlockTier:
    """Blocks by key, in batches, from and into the caller's own memory.

    *dirs*: one directory (str) or a list, one per drive (striped).
    *namespace*: 1 to 64 of ``[A-Za-z0-9._-]``, not starting with ``.``;
    two engines (models, KV layouts) never see each other's blocks.
    *capacity*: bytes the blocks may take on disk (0: until the disk is
    full); a put above *high_watermark* of it first evicts the least
    recently used blocks down to *low_watermark*. *checksum*: XXH3 per
    block; a block that fails it is a miss and is removed. *engine*:
    "uring", "aio", "threads" or None (the best that runs).
    *max_inflight*: blocks at the drives at once (0: 128).
    """

    def __init__(self, dirs, *, namespace, capacity=0, high_watermark=0.95,
                 low_watermark=0.90, engine=None, checksum=True,
                 max_inflight=0, stripe_unit=0):
        if low_watermark > high_watermark:
            raise ValueError("low_watermark above high_watermark")
        many = isinstance(dirs, (list, tuple))
        paths = list(dirs) if many else [dirs]
        if not paths:
            raise ValueError("dirs: at least one directory")
        kw = {} if engine is None else {"engine": engine}
        self._handles = [_swapio.Handle(**kw) for _ in paths]
        try:
            self._t = _swapio._Tier(
                paths if many else paths[0],
                self._handles if many else self._handles[0],
                namespace, capacity=capacity,
                high_pct=_pct(high_watermark, "high_watermark"),
                low_pct=_pct(low_watermark, "low_watermark"),
                checksum=checksum, max_inflight=max_inflight,
                stripe_unit=stripe_unit)
        except BaseException:
            for h in self._handles:
                h.close()
            raise
        self.namespace = namespace
        self.dirs = paths

    def submit_put(self, keys, bufs, timeout_ms=-1):
        """Queue storing each buffer under its key; returns the batch id."""
        return self._t.submit(PUT, keys, bufs, timeout_ms)

    def submit_get(self, keys, bufs, timeout_ms=-1):
        """Queue loading each key into its (writable) buffer, whose size
        must be the block's; returns the batch id."""
        return self._t.submit(GET, keys, bufs, timeout_ms)

    def submit_exists(self, keys, timeout_ms=-1):
        """Queue asking which keys hold a block; returns the batch id."""
        return self._t.submit(EXISTS, keys, None, timeout_ms)

    def submit_remove(self, keys, timeout_ms=-1):
        """Queue dropping the keys' blocks; returns the batch id."""
        return self._t.submit(REMOVE, keys, None, timeout_ms)

    def reap(self):
        """``[(batch id, [result per key]), ...]`` of the batches finished
        since the last call, in the order they finished; never blocks.

        A result is 0 (stored, loaded and verified, present, removed) or
        a negative errno: -ENOENT (a miss), -EBADMSG (damaged: a miss, and
        dropped), -ETIMEDOUT (the batch's deadline came first), -ENOSPC,
        -EMSGSIZE (a get's buffer is not the block's size), -EIO, ...
        """
        return [(bid, res) for bid, _, res in self._t.reap()
                if res is not None]

    def reap_flags(self):
        """As :meth:`reap`, with each batch's flags: ``(batch id, flags,
        results)``. A batch past its deadline whose I/O is still at the
        drives comes with EXPIRED | HELD: its buffers are still in use
        (a get may still write the block's own bytes there) until a
        second record ``(batch id, RELEASED, None)`` for it."""
        return self._t.reap()

    def wait(self, timeout_ms=-1):
        """Block until a batch can be reaped (True) or *timeout_ms* pass
        (False); -1: no limit. Reaps nothing."""
        return self._t.wait(timeout_ms)

    def fileno(self):
        """The eventfd, readable while finished batches wait for reap()."""
        return self._t.fileno()

    def __contains__(self, key):
        return key in self._t

    def stats(self):
        """Counters: blocks, disk_bytes, capacity, puts, hits, misses,
        bad_checksums, evicted, expired, failed, read_bytes,
        written_bytes, inflight, queued."""
        return self._t.info()

    @property
    def closed(self):
        return self._t.closed

    def close(self):
        """Wait for every batch in flight, then close (idempotent)."""
        self._t.close()
        for h in self._handles:
            h.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def strerror(result):
    """A reap() result as text: "ok", or the errno's name."""
    if result == 0:
        return "ok"
    return _errno.errorcode.get(-result, str(result))
