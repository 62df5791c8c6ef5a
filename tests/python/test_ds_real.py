"""Real DeepSpeed (from PyPI) swapping real tensors through swapio.

swapio.deepspeed.install() replaces DeepSpeed's async_io and pin_memory ops;
DeepSpeed's own swapper classes then run unchanged and must return every
tensor bit for bit. One CPU process, torch.distributed over gloo."""

import os
import socket
import types

import pytest

torch = pytest.importorskip("torch")
deepspeed = pytest.importorskip("deepspeed")
sd = pytest.importorskip("swapio.deepspeed")

from deepspeed.runtime.swap_tensor import constants as C  # noqa: E402

ENGINES = ("uring", "aio", "threads")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def ds_world():
    import deepspeed.comm as dist
    import deepspeed.ops

    # On a CPU, DeepSpeed's communication backend JIT-compiles its shared
    # memory all-reduce op when it thinks it can (ninja present), or fails
    # when it cannot. One process needs no all-reduce: no op is built.
    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    for k, v in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"),
                 ("MASTER_ADDR", "127.0.0.1"),
                 ("MASTER_PORT", str(_free_port()))):
        os.environ.setdefault(k, v)
    if not dist.is_initialized():
        dist.init_distributed(dist_backend="gloo", auto_mpi_discovery=False)
    sd.install()
    yield
    sd.uninstall()


@pytest.fixture(params=ENGINES)
def engine(request):
    import swapio

    if swapio.probe(request.param) != 0:
        pytest.skip(f"{request.param} cannot run here")
    sd.install(engine=request.param)
    yield request.param
    sd._engine = "auto"


def aio_config(qd=8, iop=1):
    return {C.AIO_BLOCK_SIZE: 1 << 20, C.AIO_QUEUE_DEPTH: qd,
            C.AIO_INTRA_OP_PARALLELISM: iop, C.AIO_SINGLE_SUBMIT: False,
            C.AIO_OVERLAP_EVENTS: True, C.AIO_USE_GDS: False}


def test_builders_return_swapio(engine):
    from deepspeed.ops.op_builder import AsyncIOBuilder, PinMemoryBuilder
    import deepspeed.ops

    aio = AsyncIOBuilder().load()
    assert aio is sd.async_io
    h = aio.aio_handle(block_size=1 << 20, queue_depth=8)
    assert isinstance(h, sd.aio_handle) and h.engine == engine
    assert PinMemoryBuilder().load().pin_handle is sd.pin_handle
    assert AsyncIOBuilder().is_compatible()
    assert deepspeed.ops.__compatible_ops__["async_io"]


# Sizes: above DeepSpeed's 1 MiB swap threshold, none aligned to its 1 KiB
# numel alignment, so the unaligned remainder path runs too.
SIZES = (262144 + 3, 300001, 524288 + 255)


def _params(seed):
    g = torch.Generator().manual_seed(seed)
    ps = []
    for i, n in enumerate(SIZES):
        p = torch.nn.Parameter(torch.randn(n, generator=g))
        p.ds_id = "p%d" % i
        ps.append(p)
    return ps


def _grads(step):
    g = torch.Generator().manual_seed(1000 + step)
    return [torch.randn(n, generator=g) for n in SIZES]


def _swapper(kind, tmp_path, pipeline):
    from deepspeed.runtime.swap_tensor.partitioned_optimizer_swapper import \
        PartitionedOptimizerSwapper
    from deepspeed.runtime.swap_tensor.pipelined_optimizer_swapper import \
        PipelinedOptimizerSwapper

    params = _params(1)
    opt = torch.optim.Adam(params, lr=1e-3)
    # Three tensors a parameter (weights, exp_avg, exp_avg_sq), up to three
    # parameters in flight when reads and writes are pipelined.
    cfg = types.SimpleNamespace(buffer_count=4 if not any(pipeline) else 9,
                                pipeline_read=pipeline[0],
                                pipeline_write=pipeline[1])
    cls = (PipelinedOptimizerSwapper if kind == "pipelined"
           else PartitionedOptimizerSwapper)
    sw = cls(swap_config=cfg, aio_config=aio_config(),
             base_folder=str(tmp_path), optimizer=opt,
             largest_numel=max(SIZES), device="cpu", dtype=torch.float32,
             timers=None)
    return sw, opt, params


