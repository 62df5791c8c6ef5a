"""Optimizer state offload for PyTorch: AdamW with its state in a swapio store.

:class:`AdamW` is a ``torch.optim.Optimizer`` that keeps ``exp_avg``,
``exp_avg_sq`` and (for bf16/fp16 parameters) the fp32 master weights in a
:class:`swapio.Store` on disk, and streams them through a
:class:`swapio.Pipeline` on every step: it reads ``prefetch`` groups ahead,
updates each group as it arrives, and writes it back, overlapped, within
``budget`` bytes of buffers. Only the model's parameters and gradients stay
in memory.

With fp32 parameters, the update is torch's own single-tensor AdamW
arithmetic (``torch.optim.AdamW(..., foreach=False)``, which is also what
torch runs on CPU by default), op for op, so the results are equal bit for
bit. With bf16 or fp16 parameters, the update runs on the fp32 master
weights and the parameter gets the master rounded to its dtype.

torch is imported only by this module.
"""

import errno
import os
import pickle
import shutil
import tempfile
import time

import torch

import swapio
from swapio import _swapio

__all__ = ["AdamW", "load", "save"]

_PAGE = 4096
_ALIGN = 1024  # chunk lengths are multiples of this many elements


def _page(n):
    return (n + _PAGE - 1) // _PAGE * _PAGE


def _error(code, msg):
    return swapio.Error(code, msg)


def _order(p):
    """None for a contiguous *p*; else the order of its dimensions, outer
    to inner in memory, in which it is contiguous (a transposed or
    channels_last parameter): its state is kept in that memory order.
    ValueError for a parameter that does not cover its memory densely."""
    if p.is_contiguous():
        return None
    order = tuple(sorted(range(p.dim()), key=lambda d: -p.stride(d)))
    if not p.permute(order).is_contiguous():
        raise ValueError(
            f"swapio.torch.AdamW: a parameter of shape {tuple(p.shape)} "
            f"and strides {p.stride()} does not cover its memory densely "
            "(overlapping or with gaps); make it contiguous first: "
            "p.data = p.data.contiguous()")
    return order


def _flat(t, order):
    """*t* (of the parameter's shape, any layout) as a 1-D tensor in the
    parameter's memory order: a view where *t* is laid out as the
    parameter, else a copy."""
    if order is not None:
        t = t.permute(order)
    return t.reshape(-1)


def _unflat(flat, p, order):
    """A 1-D tensor in *p*'s memory order as a tensor of *p*'s shape and
    strides (a view)."""
    if order is None:
        return flat.view(p.shape)
    inverse = [0] * len(order)
    for i, d in enumerate(order):
        inverse[d] = i
    return flat.view([p.shape[d] for d in order]).permute(inverse)


