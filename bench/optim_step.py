#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""One AdamW step with its state on disk: swapio.torch.AdamW against
in-memory torch.optim.AdamW and DeepSpeed's PipelinedOptimizerSwapper.

The model state is the fp32 weights of the demo's GPT (swapio._train,
about 60 M parameters by default), flattened into sub-groups of
--sub-group elements as ZeRO-Infinity swaps them (the last one is
smaller, of odd size). Every contender steps the same weights with the
same gradients:

  M  torch.optim.AdamW in memory (foreach=False, as on a CPU): the
     compute-only time; N is M again, the null line
  I  swapio.torch.AdamW.io_pass(): every group read and written back
     without the update, the I/O-only time
  S  swapio.torch.AdamW.step(): read ahead, update, write back, overlapped;
     the fp32 parameter is its own master copy, so only exp_avg and
     exp_avg_sq go to disk
  T  the same with bf16 parameters in memory and the fp32 master weights
     on disk beside the moments: the disk traffic of D (J is its I/O-only
     pass)
  D  DeepSpeed's PipelinedOptimizerSwapper (pipeline_read and
     pipeline_write on) over DeepSpeed's own async_io op, compiled by its
     builder, stepping torch.optim.AdamW one sub-group at a time as
     ZeRO-3 does: swap in (prefetching the next), step, swap out

