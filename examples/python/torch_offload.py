#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Offload torch tensors to a swapio store and bring them back.

    python3 torch_offload.py [--dir DIR] [--layers N] [--mib M]

A stand-in for a model's optimizer state: N layers (default 8) of M MiB
(default 16) bf16 and fp32 tensors are put into a store asynchronously,
dropped from memory, then fetched into pinned tensors (new_cpu_locked
memory, as DeepSpeed uses) and compared with copies kept aside.
"""
import argparse
import tempfile

import swapio
import torch


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", default=None)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--mib", type=int, default=16)
    a = p.parse_args()
    torch.manual_seed(0)
    n = a.mib << 18                       # fp32 elements in M MiB
    state = {}
    for i in range(a.layers):
        state[f"layer{i}.exp_avg"] = torch.randn(n)
        state[f"layer{i}.weight_bf16"] = torch.randn(n).to(torch.bfloat16)
    kept = {k: v.clone() for k, v in state.items()}

    with tempfile.TemporaryDirectory(dir=a.dir) as d, \
            swapio.Handle() as h, swapio.Store(d, h) as store:
        # Every put in flight at once; each takes effect when waited for.
        ops = [store.put_async(k, v) for k, v in state.items()]
        for op in ops:
            op.wait()
        store.sync()                      # durable, even across power loss
        shapes = {k: (v.shape, v.dtype) for k, v in state.items()}
        state.clear()                     # the memory is free now
        print(f"{len(store)} tensors, {store.info()['value_bytes'] >> 20} "
              f"MiB in the store ({h.engine})")

        for k, (shape, dtype) in shapes.items():
            t = swapio.empty_torch(shape, dtype)   # pinned, aligned
            store.get(k, t)               # checksum verified
            state[k] = t

    bad = [k for k in kept if not torch.equal(kept[k], state[k])]
    if bad:
        raise SystemExit(f"torch_offload: differ after the round trip: {bad}")
    print("every tensor came back bit for bit")


if __name__ == "__main__":
    main()
