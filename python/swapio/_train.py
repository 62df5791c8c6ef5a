"""The main job: train a small GPT on this CPU with AdamW's state on disk.

``python -m swapio._train [--help]``: a byte-level GPT-style transformer
(plain torch, defined here; about 60 M parameters by default) learns a
corpus made from the text files of a directory (the repository's own
sources by default; a generated grammar if there are too few), with its
optimizer state in a swapio store through :class:`swapio.torch.AdamW`.
It prints a progress bar (stderr), the loss curve, the step time split
into forward/backward, optimizer compute and waiting for I/O, the I/O-only
time of a pass and the overlap efficiency, GB/s, peak RSS against the
in-memory optimizer's (a short run of torch.optim.AdamW in a subprocess),
and whether the first steps' losses equal the in-memory run's bit for bit.
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

EXTS = (".c", ".h", ".md", ".py", ".pyi", ".sh", ".txt", ".toml", ".cmake")


class Block(torch.nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(d)
        self.qkv = torch.nn.Linear(d, 3 * d)
        self.proj = torch.nn.Linear(d, d)
        self.ln2 = torch.nn.LayerNorm(d)
        self.fc = torch.nn.Linear(d, 4 * d)
        self.out = torch.nn.Linear(4 * d, d)
        self.heads = heads

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2)
                   for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(torch.nn.Module):
    """A byte-level GPT: token and position embeddings, pre-norm blocks,
    a tied output head."""

    def __init__(self, layers=12, d=640, heads=10, ctx=128, vocab=256):
        super().__init__()
        self.tok = torch.nn.Embedding(vocab, d)
        self.pos = torch.nn.Embedding(ctx, d)
        self.blocks = torch.nn.ModuleList(Block(d, heads)
                                          for _ in range(layers))
        self.ln = torch.nn.LayerNorm(d)
        for mod in self.modules():
            if isinstance(mod, (torch.nn.Linear, torch.nn.Embedding)):
                torch.nn.init.normal_(mod.weight, std=0.02)
            if isinstance(mod, torch.nn.Linear):
                torch.nn.init.zeros_(mod.bias)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t))
        for b in self.blocks:
            x = b(x)
        return self.ln(x) @ self.tok.weight.t()


def corpus(root, min_bytes=200_000):
    """The bytes of the text files under *root*, sorted by path; a
    generated grammar (deterministic) when there are too few."""
    data = bytearray()
    if root and os.path.isdir(root):
        paths = []
        for d, dirs, files in os.walk(root):
            dirs[:] = sorted(x for x in dirs if not x.startswith(".")
                             and not x.startswith("build"))
            paths += [os.path.join(d, f) for f in files if f.endswith(EXTS)]
        for p in sorted(paths):
            try:
                with open(p, "rb") as f:
                    data += f.read()
            except OSError:
                pass
    source = f"text files under {root}"
    if len(data) < min_bytes:
        g = torch.Generator().manual_seed(1)
        nouns = ["tensor", "buffer", "store", "key", "group", "disk", "page"]
        verbs = ["reads", "writes", "moves", "checks", "pins", "streams"]
        data = bytearray()
        while len(data) < min_bytes:
            i = torch.randint(0, 1 << 30, (4,), generator=g).tolist()
            data += (f"the {nouns[i[0] % 7]} {verbs[i[1] % 6]} the "
                     f"{nouns[i[2] % 7]} {i[3] % 100}.\n").encode()
        source = "a generated grammar"
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).long(), source


def batches(data, batch, ctx, step):
    g = torch.Generator().manual_seed(step)
    ix = torch.randint(0, len(data) - ctx - 1, (batch,), generator=g)
    x = torch.stack([data[i:i + ctx] for i in ix.tolist()])
    y = torch.stack([data[i + 1:i + ctx + 1] for i in ix.tolist()])
    return x, y


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def build(a):
    torch.manual_seed(a.seed)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[a.dtype]
    m = GPT(a.layers, a.d_model, a.heads, a.ctx).to(dtype)
    return m, dtype


def loss_of(m, x, y):
    logits = m(x).float()
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))


def run_memory(a, data):
    """The in-memory reference: torch.optim.AdamW, a few steps."""
    m, _ = build(a)
    opt = torch.optim.AdamW(m.parameters(), lr=a.lr, foreach=False)
    losses = []
    for s in range(a.steps):
        x, y = batches(data, a.batch, a.ctx, s)
        opt.zero_grad()
        loss = loss_of(m, x, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"losses": losses, "peak_rss": peak_rss()}


def bar(step, total, loss, dt, out=sys.stderr):
    if not out.isatty() and step not in (1, total) and step % 10:
        return
    w = 30
    n = int(w * step / max(total, 1))
    out.write(f"\r  [{'#' * n}{'.' * (w - n)}] step {step}/{total} "
              f"loss {loss:.3f} {dt:.2f} s/step ")
    if step == total or not out.isatty():
        out.write("\n")
    out.flush()


def run_offload(a, data):
    import swapio.torch as st

    m, dtype = build(a)
    nparams = sum(p.numel() for p in m.parameters())
    opt = st.AdamW(m.parameters(), lr=a.lr, store=a.store,
                   budget=a.budget, prefetch=a.prefetch, engine=a.engine)
    rec = []
    losses = []
    t_begin = time.perf_counter()
    total = a.steps
    try:
        s = 0
        while True:
            if a.steps and s >= a.steps:
                break
            if not a.steps and time.perf_counter() - t_begin >= a.time:
                break
            t0 = time.perf_counter()
            x, y = batches(data, a.batch, a.ctx, s)
            opt.zero_grad()
            loss = loss_of(m, x, y)
            loss.backward()
            t1 = time.perf_counter()
            opt.step()
            t2 = time.perf_counter()
            losses.append(loss.item())
            st_ = dict(opt.stats)
            st_.update(fb_s=t1 - t0, opt_s=t2 - t1, step_s=t2 - t0)
            rec.append(st_)
            s += 1
            if not a.steps:
                left = a.time - (time.perf_counter() - t_begin)
                total = s + max(0, math.ceil(left / (t2 - t0)))
            if not a.quiet:
                bar(s, total if a.steps else max(total, s), loss.item(),
                    t2 - t0)
        io = [opt.io_pass() for _ in range(2)]
        engine = opt._store and getattr(opt._handle, "engine", "?")
        # The training's own peak, before the checkpoint gathers the whole
        # optimizer state in memory.
        a.train_peak_rss = peak_rss()
        if a.checkpoint:
            a.ckpt_result = checkpoint(a.checkpoint, {
                "model": m.state_dict(),
                "optimizer": opt.state_dict(full=True)})
    finally:
        opt.close()
    return m, nparams, losses, rec, io, engine


def _equal(a, b):
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(
                    a.contiguous().view(-1).view(torch.uint8),
                    b.contiguous().view(-1).view(torch.uint8)))
    if isinstance(a, dict):
        return (isinstance(b, dict) and list(a) == list(b)
                and all(_equal(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_equal(x, y) for x, y in zip(a, b)))
    return a == b


def checkpoint(d, state):
    """The model and optimizer state saved by torch.save (then fsync) and
    by swapio.torch.save (durable), side by side; swapio's file reloaded
    with stock torch.load and compared bit for bit."""
    import swapio.torch as st

    os.makedirs(d, exist_ok=True)
    nbytes = sum(t.numel() * t.element_size() for t in
                 state["model"].values())
    nbytes += sum(v.numel() * v.element_size()
                  for s in state["optimizer"]["state"].values()
                  for v in s.values())
    tp, sp = os.path.join(d, "torch.pt"), os.path.join(d, "swapio.pt")
    t0 = time.perf_counter()
    with open(tp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    t1 = time.perf_counter()
    st.save(state, sp)
    t2 = time.perf_counter()
    back = torch.load(sp)
    return {"bytes": nbytes, "torch_save_s": t1 - t0,
            "swapio_save_s": t2 - t1, "equal": _equal(state, back)}


def summarise(a, nparams, losses, rec, io, mem, engine, source, nbytes):
    steady = rec[1:] if len(rec) > 1 else rec  # step 1 creates the state
    avg = lambda k: sum(r[k] for r in steady) / len(steady)  # noqa: E731
    fb, opt_s, comp, wait = (avg("fb_s"), avg("opt_s"), avg("compute_s"),
                             avg("wait_s"))
    moved = avg("bytes_read") + avg("bytes_written")
    io_s = min(r["total_s"] for r in io)
    overlap = max(io_s, comp) / opt_s if opt_s else 0.0
    k = len(mem["losses"])
    return {
        "params": nparams, "dtype": a.dtype, "steps": len(losses),
        "corpus": source, "corpus_bytes": nbytes,
        "engine": engine, "budget": a.budget, "prefetch": a.prefetch,
        "losses": losses,
        "step_s": fb + opt_s, "forward_backward_s": fb,
        "optimizer_s": opt_s, "optimizer_compute_s": comp,
        "io_wait_s": wait, "optimizer_other_s": max(0.0, opt_s - comp - wait),
        "io_only_s": io_s, "overlap_efficiency": max(0.0, min(1.0, overlap)),
        "bytes_per_step": moved, "gb_per_s": moved / opt_s / 1e9,
        "io_only_gb_per_s": moved / io_s / 1e9,
        "peak_rss": getattr(a, "train_peak_rss", None) or peak_rss(),
        "inmemory_peak_rss": mem["peak_rss"],
        "check_steps": k, "inmemory_losses": mem["losses"],
        "losses_match": losses[:k] == mem["losses"] and len(losses) >= k,
    }


def curve(losses, rows=8, width=50):
    n = len(losses)
    out = []
    for r in range(min(rows, n)):
        i = r * (n - 1) // max(1, min(rows, n) - 1) if n > 1 else 0
        lo, hi = min(losses), max(losses)
        w = int(width * (losses[i] - lo) / (hi - lo)) if hi > lo else 0
        out.append(f"  step {i + 1:5d}  {losses[i]:7.4f}  {'*' * (w + 1)}")
    return "\n".join(out)


def report(r):
    gib = 1 << 30
    print(f"swapio.torch.AdamW: a {r['params'] / 1e6:.1f} M-parameter GPT "
          f"({r['dtype']}), {r['steps']} steps on {r['corpus_bytes']} bytes "
          f"of {r['corpus']}")
    print(f"  optimizer state on disk: engine {r['engine']}, budget "
          f"{r['budget'] >> 20} MiB, prefetch {r['prefetch']}")
    print("loss curve:")
    print(curve(r["losses"]))
    print(f"step time {r['step_s']:.3f} s: forward+backward "
          f"{r['forward_backward_s']:.3f} s, optimizer {r['optimizer_s']:.3f}"
          f" s = compute {r['optimizer_compute_s']:.3f} s + waiting for I/O "
          f"{r['io_wait_s']:.3f} s + other {r['optimizer_other_s']:.3f} s")
    print(f"I/O-only pass {r['io_only_s']:.3f} s; overlap efficiency "
          f"{100 * r['overlap_efficiency']:.0f}% = max(I/O only, "
          f"compute) / optimizer step (100% = perfect)")
    print(f"I/O {r['bytes_per_step'] / 1e9:.2f} GB per step: "
          f"{r['gb_per_s']:.2f} GB/s over the optimizer step, "
          f"{r['io_only_gb_per_s']:.2f} GB/s I/O only")
    print(f"peak RSS {r['peak_rss'] / gib:.2f} GiB vs "
          f"{r['inmemory_peak_rss'] / gib:.2f} GiB with torch.optim.AdamW "
          f"in memory ({100 * r['peak_rss'] / r['inmemory_peak_rss']:.0f}%)")
    print(f"first {r['check_steps']} losses equal to in-memory AdamW's bit "
          f"for bit: {'yes' if r['losses_match'] else 'NO'}")


def parse(argv):
    p = argparse.ArgumentParser(
        prog="swapio-train",
        description="Train a byte-level GPT on this CPU with AdamW's state "
                    "on disk (swapio.torch.AdamW), and compare with "
                    "torch.optim.AdamW in memory.")
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--d-model", type=int, default=640)
    p.add_argument("--heads", type=int, default=10)
    p.add_argument("--ctx", type=int, default=64, help="sequence length")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                   help="parameters in memory (bf16: fp32 master on disk; "
                        "the loss check then compares with AdamW on bf16 "
                        "parameters and is informative only)")
    p.add_argument("--steps", type=int, default=0,
                   help="training steps (0: as many as --time allows)")
    p.add_argument("--time", type=float, default=100.0,
                   help="seconds of training when --steps is 0")
    p.add_argument("--check-steps", type=int, default=3,
                   help="steps compared with in-memory AdamW")
    p.add_argument("--budget", type=lambda s: int(float(s) * (1 << 20)),
                   default=64 << 20, help="pipeline buffers, MiB")
    p.add_argument("--prefetch", type=int, default=2)
    p.add_argument("--engine", default="auto")
    p.add_argument("--store", default=None,
                   help="store directory (default: a temporary one)")
    p.add_argument("--corpus", default=os.getcwd(),
                   help="directory whose text files make the corpus")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true",
                   help="one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--checkpoint", default=None, metavar="DIR",
                   help="at the end, save the model and optimizer state "
                        "with torch.save and swapio.torch.save (durable) "
                        "in DIR, reload swapio's with torch.load and "
                        "compare bit for bit")
    p.add_argument("--memory-reference", action="store_true",
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    a = parse(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(a.threads)
    data, source = corpus(a.corpus)
    if a.memory_reference:
        print(json.dumps(run_memory(a, data)))
        return 0
    args = [sys.executable, "-m", "swapio._train", "--memory-reference",
            "--steps", str(a.check_steps)] + [
        x for x in (sys.argv[1:] if argv is None else argv)
        if x not in ("--json", "--quiet")]
    args = _drop(args, ("--steps", "--time", "--store"), keep_first=True)
    if not a.quiet:
        print(f"in-memory reference: {a.check_steps} steps of "
              f"torch.optim.AdamW in a subprocess...", file=sys.stderr)
    mem = json.loads(subprocess.run(args, check=True, stdout=subprocess.PIPE,
                                    text=True).stdout)
    if not a.quiet:
        print("training with the optimizer state on disk:", file=sys.stderr)
    m, n, losses, rec, io, engine = run_offload(a, data)
    r = summarise(a, n, losses, rec, io, mem, engine, source, len(data))
    ck = getattr(a, "ckpt_result", None)
    if ck is not None:
        r["checkpoint"] = ck
    if a.json:
        print(json.dumps(r))
    else:
        report(r)
        if ck is not None:
            gb = ck["bytes"] / 1e9
            print(f"checkpoint ({gb:.2f} GB, model + AdamW state, durable): "
                  f"torch.save {ck['torch_save_s']:.2f} s "
                  f"({gb / ck['torch_save_s']:.2f} GB/s), swapio.torch.save "
                  f"{ck['swapio_save_s']:.2f} s "
                  f"({gb / ck['swapio_save_s']:.2f} GB/s); reloaded with "
                  f"torch.load: "
                  + ("equal bit for bit" if ck["equal"] else "DIFFERENT"))
    if ck is not None and not ck["equal"]:
        return 1
    return 0 if r["losses_match"] or a.dtype != "fp32" else 1


def _drop(args, names, keep_first):
    """Drops later occurrences of the options *names* (with their values)
    from *args*, keeping the first of each when *keep_first*."""
    out, seen, i = [], set(), 0
    while i < len(args):
        x = args[i]
        name = x.split("=")[0]
        if name in names:
            has_val = "=" not in x
            if keep_first and name not in seen:
                seen.add(name)
                out.append(x)
                if has_val and i + 1 < len(args):
                    out.append(args[i + 1])
            i += 2 if has_val else 1
            continue
        out.append(x)
        i += 1
    return out


if __name__ == "__main__":
    sys.exit(main())
