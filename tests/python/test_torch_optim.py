"""swapio.torch.AdamW against torch.optim.AdamW."""

import errno
import io
import os

import pytest

torch = pytest.importorskip("torch")

import swapio  # noqa: E402
import swapio.torch as st  # noqa: E402

torch.set_num_threads(2)


class Block(torch.nn.Module):
    """A small transformer block and a head: matrices, vectors, norms."""

    def __init__(self, d=32, vocab=50):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, d)
        self.layer = torch.nn.TransformerEncoderLayer(
            d, 4, 2 * d, dropout=0.0, batch_first=True)
        self.head = torch.nn.Linear(d, vocab)

    def forward(self, x):
        return self.head(self.layer(self.emb(x)))


def model(dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return Block().to(dtype)


def groups(m, lr=3e-3):
    """Three parameter groups with their own lr and weight decay."""
    ps = list(m.named_parameters())
    return [
        {"params": [p for n, p in ps if n.startswith("emb")], "lr": lr},
        {"params": [p for n, p in ps if n.startswith("layer")],
         "weight_decay": 0.1},
        {"params": [p for n, p in ps if n.startswith("head")],
         "weight_decay": 0.0, "lr": lr / 2, "betas": (0.8, 0.99)},
    ]


def batch(step, vocab=50):
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randint(0, vocab, (4, 12), generator=g)
    return x, torch.roll(x, 1, 1)


def train_step(m, opt, step):
    x, y = batch(step)
    opt.zero_grad()
    out = m(x).float()
    loss = torch.nn.functional.cross_entropy(out.view(-1, out.shape[-1]),
                                             y.view(-1))
    loss.backward()
    opt.step()
    return loss.item()


def same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(),
                                                 b.parameters()))


@pytest.mark.parametrize("budget,prefetch", [(64 << 10, 1), (256 << 10, 2),
                                             (64 << 20, 4)])
def test_bitwise_fp32(engine, tmp_path, budget, prefetch):
    ref, m = model(), model()
    ro = torch.optim.AdamW(groups(ref), lr=1e-3, foreach=False)
    with st.AdamW(groups(m), lr=1e-3, store=str(tmp_path / "s"),
                  budget=budget, prefetch=prefetch, engine=engine) as o:
        for s in range(100):
            assert train_step(ref, ro, s) == train_step(m, o, s)
        assert same(ref, m)
        sd = o.state_dict(full=True)
        rs = ro.state_dict()
        for i, s in rs["state"].items():
            for k in ("step", "exp_avg", "exp_avg_sq"):
                assert torch.equal(s[k], sd["state"][i][k]), (i, k)
        if budget == 64 << 10:
            assert o.stats["buffers"] >= 3  # chunked, overlapped


def test_default_torch_adamw_is_the_single_tensor_path():
    """On CPU torch.optim.AdamW's default is the single-tensor path; the
    offloaded optimizer matches it too."""
    ref, m = model(), model()
    ro = torch.optim.AdamW(ref.parameters(), lr=2e-3, weight_decay=0.05)
    with st.AdamW(m.parameters(), lr=2e-3, weight_decay=0.05,
                  budget=128 << 10) as o:
        for s in range(30):
            train_step(ref, ro, s)
            train_step(m, o, s)
    assert same(ref, m)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_matches_fp32_master(dtype):
    m = model(dtype)
    master = [p.detach().float().clone().requires_grad_(True)
              for p in m.parameters()]
    ro = torch.optim.AdamW(master, lr=1e-3, foreach=False)
    ref = model(dtype)
    with st.AdamW(m.parameters(), lr=1e-3, budget=96 << 10,
                  prefetch=2) as o:
        for s in range(40):
            train_step(m, o, s)
            train_step(ref, _Master(ref, master, ro), s)
            assert same(ref, m), s
        full = o.state_dict(full=True)
        for i, w in enumerate(master):
            assert torch.equal(full["state"][i]["master"], w.detach())