class AdamW(torch.optim.Optimizer):
    """AdamW whose state lives in a swapio store.

    ``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
    weight_decay=1e-2, *, maximize=False, store=None, budget=64 MiB,
    prefetch=2, engine="auto", chunk_bytes=0, pinned=None,
    prefix="adamw")``

    *store* is None (a temporary directory, removed by :meth:`close`), a
    directory path (opened, or created), or an open :class:`swapio.Store`
    (the caller keeps ownership). *budget* is the bytes of the pipeline's
    buffers: at least ``prefetch + 2`` groups fit, so reading ahead,
    updating and writing back overlap. Parameters larger than a group are
    split into chunks. *chunk_bytes* caps one chunk's tensor (0: as large
    as the budget allows). *pinned* None locks the buffers if the memory
    lock limit allows, else not; True insists; False never locks.

    Errors of the store or the pipeline raise :class:`swapio.Error`; a
    budget below one group raises it with errno EINVAL.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=1e-2, *, maximize=False, amsgrad=False,
                 store=None, budget=64 << 20, prefetch=2, engine="auto",
                 chunk_bytes=0, pinned=None, prefix="adamw", handle=None,
                 foreach=None, fused=None, capturable=False,
                 differentiable=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameters: {betas}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if amsgrad or fused or capturable or differentiable:
            raise ValueError("swapio.torch.AdamW supports neither amsgrad, "
                             "fused, capturable nor differentiable")
        if isinstance(lr, torch.Tensor):
            raise ValueError("swapio.torch.AdamW takes a float lr")
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self._closed = True
        self._store = None
        self._own_store = self._own_handle = False
        self._tmpdir = None
        self._handle = None
        self._pipes = {}
        self._ahead = None      # the _Pass begun at the end of a step
        self._scratch = [None, None]    # AdamW's denominator, fp32 grads
        self._layout = None
        self._shapes = []       # (shape, memory order) the layout is for
        self._inited = set()
        self.budget = int(budget)
        self.prefetch = int(prefetch)
        self.chunk_bytes = int(chunk_bytes)
        self.pinned = pinned
        self.prefix = prefix
        self.stats = {}
        defaults = dict(lr=lr, betas=betas, eps=eps,
                        weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.is_sparse or p.device.type != "cpu":
                    raise ValueError("swapio.torch.AdamW takes dense CPU "
                                     "parameters")
                if p.dtype not in (torch.float32, torch.bfloat16,
                                   torch.float16):
                    raise ValueError(f"unsupported dtype {p.dtype}")
                _order(p)       # dense in memory, in some order
        self._open_store(store, engine, handle)
        self._closed = False
        self._check_budget()

    # -- set-up and tear-down -------------------------------------------

    def _open_store(self, store, engine, handle):
        if isinstance(store, swapio.Store):
            self._store = store
            self.store_dir = getattr(store, "dir", None)
            return
        if handle is None:
            handle = swapio.Handle(engine=engine)
            self._own_handle = True
        self._handle = handle
        try:
            if store is None:
                self._tmpdir = tempfile.mkdtemp(prefix="swapio-adamw-")
                path = os.path.join(self._tmpdir, "store")
            else:
                path = os.fspath(store)
            self._store = swapio.Store(path, handle)
            self._own_store = True
            self.store_dir = path
        except BaseException:
            self._teardown()
            raise

    def _teardown(self):
        self._ahead = None
        self._scratch = [None, None]
        for p in self._pipes.values():
            p.close()
        self._pipes.clear()
        if self._own_store and self._store is not None:
            self._store.close()
        self._store = None
        if self._own_handle and self._handle is not None:
            self._handle.close()
        self._handle = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def close(self):
        """Close the pipelines, the store and the handle this optimizer
        opened (and remove its temporary store). Call :meth:`sync` (or
        :meth:`state_dict`) first to keep the state."""
        self._closed = True
        self._teardown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if not getattr(self, "_closed", True):
                self.close()
        except Exception:
            pass

    def _check_open(self):
        if self._closed:
            raise ValueError("the optimizer is closed")

    # -- layout: parameters, chunks, groups -----------------------------

    def _params(self):
        return [p for g in self.param_groups for p in g["params"]]

    def _ntensors(self, p):
        return 2 if p.dtype == torch.float32 else 3

    def _group_bytes(self):
        return self.budget // (self.prefetch + 2) // _PAGE * _PAGE

    def _check_budget(self):
        need = 0
        for p in self._params():
            need = max(need, self._ntensors(p) * _page(4 * _ALIGN))
        if need and self._group_bytes() < need:
            raise _error(errno.EINVAL,
                         f"swapio.torch.AdamW: a budget of {self.budget} "
                         f"bytes is below one group: prefetch {self.prefetch}"
                         f" + 2 buffers of at least {need} bytes need "
                         f"{need * (self.prefetch + 2)} bytes")

    def _chunk_elems(self, p):
        per = self._group_bytes() // self._ntensors(p)
        if self.chunk_bytes:
            per = min(per, self.chunk_bytes)
        return max(_ALIGN, per // 4 // _ALIGN * _ALIGN)

    def _build_layout(self):
        """For every parameter index, its chunks as (offset, length) in
        elements; the keys follow from (index, chunk)."""
        self._check_budget()
        self._scratch = [None, None]
        layout = []
        self._shapes = [(tuple(p.shape), _order(p)) for p in self._params()]
        for p in self._params():
            n = p.numel()
            c = self._chunk_elems(p)
            layout.append([(o, min(c, n - o)) for o in range(0, n, c)]
                          or [])
        self._layout = layout
        self._ahead = None
        for pipe in self._pipes.values():
            pipe.close()
        self._pipes.clear()

    def _keys(self, i, c):
        k = f"{self.prefix}.{i}.{c}"
        return (k + ".m", k + ".v", k + ".w")

    def _pipeline(self, active):
        key = tuple(active)
        pipe = self._pipes.get(key)
        if pipe is not None:
            return pipe
        params = self._params()
        cap = self._group_bytes()
        groups, chunks, cur, cur_chunks, size = [], [], [], [], 0
        for i in active:
            nt = self._ntensors(params[i])
            for c, (off, n) in enumerate(self._layout[i]):
                b = nt * _page(4 * n)
                if cur and size + b > cap:
                    groups.append(cur)
                    chunks.append(cur_chunks)
                    cur, cur_chunks, size = [], [], 0
                keys = self._keys(i, c)[:nt]
                cur.extend((k, 4 * n) for k in keys)
                cur_chunks.append((i, off, n))
                size += b
        if cur:
            groups.append(cur)
            chunks.append(cur_chunks)
        biggest = max(sum(_page(t[1]) for t in g) for g in groups)
        budget = min(self.budget, biggest * (self.prefetch + 2))
        pinned = self.pinned
        try:
            p = _swapio._Pipeline(self._store, groups, budget,
                                  self.prefetch, pinned is not False, True)
        except swapio.Error as e:
            if pinned is not None or e.code != swapio.EMEMLOCK:
                raise
            p = _swapio._Pipeline(self._store, groups, budget,
                                  self.prefetch, False, True)
        while len(self._pipes) >= 2:
            old = self._pipes.pop(next(iter(self._pipes)))
            if old is self._ahead:
                self._ahead = None
            old.close()
        pipe = _Pass(p, chunks)
        self._pipes[key] = pipe
        return pipe

    # -- state in the store ---------------------------------------------

    def _drop_ahead(self, keep=None):
        """Forget the pass begun ahead, draining it unless it is *keep*
        (about to run on from it): its groups were read before whatever
        comes next changes the store."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead is not keep:
            ahead.drain()

    def _run_pass(self, pipe, update):
        """Run *pipe* (its reads may have started at the end of the last
        step), then begin its next pass at once, so that the first groups
        are read while the model runs forward and backward. A failure to
        begin is left for the next step to meet and report."""
        self._drop_ahead(keep=pipe)
        st = pipe.run(update)
        try:
            pipe.begin_ahead()
            self._ahead = pipe
        except swapio.Error:
            pass
        return st

    def _init_state(self, todo):
        """Zero moments (and the fp32 master copy) in the store for the
        parameter indices in *todo*."""
        self._drop_ahead()
        params = self._params()
        zero = None
        for i in todo:
            p = params[i]
            flat = _flat(p.detach(), self._shapes[i][1])
            for c, (off, n) in enumerate(self._layout[i]):
                if zero is None or zero.numel() < n:
                    zero = torch.zeros(n, dtype=torch.float32)
                km, kv, kw = self._keys(i, c)
                self._store.put(km, zero[:n])
                self._store.put(kv, zero[:n])
                if p.dtype != torch.float32:
                    self._store.put(kw, flat[off:off + n].float())
            self.state[p]["step"] = torch.tensor(0.0, dtype=torch.float32)
            self._inited.add(i)

    def _read_param_state(self, i):
        """exp_avg, exp_avg_sq and the master (or None) of parameter *i*
        as whole fp32 tensors read from the store."""
        p = self._params()[i]
        n = p.numel()
        out = [torch.empty(n, dtype=torch.float32) for _ in range(2)]
        w = None
        if p.dtype != torch.float32:
            w = torch.empty(n, dtype=torch.float32)
            out.append(w)
        for c, (off, m) in enumerate(self._layout[i]):
            for k, t in zip(self._keys(i, c), out):
                self._store.get(k, t[off:off + m])
        order = self._shapes[i][1]
        return [_unflat(t, p, order) for t in out[:2]] + [
            None if w is None else _unflat(w, p, order)]

    def _write_param_state(self, i, exp_avg, exp_avg_sq, master):
        self._drop_ahead()
        p = self._params()[i]
        src = [exp_avg, exp_avg_sq]
        if p.dtype != torch.float32:
            src.append(p.detach().float() if master is None else master)
        src = [_flat(s.detach().to(torch.float32), self._shapes[i][1])
               for s in src]
        for c, (off, m) in enumerate(self._layout[i]):
            for k, t in zip(self._keys(i, c), src):
                self._store.put(k, t[off:off + m])

    # -- the step -------------------------------------------------------

    @torch.no_grad()
    def step(self, closure=None):
        """One AdamW step over every parameter with a gradient; parameters
        whose ``grad`` is None are skipped (their state untouched), as
        torch does. When it returns, the first ``prefetch`` groups of the
        next step are already being read, so that they arrive while the
        model runs forward and backward; anything that changes the state
        in between (a step over other parameters, load_state_dict) drops
        them first."""
        self._check_open()
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        t_start = time.perf_counter()
        params = self._params()
        if self._layout is None or len(self._layout) != len(params):
            self._build_layout()
        hyper = {}
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if p.grad.is_sparse:
                        raise RuntimeError("AdamW does not support sparse "
                                           "gradients")
                    hyper[i] = group
                i += 1
        active = sorted(hyper)
        if not active:
            return loss
        self._check_shapes(active)
        todo = [i for i in active if i not in self._inited]
        if todo:
            self._init_state(todo)
        steps = {}
        for i in active:
            st = self.state[params[i]]["step"]
            st += 1
            steps[i] = st.item()
        grads = {}
        for i in active:
            grads[i] = _flat(params[i].grad, self._shapes[i][1])
        pipe = self._pipeline(active)
        compute = 0.0
        # Reused across chunks and steps: a fresh tensor per chunk would
        # fault its pages in every time.
        scratch = self._scratch

        def update(chunks, bufs):
            at = 0
            for (i, off, n) in chunks:
                p = params[i]
                nt = self._ntensors(p)
                views = [torch.frombuffer(b, dtype=torch.float32)
                         for b in bufs[at:at + nt]]
                at += nt
                g = grads[i][off:off + n]
                pflat = _flat(p.detach(), self._shapes[i][1])
                if p.dtype == torch.float32:
                    w = pflat[off:off + n]
                    _adamw(w, g, views[0], views[1], steps[i], hyper[i],
                           scratch)
                else:
                    w = views[2]
                    if scratch[1] is None or scratch[1].numel() < n:
                        scratch[1] = torch.empty(n, dtype=torch.float32)
                    g32 = scratch[1][:n]
                    g32.copy_(g)
                    _adamw(w, g32, views[0], views[1], steps[i],
                           hyper[i], scratch)
                    del g32
                    pflat[off:off + n].copy_(w)
                del views, w, g, pflat

        st = self._run_pass(pipe, update)
        st["step_s"] = time.perf_counter() - t_start
        self.stats = st
        return loss

    def _check_shapes(self, active):
        """Before anything changes: a parameter whose size (or gradient's
        size) no longer matches its state raises RuntimeError, as
        torch.optim.AdamW's update does; so does one whose memory layout
        changed (the state is kept in the parameter's memory order). A
        parameter without state yet is laid out again."""
        params = self._params()
        fresh = False
        for i in active:
            p = params[i]
            shape, order = self._shapes[i]
            if tuple(p.grad.shape) != tuple(p.shape):
                raise RuntimeError(
                    f"swapio.torch.AdamW: parameter {i} has shape "
                    f"{tuple(p.shape)} but its gradient {tuple(p.grad.shape)}")
            if tuple(p.shape) == shape and _order(p) == order:
                continue
            if i not in self._inited:
                fresh = True
            elif tuple(p.shape) != shape:
                raise RuntimeError(
                    f"swapio.torch.AdamW: parameter {i} is now of shape "
                    f"{tuple(p.shape)} ({p.numel()} elements), its state of "
                    f"shape {shape}: the sizes must match, as in "
                    "torch.optim.AdamW; load a state dict made for the new "
                    "size, or make a new optimizer")
            else:
                raise RuntimeError(
                    f"swapio.torch.AdamW: parameter {i} changed its memory "
                    f"layout (strides now {p.stride()}) after its first "
                    "step, and its state is kept in the old one; keep the "
                    "layout (e.g. make the model channels_last before "
                    "building the optimizer), or make a new optimizer")
        if fresh:
            self._build_layout()

    def io_pass(self):
        """One pass of the pipeline over every initialised parameter's
        state without the update (each group is read and written back
        unchanged): the I/O-only time of a step, for measurements. It is
        a cold pass: groups read ahead at the end of the last step are
        dropped first. Returns the pass's counters as :meth:`step` leaves
        them in :attr:`stats`."""
        self._check_open()
        active = sorted(self._inited)
        if not active:
            return {}
        self._drop_ahead()
        return self._pipeline(active).run(None)

    # -- durability and state_dict --------------------------------------

    def sync(self):
        """Make the state in the store durable (every step has already
        flushed its write-backs)."""
        self._check_open()
        self._store.sync()

    def state_dict(self, full=False):
        """The optimizer's state. The moments stay in the store, which is
        synced first: the dict holds the steps, the hyper-parameters and
        where the state is (``"swapio"``: store directory, key prefix,
        chunk layout), and a new AdamW over the same store directory
        resumes from it with identical results. With *full*, the dict is
        torch.optim.AdamW's own form instead (``exp_avg``, ``exp_avg_sq``
        as tensors read from the store), loadable by either optimizer."""
        self._check_open()
        params = self._params()
        index = {id(p): i for i, p in enumerate(params)}
        groups = []
        for g in self.param_groups:
            d = {k: v for k, v in g.items() if k != "params"}
            d["params"] = [index[id(p)] for p in g["params"]]
            groups.append(d)
        state = {}
        for i in sorted(self._inited):
            s = {"step": self.state[params[i]]["step"].clone()}
            if full:
                m, v, w = self._read_param_state(i)
                s["exp_avg"], s["exp_avg_sq"] = m, v
                if w is not None:
                    s["master"] = w
            state[i] = s
        sd = {"state": state, "param_groups": groups}
        if not full:
            self._store.sync()
            sd["swapio"] = {"version": 1, "dir": self.store_dir,
                            "prefix": self.prefix,
                            "layout": {i: list(self._layout[i])
                                       for i in sorted(self._inited)}}
        return sd

    def load_state_dict(self, state_dict):
        """Load a dict from :meth:`state_dict` (either form) or from
        ``torch.optim.AdamW.state_dict()``. The swapio form reads the
        state from the store it names: this optimizer's own store (the
        usual resume: a new AdamW opened on the same directory), or
        another store directory, copied in."""
        self._check_open()
        params = self._params()
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"])
                for a, b in zip(groups, self.param_groups)):
            raise ValueError("loaded state dict does not match the "
                             "optimizer's parameter groups")
        for mine, theirs in zip(self.param_groups, groups):
            for k, v in theirs.items():
                if k != "params":
                    mine[k] = tuple(v) if k == "betas" else v
        self._build_layout()
        self._inited = set()
        self.state.clear()
        meta = state_dict.get("swapio")
        src, close_src = self._store, False
        if meta is not None:
            if os.path.realpath(str(meta["dir"])) != os.path.realpath(
                    str(self.store_dir)):
                src = swapio.Store(meta["dir"], self._handle or
                                   swapio.Handle(), create=False)
                close_src = True
        try:
            for key, s in state_dict["state"].items():
                i = int(key)
                p = params[i]
                if meta is not None:
                    old = [tuple(x) for x in meta["layout"][key]]
                    if src is self._store and old == list(self._layout[i]) \
                            and meta["prefix"] == self.prefix:
                        pass  # already in place
                    else:
                        m, v, w = self._gather(src, meta["prefix"], i, old,
                                               p)
                        order = self._shapes[i][1]
                        self._write_param_state(
                            i, _unflat(m, p, order), _unflat(v, p, order),
                            None if w is None else _unflat(w, p, order))
                else:
                    self._write_param_state(i, s["exp_avg"],
                                            s["exp_avg_sq"],
                                            s.get("master"))
                step = s["step"]
                self.state[p]["step"] = torch.tensor(
                    float(step), dtype=torch.float32)
                self._inited.add(i)
        finally:
            if close_src:
                src.close()

    def _gather(self, src, prefix, i, layout, p):
        n = p.numel()
        nt = self._ntensors(p)
        out = [torch.empty(n, dtype=torch.float32) for _ in range(nt)]
        for c, (off, m) in enumerate(layout):
            k = f"{prefix}.{i}.{c}"
            for suf, t in zip((".m", ".v", ".w"), out):
                src.get(k + suf, t[off:off + m])
        return out[0], out[1], (out[2] if nt == 3 else None)