@pytest.mark.parametrize("kind,pipeline", [
    ("partitioned", (False, False)),
    ("pipelined", (False, False)),
    ("pipelined", (True, False)),
    ("pipelined", (False, True)),
    ("pipelined", (True, True)),
])
def test_optimizer_swapper_matches_in_memory_adam(engine, tmp_path, kind,
                                                  pipeline):
    """Adam over three parameters whose fp32 weights and exp_avg/exp_avg_sq
    live on disk between steps, through DeepSpeed's optimizer swapper;
    after each step the weights equal an in-memory Adam's, bit for bit."""
    sw, opt, params = _swapper(kind, tmp_path, pipeline)
    ref = [torch.nn.Parameter(p.detach().clone()) for p in params]
    ref_opt = torch.optim.Adam(ref, lr=1e-3)
    sw.initialize_parameters(parameters=params,
                             src_tensors=[p.data for p in params])
    pipelined = kind == "pipelined"
    for step in range(3):
        grads = _grads(step)
        for p, g in zip(ref, grads):
            p.grad = g.clone()
        ref_opt.step()
        for i, p in enumerate(params):
            nxt = params[i + 1] if i + 1 < len(params) else None
            if pipelined:
                sw.swap_in_optimizer_state(p, async_parameter=nxt)
            else:
                sw.swap_in_optimizer_state(p)
            assert sd._is_pinned(p.data)
            p.grad = grads[i].clone()
            opt.step()          # every param: the others' state is empty
            p.grad = None
            assert torch.equal(p.data, ref[i].data), (step, i)
            st, rst = opt.state[p], ref_opt.state[ref[i]]
            assert torch.equal(st["exp_avg"], rst["exp_avg"])
            assert torch.equal(st["exp_avg_sq"], rst["exp_avg_sq"])
            if pipelined:
                sw.swap_out_optimizer_state(p, async_swap=nxt is not None)
            else:
                sw.swap_out_optimizer_state(p)
    # One more pass reading everything back from the files.
    for i, p in enumerate(params):
        if pipelined:
            sw.swap_in_optimizer_state(p, async_parameter=None)
        else:
            sw.swap_in_optimizer_state(p)
        assert torch.equal(p.data, ref[i].data)
        assert torch.equal(opt.state[p]["exp_avg_sq"],
                           ref_opt.state[ref[i]]["exp_avg_sq"])
        if pipelined:
            sw.swap_out_optimizer_state(p, async_swap=False)
        else:
            sw.swap_out_optimizer_state(p)


def _ds_config(tmp_path, buffer_count=5, buffer_size=600000):
    from deepspeed.runtime.config import DeepSpeedConfig

    return DeepSpeedConfig({
        "train_batch_size": 1,
        "zero_optimization": {"stage": 3, "offload_param": {
            "device": "nvme", "nvme_path": str(tmp_path),
            "buffer_count": buffer_count, "buffer_size": buffer_size}},
        "aio": {"block_size": 1 << 20, "queue_depth": 8,
                "intra_op_parallelism": 1, "single_submit": False,
                "overlap_events": True},
    })


@pytest.mark.parametrize("dtype", (torch.float32, torch.float16,
                                   torch.bfloat16))
