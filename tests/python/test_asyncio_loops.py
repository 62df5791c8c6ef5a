"""asyncio: a loop closed with an ``await op`` pending does not stall the
handle's other loops."""

import asyncio
import gc
import threading
import time
import warnings

import numpy as np

import swapio


def _pending_in_closed_loop(op):
    """Await *op* in a loop, then close the loop with the await pending."""
    loop = asyncio.new_event_loop()

    async def waiter():
        await op

    task = loop.create_task(waiter())
    loop.run_until_complete(asyncio.sleep(0.05))
    assert not task.done()
    loop.close()
    return task


def test_closed_loop_does_not_hang_others(monkeypatch, engine, path):
    monkeypatch.setenv("SWAPIO_FAULT", "delay_ms=300")
    data = np.random.default_rng(5).integers(0, 256, 8192, dtype=np.uint8)
    with swapio.Handle(engine=engine) as h, h.open(path, "w+") as f:
        stale = f.write_async(data, 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            task = _pending_in_closed_loop(stale)
        time.sleep(0.4)                 # the stale op completes meanwhile

        async def main():
            out = np.zeros_like(data)
            n = await asyncio.wait_for(f.read_async(out, 0), 10)
            return n, out

        # In this thread's new loop, and in a loop on another thread.
        n, out = asyncio.run(main())
        assert n == data.nbytes and np.array_equal(out, data)
        got = []
        t = threading.Thread(target=lambda: got.append(asyncio.run(main())))
        t.start()
        t.join()
        assert got[0][0] == data.nbytes
        assert np.array_equal(got[0][1], data)
        assert stale.wait() == data.nbytes
    del task
    gc.collect()


def test_await_after_handle_closed(path):
    h = swapio.Handle()
    f = h.open(path, "w+")
    op = f.write_async(bytes(1 << 20), 0)
    f.close()
    h.close()

    async def main():
        return await op

    assert asyncio.run(main()) == 1 << 20
