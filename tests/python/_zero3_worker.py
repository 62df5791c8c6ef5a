"""One ZeRO-3 training run of a tiny GPT through deepspeed.initialize, in a
process of its own (test_zero3_nvme.py runs it): DeepSpeed's global state
and torch.distributed's init stay out of the pytest process.

    python _zero3_worker.py build OUT.json
        loads (JIT-builds on first use) DeepSpeed's cpu_adam op;
    python _zero3_worker.py train ARGS.json
        ARGS: {"config": ds_config, "swapio_engine": the engine
               swapio.deepspeed.install() is given (None: not installed),
               "model": sizes, "steps": N,
               "out": path of the torch.save'd result}.

DS_ACCELERATOR=cpu, TORCH_EXTENSIONS_DIR and the torch.distributed
variables (RANK, WORLD_SIZE, ...) come from the environment."""

import json
import sys
import time
import warnings


def _deepspeed():
    import deepspeed
    import deepspeed.ops

    # One process needs no all-reduce: keep DeepSpeed's CPU communication
    # backend from JIT-building its shared-memory op (ninja is present).
    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    return deepspeed


def _cpu_adam():
    """DeepSpeed's cpu_adam op: the one already built in
    $TORCH_EXTENSIONS_DIR/cpu_adam if it loads, else DeepSpeed's JIT build
    into that folder. Loaded here rather than by torch's JIT, which would
    rebuild whenever the checkout (so the venv, so DeepSpeed's sources)
    has moved: the folder's name already says what the op was built for."""
    import importlib.util
    import os

    import torch  # noqa: F401 (the op links against torch's libraries)

    _deepspeed()
    from deepspeed.ops.op_builder import CPUAdamBuilder
    from deepspeed.ops.op_builder.builder import OpBuilder

    name = CPUAdamBuilder.NAME
    so = os.path.join(os.environ["TORCH_EXTENSIONS_DIR"], name, name + ".so")
    if name not in OpBuilder._loaded_ops and os.path.isfile(so):
        try:
            spec = importlib.util.spec_from_file_location(name, so)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            OpBuilder._loaded_ops[name] = mod
        except ImportError as e:
            # A build cut short: build it again.
            print(f"rebuilding {so}: {e}", file=sys.stderr)
            os.unlink(so)
    return CPUAdamBuilder().load()


def build(out):
    t = time.monotonic()
    mod = _cpu_adam()
    with open(out, "w") as f:
        json.dump({"seconds": time.monotonic() - t, "file": mod.__file__}, f)


def _model(torch, vocab, hidden, heads, layers, ctx, ff):
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(hidden)
            self.qkv = nn.Linear(hidden, 3 * hidden)
            self.proj = nn.Linear(hidden, hidden)
            self.ln2 = nn.LayerNorm(hidden)
            self.fc = nn.Linear(hidden, ff)
            self.out = nn.Linear(ff, hidden)

        def forward(self, x):
            b, t, h = x.shape
            q, k, v = (y.view(b, t, heads, h // heads).transpose(1, 2)
                       for y in self.qkv(self.ln1(x)).split(h, dim=2))
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(a.transpose(1, 2).reshape(b, t, h))
            return x + self.out(F.gelu(self.fc(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(vocab, hidden)
            self.pos = nn.Embedding(ctx, hidden)
            self.blocks = nn.ModuleList(Block() for _ in range(layers))
            self.ln = nn.LayerNorm(hidden)
            self.head = nn.Linear(hidden, vocab, bias=False)

        def forward(self, idx, tgt):
            x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
            for blk in self.blocks:
                x = blk(x)
            logits = self.head(self.ln(x))
            return F.cross_entropy(logits.view(-1, vocab), tgt.view(-1))

    return GPT()


def _gather(deepspeed, module):
    with deepspeed.zero.GatheredParameters(list(module.parameters())):
        return {n: p.detach().clone() for n, p in module.named_parameters()}


def train(args):
    import torch

    deepspeed = _deepspeed()
    _cpu_adam()
    handles = None
    if args["swapio_engine"]:
        import swapio.deepspeed as sd

        sd.install(engine=args["swapio_engine"])
        handles = sd.aio_handle
    m = args["model"]
    cfg = args["config"]
    deepspeed.init_distributed(dist_backend="gloo", auto_mpi_discovery=False)
    torch.manual_seed(1234)
    # Built under zero.Init with the run's own config: without it, DeepSpeed
    # converts the model itself with a dtype of its choosing (docs/PYTHON.md).
    with deepspeed.zero.Init(config_dict_or_path=cfg):
        model = _model(torch, m["vocab"], m["hidden"], m["heads"],
                       m["layers"], m["ctx"], m["ff"])
    engine, _, _, _ = deepspeed.initialize(
        model=model, model_parameters=model.parameters(), config=cfg)
    initial = _gather(deepspeed, engine.module)
    g = torch.Generator().manual_seed(99)
    batch = cfg["train_micro_batch_size_per_gpu"]
    losses = []
    for _ in range(args["steps"]):
        idx = torch.randint(0, m["vocab"], (batch, m["ctx"]), generator=g)
        tgt = torch.randint(0, m["vocab"], (batch, m["ctx"]), generator=g)
        loss = engine(idx, tgt)
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    final = _gather(deepspeed, engine.module)
    res = {"losses": losses, "initial": initial, "final": final,
           "ds_id": {n: p.ds_id for n, p in engine.module.named_parameters()},
           "dtypes": sorted({str(p.dtype)
                             for p in engine.module.parameters()})}
    if handles is not None:
        import gc

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hs = [o for o in gc.get_objects() if type(o) is handles]
        res["handles"] = [{"engine": h.engine, "stats": h._h.stats()}
                          for h in hs]
    torch.save(res, args["out"])


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2])
    else:
        with open(sys.argv[2]) as f:
            train(json.load(f))