def _adamw(param, grad, exp_avg, exp_avg_sq, step, group, scratch):
    """torch's single-tensor AdamW on one chunk, op for op (see
    torch/optim/adam.py, _single_tensor_adam, decoupled weight decay)."""
    lr = group["lr"]
    beta1, beta2 = group["betas"]
    wd = group["weight_decay"]
    eps = group["eps"]
    if group["maximize"]:
        grad = -grad
    if wd != 0:
        param.mul_(1 - lr * wd)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5
    n = exp_avg_sq.numel()
    if scratch[0] is None or scratch[0].numel() < n:
        scratch[0] = torch.empty(n, dtype=torch.float32)
    denom = scratch[0][:n]
    torch.sqrt(exp_avg_sq, out=denom)
    denom.div_(bias_correction2_sqrt).add_(eps)
    param.addcdiv_(exp_avg, denom, value=-step_size)


class _Pass:
    """One cached pipeline and the chunks of each of its groups."""

    def __init__(self, pipe, chunks):
        self.pipe = pipe
        self.chunks = chunks
        self.begun = False      # begin_ahead() ran; run() goes on from it

    def close(self):
        self.begun = False
        self.pipe.close()

    def begin_ahead(self):
        """Start the next pass now: the first groups are read ahead."""
        self.pipe.begin()
        self.begun = True

    def drain(self):
        """End a pass begun ahead without using it: the reads in flight
        are waited for and dropped, the rest are never made, and errors
        of those reads go with them."""
        self.begun = False
        self.pipe.cancel()

    def run(self, update):
        p = self.pipe
        wait = compute = 0.0
        held = None
        t0 = time.perf_counter()
        try:
            if not self.begun:
                p.begin()
            self.begun = False
            while True:
                a = time.perf_counter()
                item = p.next()
                b = time.perf_counter()
                wait += b - a
                if item is None:
                    break
                held = item[0]
                if update is not None:
                    update(self.chunks[held], item[1])
                del item
                compute += time.perf_counter() - b
                g, held = held, None
                p.release(g, True)
            a = time.perf_counter()
            p.flush()
            wait += time.perf_counter() - a
        except BaseException:
            if held is not None:
                try:
                    p.release(held, False)
                except Exception:
                    pass
            try:
                while True:
                    item = p.next()
                    if item is None:
                        break
                    p.release(item[0], False)
            except Exception:
                pass
            raise
        s = p.stats()
        return {"total_s": time.perf_counter() - t0, "wait_s": wait,
                "compute_s": compute, "bytes_read": s["bytes_read"],
                "bytes_written": s["bytes_written"],
                "stall_ns": s["stall_ns"], "buffers": s["buffers"],
                "depth": s["depth"], "locked": s["locked"]}