class _Master:
    """AdamW on fp32 master weights, then cast into the model."""

    def __init__(self, m, master, opt):
        self.m, self.master, self.opt = m, master, opt

    def zero_grad(self):
        self.m.zero_grad()

    def step(self):
        for p, w in zip(self.m.parameters(), self.master):
            w.grad = p.grad.float()
        self.opt.step()
        with torch.no_grad():
            for p, w in zip(self.m.parameters(), self.master):
                p.copy_(w)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_stop_and_resume(tmp_path, dtype):
    path = str(tmp_path / "s")
    whole = model(dtype)
    with st.AdamW(groups(whole), store=str(tmp_path / "w"),
                  budget=128 << 10) as o:
        for s in range(60):
            train_step(whole, o, s)
    m = model(dtype)
    o = st.AdamW(groups(m), store=path, budget=128 << 10)
    for s in range(30):
        train_step(m, o, s)
    buf = io.BytesIO()
    torch.save({"model": m.state_dict(), "opt": o.state_dict()}, buf)
    o.close()
    del m, o
    ck = torch.load(io.BytesIO(buf.getvalue()))
    m = model(dtype, seed=7)
    m.load_state_dict(ck["model"])
    # A different budget: the chunks are laid out anew on load.
    with st.AdamW(groups(m), store=path, budget=64 << 10, prefetch=1) as o:
        o.load_state_dict(ck["opt"])
        for s in range(30, 60):
            train_step(m, o, s)
    assert same(whole, m)


def test_full_state_dict_to_and_from_torch():
    ref, m = model(), model()
    ro = torch.optim.AdamW(groups(ref), foreach=False)
    with st.AdamW(groups(m), budget=128 << 10) as o:
        for s in range(10):
            train_step(ref, ro, s)
            train_step(m, o, s)
        ro2 = torch.optim.AdamW(groups(model()), foreach=False)
        m2 = model()
        m2.load_state_dict(m.state_dict())
        ro2 = torch.optim.AdamW(groups(m2), foreach=False)
        ro2.load_state_dict(o.state_dict(full=True))
        o.load_state_dict(ro.state_dict())
        for s in range(10, 20):
            train_step(ref, ro, s)
            train_step(m, o, s)
            train_step(m2, ro2, s)
    assert same(ref, m) and same(ref, m2)


def test_none_and_zero_grads():
    ref, m = model(), model()
    ro = torch.optim.AdamW(ref.parameters(), lr=1e-2, foreach=False)
    with st.AdamW(m.parameters(), lr=1e-2, budget=64 << 10) as o:
        for s in range(20):
            for net, opt in ((ref, ro), (m, o)):
                x, y = batch(s)
                opt.zero_grad()
                out = net(x)
                torch.nn.functional.cross_entropy(
                    out.view(-1, out.shape[-1]), y.view(-1)).backward()
                ps = list(net.parameters())
                if s % 3 == 0:
                    ps[0].grad = None          # skipped: state untouched
                if s < 5:
                    ps[-1].grad = None         # state created later
                if s % 2:
                    ps[1].grad.zero_()         # still an update
                opt.step()
            assert same(ref, m), s
        # torch.optim's zero_grad() sets grads to None: a no-op step.
        o.zero_grad()
        o.step()
        ro.zero_grad()
        ro.step()
        rs, ms = ro.state_dict(), o.state_dict(full=True)
        for i, s in rs["state"].items():
            assert torch.equal(s["step"], ms["state"][i]["step"])
            assert torch.equal(s["exp_avg_sq"], ms["state"][i]["exp_avg_sq"])
    assert same(ref, m)


def test_budget_too_small():
    m = model()
    with pytest.raises(swapio.Error) as e:
        st.AdamW(m.parameters(), budget=16 << 10, prefetch=2)
    assert e.value.errno == errno.EINVAL
    assert "budget" in str(e.value)