def test_param_swapper_round_trip(engine, tmp_path, dtype):
    from deepspeed.runtime.swap_tensor.partitioned_param_swapper import (
        AsyncPartitionedParameterSwapper, PartitionedParamStatus)

    sw = AsyncPartitionedParameterSwapper(_ds_config(tmp_path), dtype)
    assert isinstance(sw.aio_read_handle, sd.aio_handle)
    g = torch.Generator().manual_seed(7)
    params, want = [], []
    for i, n in enumerate(SIZES):
        p = types.SimpleNamespace(ds_id=i)
        p.ds_tensor = torch.empty(0, dtype=dtype)
        p.ds_tensor.ds_numel = n
        data = torch.randn(n, generator=g).to(dtype)
        buf = sw.get_buffer(p, n)
        buf.copy_(data)
        p.ds_tensor.data = buf
        p.ds_tensor.status = PartitionedParamStatus.AVAILABLE
        params.append(p)
        want.append(data)
    sw.swap_out_and_release(params[:2], async_op=True,
                            force_buffer_release=True)
    sw.swap_out_and_release(params[2:])          # sync: waits for all three
    sw.synchronize_writes()
    for p in params:
        assert p.ds_tensor.status == PartitionedParamStatus.NOT_AVAILABLE
    sw.swap_in(params, async_op=True)
    sw.synchronize_reads()
    for p, w in zip(params, want):
        assert torch.equal(p.ds_tensor.view(torch.uint8),
                           w.view(torch.uint8))
    sw.remove_partition_and_release_buffers(params)
    # swap_into_buffer: an unpinned, unaligned destination takes the
    # swapper's bounce path; a locked, aligned one is read into directly.
    dest = torch.empty(SIZES[1], dtype=dtype)
    sw.swap_into_buffer(params[1], dest)
    assert torch.equal(dest.view(torch.uint8), want[1].view(torch.uint8))


def test_async_tensor_swapper_and_buffer_manager(engine, tmp_path):
    from deepspeed.runtime.swap_tensor.async_swapper import \
        AsyncTensorSwapper
    from deepspeed.runtime.swap_tensor.utils import SwapBufferManager, \
        swap_in_tensors

    h = sd.async_io.aio_handle(1 << 20, 8, False, True, 1)
    mgr = SwapBufferManager(num_elems=1 << 18, count=3, dtype=torch.float32,
                            aio_handle=h)
    bufs = mgr.allocate_all(num_elems=1 << 18, dtype=torch.float32)
    ats = AsyncTensorSwapper(aio_handle=h, numel_alignment=256, timers=None)
    ats.add_buffers(bufs)
    g = torch.Generator().manual_seed(3)
    tensors = [torch.randn(n, generator=g) for n in (100000, 70001, 262144,
                                                     5, 200000)]
    paths = [str(tmp_path / f"t{i}.swp") for i in range(len(tensors))]
    ats.swap_out_tensors(tensor_list=tensors, path_list=paths)
    ats.release_buffers()
    mgr.free(bufs)
    back = [torch.empty_like(t) for t in tensors]
    swap_in_tensors(h, back, paths)
    assert h.wait() == len(back)
    for b, t in zip(back, tensors):
        assert torch.equal(b, t)


def test_fast_persist_writer(engine, tmp_path):
    from deepspeed.io import FastFileWriter, FastFileWriterConfig

    h = sd.async_io.aio_handle(1 << 20, 8, False, True, 1)
    pinned = h.new_cpu_locked_tensor(4 << 20, torch.empty(0,
                                                          dtype=torch.uint8))
    g = torch.Generator().manual_seed(5)
    state = {"w": torch.randn(1000003, generator=g),
             "b": torch.randn(17, generator=g).bfloat16(),
             "step": 42}
    path = str(tmp_path / "ckpt.pt")
    cfg = FastFileWriterConfig(dnvme_handle=h, pinned_tensor=pinned,
                               double_buffer=True, num_parallel_writers=1,
                               writer_rank=0)
    w = FastFileWriter(file_path=path, config=cfg)
    torch.save(state, w)
    w.close()
    back = torch.load(path, weights_only=False)
    assert back["step"] == 42
    assert torch.equal(back["w"], state["w"])
    assert torch.equal(back["b"].view(torch.uint8),
                       state["b"].view(torch.uint8))