def save(obj, f, pickle_module=None, pickle_protocol=None,
         _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False, *, durable=True, handle=None):
    """``torch.save`` in torch's own zip format, written by swapio.

    Same arguments and the same file as ``torch.save`` (what stock
    ``torch.load`` reads), but every storage's bytes are written from the
    tensor in place at its record's offset, many ops in flight, without
    pickling them into memory or computing CRCs. *f* a path: the file is
    written under a temporary name in the same directory, made durable
    (``fdatasync`` of the file, then of the directory, after the rename)
    and renamed to *f*, so *f* holds either the previous file or the new
    one, whole, after a crash; on any error (ENOSPC included) the
    temporary file is removed. ``durable=False`` skips the syncs (fast,
    not crash-safe). *handle*: a :class:`swapio.Handle` to use (a new one
    by default). A file object (or the legacy format) is handed to
    ``torch.save`` itself.
    """
    from swapio import _torch_ckpt
    return _torch_ckpt.save(
        obj, f, pickle if pickle_module is None else pickle_module,
        _torch_ckpt._DEFAULT_PROTOCOL if pickle_protocol is None
        else pickle_protocol, _use_new_zipfile_serialization,
        _disable_byteorder_record, durable=durable, handle=handle)


def load(f, map_location=None, pickle_module=None, *, weights_only=None,
         mmap=None, handle=None, **pickle_load_args):
    """``torch.load`` of a zip-format file with its storages read by swapio.

    Same arguments and results as ``torch.load`` (``map_location``,
    ``weights_only`` and its environment variables, ``pickle_load_args``):
    torch's own reader and unpickler run over storages that swapio read
    first, all in flight, into new CPU memory. A file object, ``mmap=True``,
    a legacy (non-zip) file or a ``.safetensors`` path go to ``torch.load``.
    """
    from swapio import _torch_ckpt
    return _torch_ckpt.load(f, map_location, pickle_module,
                            weights_only=weights_only, mmap=mmap,
                            handle=handle, **pickle_load_args)


def __getattr__(name):
    if name == "dcp":
        from swapio import torch_dcp
        return torch_dcp
    raise AttributeError("module 'swapio.torch' has no attribute %r" % name)

