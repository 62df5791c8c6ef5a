"""ZeRO-style sharded AdamW over torch.distributed, each shard's state in swapio.

Every rank holds the whole model (its parameters and gradients), as data
parallel training does, but only 1/world of the optimizer: the flat fp32
parameter vector is cut into one slice per rank, and rank r runs
swapio.torch.AdamW over its slice alone, with that slice's moments in a
swapio store of its own, striped over the drives given (``--dirs A,B``:
``A/rank{r}``, ``B/rank{r}``, one Handle per drive). A step:

1. forward and backward on the rank's own batch;
2. ``all_reduce`` of the flat gradient (then / world): torch.distributed;
3. the rank's AdamW steps its slice: swapio streams the moments from the
   drives and back, overlapped;
4. ``all_gather`` of the updated slices into every rank's model.

torch.distributed moves gradients and parameters between ranks (gloo on
CPU, NCCL on GPUs); swapio moves each rank's optimizer state between
memory and its drives. With one process per GPU on a node, every rank's
handles take their share of the node's queue depth
(``SWAPIO_SHARE_NODE=1``, ``LOCAL_WORLD_SIZE`` from torchrun).

Checkpoint and restart: ``--stop-at K`` runs K steps, then checkpoints and
exits, as a preempted job would: every rank syncs its store and writes its
AdamW ``state_dict`` (the step counts and where the moments are: the
moments stay in the store) and its slice; rank 0 writes the model and,
after a barrier, ``manifest.json`` (atomically, last). A run started with
``--resume`` reads the manifest, reopens each rank's store and continues;
its losses equal those of a run that never stopped, bit for bit. A
checkpoint is a consistent cut only while nothing has stepped after it:
the store is updated in place, so resume from the checkpoint of the run's
last (planned) stop, not from one older than steps taken since.

Run it:

    torchrun --nproc_per_node=4 examples/zero_shard/zero_shard.py \\
        --dirs /nvme0/zs,/nvme1/zs --ckpt /nvme0/zs/ckpt --steps 20
    python examples/zero_shard/zero_shard.py --spawn 2 ...   # no torchrun

It prints one JSON line per step from rank 0 (``{"step": i, "loss": x}``)
and a last line with every loss of the run.
"""

import argparse
import json
import os
import sys
import tempfile

import torch
import torch.distributed as dist

import swapio
import swapio.torch as st


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dirs", required=True,
                   help="comma-separated drive directories; each rank "
                        "stores under DIR/rank{r} on every one")
    p.add_argument("--ckpt", required=True, help="checkpoint directory")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--stop-at", type=int, default=0,
                   help="checkpoint after this many steps and exit")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --ckpt")
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--stripe-unit", type=int, default=256 << 10)
    p.add_argument("--backend", default="gloo")
    p.add_argument("--spawn", type=int, default=0,
                   help="start this many ranks here (torch.multiprocessing)"
                        " instead of under torchrun")
    return p.parse_args(argv)


def model_for(width):
    torch.manual_seed(1234)  # the same model on every rank
    return torch.nn.Sequential(
        torch.nn.Linear(64, width), torch.nn.GELU(),
        torch.nn.Linear(width, width), torch.nn.GELU(),
        torch.nn.Linear(width, 8))


def batch(step, rank, n):
    """Rank @rank's batch of step @step: from those two alone, so a
    resumed run sees the very batches the uninterrupted one saw."""
    g = torch.Generator().manual_seed(step * 1000 + rank)
    x = torch.randn(n, 64, generator=g)
    y = torch.sin(x[:, :8] * 3) + x[:, 8:16] ** 2
    return x, y


class Shard:
    """This rank's slice of the flat parameters, and its AdamW on swapio."""

    def __init__(self, model, rank, world, dirs, lr, unit):
        self.params = list(model.parameters())
        n = sum(p.numel() for p in self.params)
        self.per = (n + world - 1) // world
        self.n, self.rank, self.world = n, rank, world
        lo = min(rank * self.per, n)
        self.lo, self.hi = lo, min(lo + self.per, n)
        flat = self.flat(p.data for p in self.params)
        self.slice = torch.nn.Parameter(flat[self.lo:self.hi].clone())
        self.handles = [swapio.Handle() for _ in dirs]
        mine = [os.path.join(d, f"rank{rank}") for d in dirs]
        self.store = swapio.Store(mine, self.handles, stripe_unit=unit)
        self.opt = st.AdamW([self.slice], lr=lr, store=self.store,
                            budget=4 << 20)

    def flat(self, tensors):
        v = torch.cat([t.reshape(-1) for t in tensors])
        return torch.nn.functional.pad(v, (0, self.per * self.world -
                                           self.n))

    def step(self):
        g = self.flat(p.grad for p in self.params)
        dist.all_reduce(g)
        g /= self.world
        self.slice.grad = g[self.lo:self.hi].clone()
        self.opt.step()
        out = [torch.empty(self.per) for _ in range(self.world)]
        mine = torch.nn.functional.pad(self.slice.data,
                                       (0, self.per - self.slice.numel()))
        dist.all_gather(out, mine)
        full = torch.cat(out)[:self.n]
        off = 0
        with torch.no_grad():
            for p in self.params:
                p.copy_(full[off:off + p.numel()].view_as(p))
                off += p.numel()

    def close(self):
        self.opt.close()
        self.store.close()
        for h in self.handles:
            h.close()


