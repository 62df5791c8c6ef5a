"""ZeRO-Infinity through the real engine: deepspeed.initialize with ZeRO
stage 3, parameters and optimizer state offloaded to NVMe (pipelined reads
and writes) on swapio's drop-in, against DeepSpeed's own CPU offload.

DeepSpeed 0.19.8 on its CPU accelerator, one process, torch.distributed
over gloo; each run in a process of its own (_zero3_worker.py). A tiny GPT
built under zero.Init: hidden 72, vocab 97, and an MLP of 3650 so that its
two largest weights per block (262,800 elements, 1,051,200 bytes: no
multiple of 512) pass DeepSpeed's 1 MiB swap threshold; the smaller
tensors stay in memory, as DeepSpeed keeps them. Losses, final parameters
and the swap files' contents must equal the reference bit for bit.

The optimizer is DeepSpeed's cpu_adam op, JIT-built with ninja and the C++
compiler on first use and cached outside the clone (see _ext_dir)."""

import glob
import hashlib
import importlib.metadata as md
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import sysconfig

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("deepspeed")
pytest.importorskip("swapio.deepspeed")

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "_zero3_worker.py")
MODEL = {"vocab": 97, "hidden": 72, "heads": 4, "layers": 2, "ctx": 16,
         "ff": 3650}
STEPS = 4
# The weights above the swap threshold, by name.
BIG = [f"blocks.{i}.{w}.weight" for i in range(MODEL["layers"])
       for w in ("fc", "out")]