Both offloaded optimizers get the same memory for their buffers
(--buffers sub-groups' worth of fp32 tensors) and the same disk. Each
round runs every contender once, in orders that cycle; reported are the
median time of each and the medians of per-round ratios with their
ranges: S / max(I, M) and T / max(J, M) (the target is at most 1.05),
S / D and T / D, and N / M. After the last round the weights and moments
of S and D are compared with M's, and T's master weights and moments with
an in-memory AdamW fed the same bf16 gradients, bit for bit. Everything
lies under --dir and is deleted.
"""
import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import types

from common import rotated, spread

CONTENDERS = "MNISDJT"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_world():
    import deepspeed.comm as dist
    import deepspeed.ops

    # One process needs no all-reduce: DeepSpeed would otherwise build
    # its shared-memory comm op first.
    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    for k, v in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"),
                 ("MASTER_ADDR", "127.0.0.1"),
                 ("MASTER_PORT", str(free_port()))):
        os.environ.setdefault(k, v)
    if not dist.is_initialized():
        dist.init_distributed(dist_backend="gloo", auto_mpi_discovery=False)


def model_state(a):
    """The GPT's weights as flat fp32 sub-groups, and one gradient each."""
    import torch
    from swapio._train import GPT

    torch.manual_seed(1)
    m = GPT(layers=a.layers, d=a.d, heads=a.d // 64)
    flat = torch.cat([p.detach().reshape(-1) for p in m.parameters()])
    del m
    groups = list(flat.split(a.sub_group))
    g = torch.Generator().manual_seed(2)
    grads = [torch.randn(x.numel(), generator=g) * 1e-2 for x in groups]
    return [x.clone() for x in groups], grads


def params_of(groups, tag, dtype=None):
    import torch
    ps = []
    for i, x in enumerate(groups):
        p = torch.nn.Parameter(x.to(dtype or x.dtype, copy=True))
        p.ds_id = "%s%d" % (tag, i)
        ps.append(p)
    return ps


class InMemory:
    def __init__(self, groups, grads, hyper):
        import torch
        self.ps = params_of(groups, "m")
        self.grads = grads
        self.moved = 0
        self.opt = torch.optim.AdamW(self.ps, foreach=False, **hyper)

    def step(self):
        for p, g in zip(self.ps, self.grads):
            p.grad = g
        self.opt.step()


class Swapio:
    def __init__(self, groups, grads, hyper, a, where, dtype=None):
        import swapio.torch as st
        self.ps = params_of(groups, "s", dtype)
        self.opt = st.AdamW(self.ps, store=where, budget=a.buffers *
                            a.sub_group * 4, prefetch=a.prefetch,
                            chunk_bytes=a.chunk_mib << 20, **hyper)
        for p, g in zip(self.ps, grads):
            p.grad = g.to(p.dtype)

    def step(self):
        self.opt.step()
        st = self.opt.stats
        self.moved = st["bytes_read"] + st["bytes_written"]

    def cold(self):
        """Drop the next step's groups read ahead at the end of this one.
        In training they are read during the forward and backward pass;
        here the next contender runs instead, so every step is measured
        cold and disturbs no other (called outside the timing)."""
        self.opt._drop_ahead()

    def io(self):
        self.opt.io_pass()

    def state(self, i):
        if i == 0:
            self.sd = self.opt.state_dict(full=True)["state"]
        s = self.sd[i]
        w = s["master"] if "master" in s else self.ps[i].data
        return w, s["exp_avg"], s["exp_avg_sq"]

    def close(self):
        self.opt.close()


class DeepSpeedSwapper:
    def __init__(self, groups, grads, hyper, a, where):
        import torch
        from deepspeed.runtime.swap_tensor import constants as C
        from deepspeed.runtime.swap_tensor.pipelined_optimizer_swapper \
            import PipelinedOptimizerSwapper

        self.ps = params_of(groups, "d")
        self.grads = grads
        self.opt = torch.optim.AdamW(self.ps, foreach=False, **hyper)
        aio = {C.AIO_BLOCK_SIZE: 1 << 20, C.AIO_QUEUE_DEPTH: 8,
               C.AIO_INTRA_OP_PARALLELISM: 1, C.AIO_SINGLE_SUBMIT: False,
               C.AIO_OVERLAP_EVENTS: True, C.AIO_USE_GDS: False}
        cfg = types.SimpleNamespace(buffer_count=a.buffers,
                                    pipeline_read=True, pipeline_write=True)
        self.sw = PipelinedOptimizerSwapper(
            swap_config=cfg, aio_config=aio, base_folder=where,
            optimizer=self.opt, largest_numel=max(p.numel() for p in
                                                  self.ps),
            device="cpu", dtype=torch.float32, timers=None)
        self.sw.initialize_parameters(parameters=self.ps,
                                      src_tensors=[p.data for p in self.ps])

    def step(self, update=True):
        ps = self.ps
        # Each sub-group's three fp32 tensors, read and written.
        self.moved = sum(p.numel() for p in ps) * 4 * 3 * 2
        for i, p in enumerate(ps):
            nxt = ps[i + 1] if i + 1 < len(ps) else None
            self.sw.swap_in_optimizer_state(p, async_parameter=nxt)
            if update:
                p.grad = self.grads[i]
                self.opt.step()
                p.grad = None
            self.sw.swap_out_optimizer_state(p, async_swap=nxt is not None)

    def state(self, i):
        p = self.ps[i]
        self.sw.swap_in_optimizer_state(p, async_parameter=None)
        out = [p.data.clone(), self.opt.state[p]["exp_avg"].clone(),
               self.opt.state[p]["exp_avg_sq"].clone()]
        self.sw.swap_out_optimizer_state(p, async_swap=False)
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default="/tmp",
                    help="where the state files go (default /tmp)")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--d", type=int, default=640,
                    help="model width (default 640: about 60 M parameters)")
    ap.add_argument("--sub-group", type=int, default=8_000_000,
                    help="elements per swapped sub-group (default 8e6)")
    ap.add_argument("--buffers", type=int, default=9,
                    help="sub-groups' worth of fp32 buffers each offloaded "
                    "optimizer may hold (default 9: DeepSpeed's pipelined "
                    "read and write with Adam's three tensors)")
    ap.add_argument("--prefetch", type=int, default=2,
                    help="swapio.torch.AdamW's prefetch (default 2)")
    ap.add_argument("--chunk-mib", type=int, default=0,
                    help="swapio.torch.AdamW's chunk_bytes in MiB (default "
                    "0: its own default)")
    ap.add_argument("--rounds", type=int, default=6)
    a = ap.parse_args()

    import torch
    import deepspeed
    import swapio

    torch.set_num_threads(os.cpu_count() or 1)
    init_world()
    from deepspeed.ops.op_builder import AsyncIOBuilder
    t = time.monotonic()
    AsyncIOBuilder().load(verbose=False)      # DeepSpeed's own op
    build_s = time.monotonic() - t
    groups, grads = model_state(a)
    n = sum(x.numel() for x in groups)
    hyper = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
    tmp = tempfile.mkdtemp(prefix="optim-step.", dir=a.dir)
    try:
        m = InMemory(groups, grads, hyper)
        # T's reference: fp32 AdamW from the bf16-rounded weights, fed the
        # bf16-rounded gradients (T's master starts from its parameters).
        m16 = InMemory([x.bfloat16().float() for x in groups],
                       [g.bfloat16().float() for g in grads], hyper)
        s = Swapio(groups, grads, hyper, a, os.path.join(tmp, "swapio"))
        t16 = Swapio(groups, grads, hyper, a, os.path.join(tmp, "bf16"),
                     torch.bfloat16)
        d = DeepSpeedSwapper(groups, grads, hyper, a,
                             os.path.join(tmp, "deepspeed"))
        print("swapio %s, DeepSpeed %s (its async_io op loaded in %.1f s), "
              "torch %s, %d threads" % (swapio.__version__,
                                        deepspeed.__version__, build_s,
                                        torch.__version__,
                                        torch.get_num_threads()))
        print("model state: %d fp32 parameters in %d sub-groups of <= %d; "
              "buffers: %d sub-groups = %.0f MB for each offloaded "
              "optimizer; %s" % (n, len(groups), a.sub_group, a.buffers,
                                 a.buffers * a.sub_group * 4 / 1e6, tmp))
        # The first step creates the state: not measured.
        for x in (m, m16, s, t16, d):
            x.step()
        s.cold()
        t16.cold()
        run = {"M": m.step, "N": m.step, "S": s.step, "D": d.step,
               "I": s.io, "T": t16.step, "J": t16.io}
        times = {k: [] for k in run}
        moved = {}
        for r in range(a.rounds):
            for who in rotated(CONTENDERS, r):
                t = time.perf_counter()
                run[who]()
                times[who].append(time.perf_counter() - t)
                if who in "ST":
                    (s if who == "S" else t16).cold()
            m16.step()
            sys.stderr.write("\rround %d/%d" % (r + 1, a.rounds))
        sys.stderr.write("\n")
        moved = {"S": s.moved, "T": t16.moved, "D": d.moved}
        # M stepped twice a round (M and N), the others once: bring them
        # level before comparing.
        for _ in range(a.rounds):
            for x in (s, t16, d, m16):
                x.step()
        steps = 1 + 2 * a.rounds
        T = {k: statistics.median(v) for k, v in times.items()}
        print("median time, s:  in-memory AdamW %.3f (null %.3f)" %
              (T["M"], T["N"]))
        for k, name in (("S", "swapio, fp32 params"),
                        ("T", "swapio, bf16 params + fp32 master"),
                        ("D", "DeepSpeed PipelinedOptimizerSwapper")):
            io = {"S": "I", "T": "J"}.get(k)
            print("  %-36s step %.3f%s; %.2f GB moved a step, %.2f GB/s" % (
                name, T[k], "" if io is None else
                ", I/O only %.3f" % T[io], moved[k] / 1e9,
                moved[k] / 1e9 / T[k]))
        M, N, I, S, D, J, T16 = (times[k] for k in "MNISDJT")
        print("S / max(I, M)      %s   (target <= 1.05)" %
              spread([s_ / max(i_, m_) for s_, i_, m_ in zip(S, I, M)], 3))
        print("T / max(J, M)      %s   (target <= 1.05)" %
              spread([t_ / max(j_, m_) for t_, j_, m_ in zip(T16, J, M)], 3))
        print("S / D              %s" %
              spread([x / y for x, y in zip(S, D)], 3))
        print("T / D              %s   (the same disk traffic)" %
              spread([x / y for x, y in zip(T16, D)], 3))
        print("N / M (null)       %s" %
              spread([x / y for x, y in zip(N, M)], 3))
        bad = []
        for i in range(len(groups)):
            for name, who, ref in (("swapio", s, m), ("DeepSpeed", d, m),
                                   ("swapio bf16", t16, m16)):
                p = ref.ps[i]
                want = (p.data, ref.opt.state[p]["exp_avg"],
                        ref.opt.state[p]["exp_avg_sq"])
                got = who.state(i)
                if not all(torch.equal(x, y) for x, y in zip(got, want)):
                    bad.append("%s group %d" % (name, i))
        s.close()
        t16.close()
        if bad:
            sys.exit("optim-step: state differs from in-memory AdamW after "
                     "%d steps: %s" % (steps, ", ".join(bad)))
        print("after %d steps, swapio's and DeepSpeed's weights and moments "
              "equal in-memory AdamW's bit for bit (bf16: the fp32 master "
              "weights and moments)" % steps)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