def save(args, rank, world, model, shard, step, losses):
    """Every rank's store synced and its state written; the manifest
    last, by rank 0, once all are done."""
    os.makedirs(args.ckpt, exist_ok=True)
    torch.save({"opt": shard.opt.state_dict(),  # syncs the store
                "slice": shard.slice.data.clone()},
               os.path.join(args.ckpt, f"rank{rank}.pt"))
    if rank == 0:
        torch.save(model.state_dict(), os.path.join(args.ckpt, "model.pt"))
    dist.barrier()
    if rank == 0:
        man = {"version": 1, "step": step, "world": world,
               "dirs": args.dirs.split(","), "losses": losses,
               "files": ["model.pt"] + [f"rank{r}.pt"
                                        for r in range(world)]}
        tmp = os.path.join(args.ckpt, "manifest.json.tmp")
        with open(tmp, "w") as f:
            json.dump(man, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(args.ckpt, "manifest.json"))
    dist.barrier()


def load(args, rank, world, model, shard):
    with open(os.path.join(args.ckpt, "manifest.json")) as f:
        man = json.load(f)
    if man["world"] != world or man["dirs"] != args.dirs.split(","):
        raise SystemExit(f"checkpoint of {man['world']} ranks over "
                         f"{man['dirs']}: resume with the same")
    model.load_state_dict(torch.load(os.path.join(args.ckpt, "model.pt")))
    mine = torch.load(os.path.join(args.ckpt, f"rank{rank}.pt"))
    with torch.no_grad():
        shard.slice.copy_(mine["slice"])
    shard.opt.load_state_dict(mine["opt"])
    return man["step"], man["losses"]


def run(rank, world, args):
    torch.set_num_threads(1)
    dirs = args.dirs.split(",")
    model = model_for(args.width)
    shard = Shard(model, rank, world, dirs, args.lr, args.stripe_unit)
    start, losses = 0, []
    if args.resume:
        start, losses = load(args, rank, world, model, shard)
    end = args.stop_at if args.stop_at else args.steps
    for step in range(start, end):
        x, y = batch(step, rank, args.batch)
        model.zero_grad(set_to_none=False)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        shard.step()
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        losses.append((mean / world).item())
        if rank == 0:
            print(json.dumps({"step": step, "loss": losses[-1]}),
                  flush=True)
    if args.stop_at:
        save(args, rank, world, model, shard, end, losses)
    if rank == 0:
        print(json.dumps({"losses": losses, "world": world,
                          "stopped_at": args.stop_at or None}), flush=True)
    shard.close()


def _spawned(rank, world, args, init):
    os.environ["LOCAL_WORLD_SIZE"] = str(world)
    os.environ["LOCAL_RANK"] = str(rank)
    dist.init_process_group(args.backend, init_method=init, rank=rank,
                            world_size=world)
    try:
        run(rank, world, args)
    finally:
        dist.destroy_process_group()
    # A rank that finished leaves without the interpreter's teardown: in
    # it, gloo's worker threads now and then abort the process
    # ("terminate called without an active exception", pytorch/pytorch
    # #190489) after all the work is done and the shard is closed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(argv=None):
    args = parse(argv)
    os.environ.setdefault("SWAPIO_SHARE_NODE", "1")
    if args.spawn:
        fd, path = tempfile.mkstemp(prefix="zero-shard-init-")
        os.close(fd)
        os.unlink(path)  # the file store creates it
        torch.multiprocessing.spawn(_spawned, args=(args.spawn, args,
                                                    f"file://{path}"),
                                    nprocs=args.spawn)
        return 0
    dist.init_process_group(args.backend)
    try:
        run(dist.get_rank(), dist.get_world_size(), args)
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