def _cpu_and_compiler(cxx):
    """What a cached op was compiled for: DeepSpeed builds its CPU ops with
    -march=native, so the CPU model and flags, and the compiler."""
    cpu = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags", "Features")):
                    cpu.append(line)
                if line.strip() == "":
                    break
    except OSError:
        pass
    try:
        ver = subprocess.run([cxx, "--version"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        ver = ""
    return "".join(cpu) + ver


def _private(path, top):
    """True if no one but us (or root) can write path or a folder above it
    up to top: the compiled op is loaded as code."""
    while True:
        st = os.lstat(path)
        if (not stat.S_ISDIR(st.st_mode) or
                st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022):
            return False
        if path == top:
            return True
        path = os.path.dirname(path)


def _ext_dir(cxx):
    """TORCH_EXTENSIONS_DIR for DeepSpeed's JIT-built ops: the variable if
    set, else /var/cache/swapio/torch_extensions/KEY (or
    ~/.cache/swapio/torch_extensions/KEY where /var/cache is not ours),
    KEY naming the Python, torch and DeepSpeed versions and a hash of the
    CPU and compiler: what the op is built for, so that one build serves
    every checkout (the worker loads it from there directly). None if
    neither can be made ours."""
    d = os.environ.get("TORCH_EXTENSIONS_DIR")
    if d:
        return d
    key = "py%d.%d-torch%s-ds%s-%s" % (
        sys.version_info[0], sys.version_info[1], md.version("torch"),
        md.version("deepspeed"),
        hashlib.sha256(_cpu_and_compiler(cxx).encode()).hexdigest()[:12])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser(
        "~/.cache")
    tried = []
    for top in ("/var/cache/swapio", os.path.join(cache, "swapio")):
        d = os.path.join(top, "torch_extensions", key)
        try:
            os.makedirs(os.path.dirname(top), exist_ok=True)
            for p in (top, os.path.dirname(d), d):
                try:
                    os.mkdir(p, 0o700)
                except FileExistsError:
                    pass
        except OSError as e:
            tried.append(f"{d}: {e.strerror}")
            continue
        if _private(d, top):
            return d
        tried.append(f"{d}: writable by others")
    print("DeepSpeed's ops are built uncached: " + "; ".join(tried))
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(env, *args, timeout):
    env = dict(env, MASTER_PORT=str(_free_port()))
    r = subprocess.run([sys.executable, WORKER, *args], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout)
    assert r.returncode == 0, f"{args[0]} failed:\n{r.stdout[-6000:]}"


@pytest.fixture(scope="module")
def ds_env(tmp_path_factory):
    """The workers' environment, with DeepSpeed's cpu_adam built (or found
    in the cache)."""
    cxx = os.environ.get("CXX", "c++")
    bindir = os.path.dirname(sys.executable)
    path = bindir + os.pathsep + os.environ.get("PATH", "")
    missing = []
    if not shutil.which(cxx):
        missing.append(f"a C++ compiler ({cxx}; build-essential)")
    if not shutil.which("ninja", path=path):
        missing.append("ninja (pip install ninja)")
    if not os.path.exists(os.path.join(sysconfig.get_paths()["include"],
                                       "Python.h")):
        missing.append("Python's headers (python3-dev)")
    if missing:
        pytest.skip("DeepSpeed's cpu_adam op is JIT-built, which needs "
                    + ", ".join(missing))
    ext = _ext_dir(cxx) or str(tmp_path_factory.mktemp("torch_extensions"))
    env = dict(os.environ, PATH=path, DS_ACCELERATOR="cpu",
               TORCH_EXTENSIONS_DIR=ext, RANK="0", LOCAL_RANK="0",
               WORLD_SIZE="1", LOCAL_WORLD_SIZE="1", MASTER_ADDR="127.0.0.1")
    env.pop("SWAPIO_DS_ENGINE", None)
    out = tmp_path_factory.mktemp("build") / "build.json"
    # Minutes on two cores when cold; torch's lock makes concurrent runs
    # wait for one build.
    _run(env, "build", str(out), timeout=900)
    with open(out) as f:
        b = json.load(f)
    print(f"cpu_adam loaded in {b['seconds']:.1f} s from {b['file']}")
    return env


def _config(nvme_path):
    """ZeRO-3 with both offloads on NVMe (nvme_path) or on the CPU (None).
    The settings that DeepSpeed 0.19.8 needs here (docs/PYTHON.md): a
    buffer_count of 4 per pipelined Adam sub-group in flight (12 with both
    pipelines), no NVMe parameter prefetch on a model this small, and
    sub-groups small enough that some pass the swap threshold and some do
    not."""
    if nvme_path:
        param = {"device": "nvme", "nvme_path": nvme_path,
                 "pin_memory": True, "buffer_count": 5,
                 "buffer_size": 1 << 20, "max_in_cpu": 0}
        optim = {"device": "nvme", "nvme_path": nvme_path,
                 "pin_memory": True, "buffer_count": 12,
                 "pipeline_read": True, "pipeline_write": True}
    else:
        param = {"device": "cpu", "pin_memory": False}
        optim = {"device": "cpu", "pin_memory": False}
    return {
        "train_batch_size": 4, "train_micro_batch_size_per_gpu": 4,
        "gradient_accumulation_steps": 1, "steps_per_print": 1 << 30,
        "optimizer": {"type": "Adam", "params": {"lr": 1e-2}},
        "zero_optimization": {
            "stage": 3, "offload_param": param, "offload_optimizer": optim,
            "stage3_prefetch_bucket_size": 0,
            "stage3_param_persistence_threshold": 0,
            "stage3_max_live_parameters": 0,
            "sub_group_size": 10000},
        "aio": {"block_size": 1 << 20, "queue_depth": 8,
                "intra_op_parallelism": 1, "single_submit": False,
                "overlap_events": True},
    }


def _train(env, tmp, name, nvme_path, engine):
    args = {"config": _config(nvme_path), "swapio_engine": engine,
            "model": MODEL, "steps": STEPS, "out": str(tmp / f"{name}.pt")}
    with open(tmp / f"{name}.json", "w") as f:
        json.dump(args, f)
    _run(env, "train", str(tmp / f"{name}.json"), timeout=300)
    return torch.load(args["out"])


@pytest.fixture(scope="module")
def reference(ds_env, tmp_path_factory):
    """DeepSpeed's own CPU offload, the same model, data and settings."""
    tmp = tmp_path_factory.mktemp("cpu")
    r = _train(ds_env, tmp, "cpu", None, None)
    assert r["dtypes"] == ["torch.float32"]
    assert len(set(r["losses"])) == STEPS
    for n, p in r["final"].items():
        assert not torch.equal(p, r["initial"][n]), f"{n} did not train"
    return r


def _file_values(path, numel):
    with open(path, "rb") as f:
        raw = f.read()
    assert len(raw) >= 4 * numel, path
    return torch.frombuffer(bytearray(raw[:4 * numel]), dtype=torch.float32)


def test_zero3_nvme_offload_matches_cpu_offload(ds_env, reference, engine,
                                                tmp_path):
    nvme = tmp_path / "nvme"
    nvme.mkdir()
    r = _train(ds_env, tmp_path, "nvme", str(nvme), engine)

    # Bit for bit: every step's loss, every parameter at the start and end.
    assert r["dtypes"] == ["torch.float32"]
    assert r["losses"] == reference["losses"]
    assert r["initial"].keys() == reference["initial"].keys()
    for n in reference["final"]:
        assert torch.equal(r["initial"][n], reference["initial"][n]), n
        assert torch.equal(r["final"][n], reference["final"][n]), n

    # DeepSpeed's swappers ran on swapio's handles, on this engine, and
    # moved data both ways.
    hs = r["handles"]
    assert hs and all(h["engine"] == engine for h in hs)
    assert sum(h["stats"]["bytes_written"] for h in hs) > 0
    assert sum(h["stats"]["bytes_read"] for h in hs) > 0

    # The swap files under nvme_path: created by swapio (0600), and holding
    # the final values. Parameters: <ds_id>_param.tensor.swp; the
    # optimizer's fp32 copy of sub-group A..B (ds_ids): A_B.tensor.swp,
    # beside its exp_avg-, exp_avg_sq- and gradient files.
    root = nvme / "zero_stage_3"
    files = [p for p in glob.glob(str(root / "**"), recursive=True)
             if os.path.isfile(p)]
    for p in files:
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p
    by_id = {i: n for n, i in r["ds_id"].items()}
    final = r["final"]
    params = sorted(glob.glob(str(root / "float32params/rank0/*")))
    assert sorted(os.path.basename(p) for p in params) == sorted(
        f"{r['ds_id'][n]}_param.tensor.swp" for n in BIG)
    for p in params:
        n = by_id[int(os.path.basename(p).split("_")[0])]
        assert torch.equal(_file_values(p, final[n].numel()),
                           final[n].reshape(-1)), p
    groups = 0
    for p in glob.glob(str(root / "optimizer/rank0/*.tensor.swp")):
        m = re.fullmatch(r"(\d+)_(\d+)\.tensor\.swp", os.path.basename(p))
        if not m:
            continue
        a, b = int(m.group(1)), int(m.group(2))
        flat = torch.cat([final[by_id[i]].reshape(-1)
                          for i in range(a, b + 1)])
        assert torch.equal(_file_values(p, flat.numel()), flat), p
        for state in ("exp_avg", "exp_avg_sq"):
            assert os.path.isfile(
                root / f"optimizer/rank0/{state}-{a}_{b}.tensor.swp")
        groups += 1
    assert groups >= len(BIG)
