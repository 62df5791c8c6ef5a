"""Tensors of every layout, and the sizes that must match.

swapio.torch.AdamW steps transposed and channels_last parameters as
torch.optim.AdamW does, bit for bit, and raises where torch raises (a
parameter that grew after its first step). The DeepSpeed drop-in moves
strided tensors through its bounce buffer, byte for byte as DeepSpeed's
op moves their contiguous copies, and refuses meta tensors before any
file is made.
"""

import os

import pytest

torch = pytest.importorskip("torch")

import swapio  # noqa: E402
import swapio.deepspeed as ds  # noqa: E402
import swapio.torch as st  # noqa: E402

torch.set_num_threads(2)


def _params(seed, layout):
    """A transposed matrix, a channels_last conv weight, a plain vector."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(48, 40, generator=g).t()            # transposed
    c = torch.randn(8, 6, 5, 3, generator=g)
    if layout == "channels_last":
        c = c.contiguous(memory_format=torch.channels_last)
    v = torch.randn(70, generator=g)
    return [torch.nn.Parameter(t) for t in (a, c, v)]


def _grads(ps, step):
    g = torch.Generator().manual_seed(500 + step)
    for p in ps:
        # Gradients of another layout than the parameter's, too.
        p.grad = torch.randn(p.shape, generator=g).to(p.dtype)
        if step % 2:
            p.grad = p.grad.t().contiguous().t() if p.dim() == 2 else p.grad


@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_adamw_strided_params_bitwise(tmp_path, layout, dtype):
    ref = _params(1, layout)
    mine = _params(1, layout)
    assert not ref[0].is_contiguous()
    if layout == "channels_last":
        assert not mine[1].is_contiguous()
    if dtype != torch.float32:
        ref = [torch.nn.Parameter(p.detach().to(dtype)) for p in ref]
        mine = [torch.nn.Parameter(p.detach().to(dtype)) for p in mine]
        masters = [torch.nn.Parameter(p.detach().float()) for p in ref]
        ro = torch.optim.AdamW(masters, lr=1e-2, foreach=False)
    else:
        ro = torch.optim.AdamW(ref, lr=1e-2, foreach=False)
    # A budget of a few groups: parameters are split into chunks.
    with st.AdamW(mine, lr=1e-2, store=str(tmp_path / "s"),
                  budget=64 << 10, prefetch=1) as o:
        for step in range(6):
            _grads(ref, step)
            _grads(mine, step)
            if dtype != torch.float32:
                for m, r in zip(masters, ref):
                    m.grad = r.grad.float()
                ro.step()
                for m, r in zip(masters, ref):
                    r.data.copy_(m.data)
            else:
                ro.step()
            o.step()
            for p, q in zip(ref, mine):
                assert torch.equal(p, q)
                assert p.stride() == q.stride()
        full = o.state_dict(full=True)
        torch_sd = ro.state_dict()
        for i in range(3):
            for k in ("exp_avg", "exp_avg_sq"):
                assert torch.equal(full["state"][i][k],
                                   torch_sd["state"][i][k])
        # Resume on the same store from either form: same next step.
        sd = o.state_dict()
    for form in (sd, full):
        again = [torch.nn.Parameter(p.detach().clone()) for p in mine]
        with st.AdamW(again, lr=1e-2, store=str(tmp_path / "s"),
                      budget=64 << 10, prefetch=1) as o2:
            o2.load_state_dict(form)
            state = o2.state_dict(full=True)["state"]
            for i in range(3):
                for k in ("exp_avg", "exp_avg_sq"):
                    assert torch.equal(state[i][k], full["state"][i][k])


def test_adamw_refuses_non_dense(tmp_path):
    base = torch.randn(10, 10)
    p = torch.nn.Parameter(base[:, ::2])        # gaps between elements
    with pytest.raises(ValueError, match="contiguous"):
        st.AdamW([p], store=str(tmp_path / "s"))
    assert not os.path.exists(tmp_path / "s")


def test_adamw_grown_parameter_raises_as_torch(tmp_path):
    def grow(opt_cls, **kw):
        p = torch.nn.Parameter(torch.randn(100))
        opt = opt_cls([p], lr=1e-2, **kw)
        p.grad = torch.randn(100)
        opt.step()
        p.data = torch.randn(300)
        p.grad = torch.randn(300)
        before = p.detach().clone()
        with pytest.raises(RuntimeError) as e:
            opt.step()
        return opt, p, before, e.value

    grow(torch.optim.AdamW, foreach=False)      # torch raises
    o, p, before, err = grow(st.AdamW, store=str(tmp_path / "s"))
    assert "300" in str(err) and "100" in str(err)
    assert torch.equal(p.detach(), before)      # nothing updated
    o.close()


def test_adamw_layout_changed_raises(tmp_path):
    p = torch.nn.Parameter(torch.randn(8, 6))
    with st.AdamW([p], store=str(tmp_path / "s")) as o:
        p.grad = torch.randn(8, 6)
        o.step()
        p.data = p.data.t().contiguous().t()
        p.grad = torch.randn(8, 6)
        with pytest.raises(RuntimeError, match="layout"):
            o.step()


# ---------------------------------------------------------------- drop-in

def _bytes(t):
    return t.detach().contiguous().reshape(-1).view(torch.uint8) \
        .numpy().tobytes()


@pytest.mark.parametrize("make", [
    lambda x: x.reshape(20, 10)[:, 3],          # 1-D strided
    lambda x: x.reshape(20, 10).t(),            # transposed
    lambda x: x.reshape(2, 10, 10)[:, ::2, 1:],  # gaps
])
def test_ds_strided_tensors(tmp_path, make):
    h = ds.aio_handle()
    path = str(tmp_path / "x")
    src = make(torch.randn(200, generator=torch.Generator().manual_seed(3)))
    assert not src.is_contiguous()
    assert h.sync_pwrite(src, path) == 1
    with open(path, "rb") as f:
        assert f.read() == _bytes(src)          # the tensor's elements
    dst = make(torch.zeros(200))
    assert h.sync_pread(dst, path) == 1
    assert torch.equal(dst, src)
    whole = make(torch.zeros(200))
    assert h.read(whole, path, False) == 0
    assert torch.equal(whole, src)
    h.close()


def test_ds_meta_refused_before_any_file(tmp_path):
    h = ds.aio_handle()
    m = torch.empty(64, device="meta")
    path = str(tmp_path / "m")
    for call in (lambda: h.sync_pwrite(m, path),
                 lambda: h.async_pwrite(m, path),
                 lambda: h.sync_pread(m, path)):
        with pytest.raises(ValueError, match="meta"):
            call()
        assert not os.path.exists(path)
    assert h.wait() == 0
    h.close()
