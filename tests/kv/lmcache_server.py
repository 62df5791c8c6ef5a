"""LMCache's multiprocess cache server (lmcache 0.5.6), run for tests/kv.

    python lmcache_server.py --stats-out FILE <the server's own arguments>

Parses the arguments and starts the server as ``python -m
lmcache.v1.multiprocess.server`` does, prints READY once it serves, and on
SIGTERM or SIGINT writes the counters of every swapio.lmcache adapter the
server loaded (``SwapioL2Adapter.stats()``, one dict per adapter, as a JSON
list) to FILE, then closes the server, which closes the adapters.
"""

import json
import os
import signal
import sys
import threading


def _swapio_adapters(engine):
    from swapio.lmcache import SwapioL2Adapter

    found = []
    for _desc, adapter in engine.storage_manager.l2_adapters():
        seen = set()
        todo = [adapter]
        while todo:
            a = todo.pop()
            if a is None or id(a) in seen:
                continue
            seen.add(id(a))
            if isinstance(a, SwapioL2Adapter):
                found.append(a)
                continue
            # NativeConnectorL2Adapter keeps the plugin as _client; a
            # reconfigurable wrapper keeps its adapter as inner_adapter.
            todo += [getattr(a, "_client", None),
                     getattr(a, "inner_adapter", None)]
    return found


def main():
    argv = sys.argv[1:]
    i = argv.index("--stats-out")
    stats_out = argv[i + 1]
    del argv[i:i + 2]

    from lmcache.v1.multiprocess import server as srv
    from lmcache.v1.mp_observability.event_bus import get_event_bus

    sys.argv = [srv.__file__] + argv
    args = srv.parse_args()
    server, engine = srv.run_cache_server(
        mp_config=srv.parse_args_to_mp_server_config(args),
        storage_manager_config=srv.parse_args_to_config(args),
        obs_config=srv.parse_args_to_observability_config(args),
        coordinator_config=srv.parse_args_to_coordinator_config(args),
        return_engine=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("READY", flush=True)
    while not stop.wait(0.2):
        pass

    stats = [a.stats() for a in _swapio_adapters(engine)]
    tmp = stats_out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(stats, f)
    os.rename(tmp, stats_out)
    get_event_bus().stop()
    server.close()
    engine.close()
    srv.shutdown_gc_monitor()
    print("CLOSED", flush=True)


if __name__ == "__main__":
    main()