def test_failure_raises_and_leaks_nothing(tmp_path):
    path = str(tmp_path / "s")
    m = model()
    o = st.AdamW(m.parameters(), store=path, budget=64 << 10)
    train_step(m, o, 0)
    o._store.remove(o._keys(3, 0)[0])   # state lost under the optimizer
    with pytest.raises(swapio.Error) as e:
        train_step(m, o, 1)
    assert e.value.errno == errno.ENOENT
    o.close()
    with swapio.Handle() as h, swapio.Store(path, h) as s:  # lock released
        assert len(s) > 0
    t = st.AdamW(m.parameters())
    tmp = t._tmpdir
    assert os.path.isdir(tmp)
    t.close()
    assert not os.path.exists(tmp)
    with pytest.raises(ValueError):
        t.step()


def _set_grads(ms, step, skip=()):
    """The same random gradients on each model's parameters; parameters
    whose index is in *skip* get none."""
    g = torch.Generator().manual_seed(5000 + step)
    for i, ps in enumerate(zip(*(m.parameters() for m in ms))):
        grad = torch.randn(ps[0].shape, generator=g)
        for p in ps:
            p.grad = None if i in skip else grad.clone()


def test_read_ahead_across_steps_starts_after_each_step(tmp_path):
    """After step() returns, the first groups of the next step are being
    read already (while the model would run forward and backward)."""
    import time

    m = model()
    h = swapio.Handle()
    with st.AdamW(m.parameters(), store=str(tmp_path / "s"), handle=h,
                  budget=256 << 10, prefetch=2) as o:
        for step in range(2):
            _set_grads([m], step)
            o.step()
        one_pass = o.stats["bytes_read"]
        # The handle counts bytes as reads complete: they grow with no
        # call into the optimizer, up to the first two groups' worth.
        before = h.stats()["bytes_read"]
        for _ in range(500):
            if h.stats()["bytes_read"] > before:
                break
            time.sleep(0.01)
        ahead = h.stats()["bytes_read"] - before
        assert 0 < ahead <= 2 * o._group_bytes()
        _set_grads([m], 2)
        o.step()
        # That step's pass took the groups read ahead and read the rest.
        assert o.stats["bytes_read"] == one_pass
    h.close()


def test_read_ahead_never_serves_stale_state(engine, tmp_path):
    """Whatever happens between steps (another set of parameters with
    gradients, an I/O-only pass, a state dict loaded), the groups read
    ahead at the end of a step never stand in for newer state: every
    step equals torch.optim.AdamW's, bit for bit."""
    ref, m = model(), model()
    ro = torch.optim.AdamW(ref.parameters(), lr=1e-3, foreach=False)
    with st.AdamW(m.parameters(), lr=1e-3, store=str(tmp_path / "s"),
                  budget=64 << 10, prefetch=2, engine=engine) as o:
        n = len(list(m.parameters()))
        plan = [(), (), tuple(range(0, n, 2)), (), (1,), (), "io", (),
                "load", (), tuple(range(n // 2)), ()]
        for step, what in enumerate(plan):
            if what == "io":
                o.io_pass()
                continue
            if what == "load":
                # Another run's state: the read-ahead groups are stale.
                other, oro = model(seed=3), None
                oro = torch.optim.AdamW(other.parameters(), lr=1e-3,
                                        foreach=False)
                _set_grads([other], 99)
                oro.step()
                ro.load_state_dict(oro.state_dict())
                o.load_state_dict(oro.state_dict())
                continue
            _set_grads([ref, m], step, what)
            ro.step()
            o.step()
            assert same(ref, m), step
        sd, rs = o.state_dict(full=True), ro.state_dict()
        for i, s in rs["state"].items():
            for k in ("step", "exp_avg", "exp_avg_sq"):
                assert torch.equal(s[k], sd["state"][i][k]), (i, k)
