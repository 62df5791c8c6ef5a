"""asyncio support: ``await op`` on the handle's eventfd, no thread per op.

Each handle has one hub. A loop with ops awaiting on that handle keeps a
reader on the handle's eventfd; when it fires, the hub resets the eventfd
and resolves the future of every op that has completed, whatever loop it
belongs to (several loops on several threads may share one handle, and any
one of them may be the one whose reader sees the signal). A future whose
loop was closed is dropped unresolved: nothing can run it any more, and
the other loops' futures go on being resolved.
"""

import asyncio
import os
import threading
import weakref

_hubs = weakref.WeakKeyDictionary()
_hubs_lock = threading.Lock()


class _Hub:
    def __init__(self, handle):
        self.fd = handle.fileno()
        self.lock = threading.Lock()
        self.waiting = []       # [op, future]
        self.loops = set()      # loops with a reader on self.fd

    def add(self, op, fut):
        loop = fut.get_loop()
        with self.lock:
            self.waiting.append((op, fut))
            if loop not in self.loops:
                self.loops.add(loop)
                loop.add_reader(self.fd, self._ready, loop)
        # It may have completed before the reader was there to see it.
        if op.done():
            self._ready(loop)

    def _ready(self, loop):
        try:
            os.read(self.fd, 8)
        except (BlockingIOError, InterruptedError):
            pass
        with self.lock:
            keep = []
            for op, fut in self.waiting:
                owner = fut.get_loop()
                if fut.done() or owner.is_closed():
                    continue
                if op.done():
                    try:
                        owner.call_soon_threadsafe(_resolve, fut)
                    except RuntimeError:
                        pass    # closed meanwhile: nobody to resolve
                else:
                    keep.append((op, fut))
            self.waiting = keep
            self.loops = {lp for lp in self.loops if not lp.is_closed()}
            if not any(f.get_loop() is loop for _, f in keep):
                self.loops.discard(loop)
                loop.remove_reader(self.fd)


def _resolve(fut):
    if not fut.done():
        fut.set_result(None)


def _hub(handle):
    with _hubs_lock:
        hub = _hubs.get(handle)
        if hub is None:
            hub = _hubs[handle] = _Hub(handle)
        return hub


async def _await(op):
    if not op.done():
        loop = asyncio.get_running_loop()
        try:
            hub = _hub(op.handle)
        except ValueError:
            # The handle was closed before its first await: no eventfd to
            # watch; a worker thread waits for the op instead.
            await loop.run_in_executor(None, op.wait)
            return op.wait(0)
        fut = loop.create_future()
        hub.add(op, fut)
        await fut
    return op.wait(0)


def await_op(op):
    """The iterator behind ``await op``."""
    return _await(op).__await__()
