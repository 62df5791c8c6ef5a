#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checkpoint saves and loads: swapio against torch.save/load, DCP's
FileSystemWriter/Reader and HuggingFaceStorageWriter/Reader, safetensors,
DeepSpeed's FastPersist writer and fio, on the same state dicts.

State dicts (the same for every contender):
  gpt    the demo GPT (python -m swapio._train's model) with its AdamW
         state in torch's own form (exp_avg, exp_avg_sq, step)
  mixed  --gb GB of big matrices with many small layer norms and biases
         (odd sizes) beside them
  big    the same bytes in big tensors only

Each round runs every contender once, in an order that rotates from round
to round; the figures are medians over the rounds. fio's sequential write
(and read) of a file of the same size is the ceiling, run twice a round:
the second run is the null line (fio against itself); fio is timed by
its own job runtime (without its start-up and the file's layout). Saves are timed
twice: durable (until the data is on the drive: contenders that do not
sync get an fsync of their files after them, inside the timing: torch.save,
safetensors, and the JSON index of DCP's HuggingFaceStorageWriter; DCP's
writers sync their data files when sync_files=True, their default;
FastPersist fsyncs at close (and gets the directory synced); fio uses
end_fsync=1) and to the page cache only (no sync at all).
DCP's readers load into a state dict made and touched before the timing
(as loading into a model's own tensors does); the other loaders make new
tensors, inside the timing, as their calls do.
Loads are timed cold: the page cache is dropped before every one
(/proc/sys/vm/drop_caches, as root; without root the loads are skipped and
the script says so). torch.load(mmap=True) is timed until every page of
every tensor was touched. CPU s/GB is getrusage of this process and its
children over the call. Every load is compared with the state, bit for bit,
in the first round. Everything lies under --dir and is removed at the end.
"swapio.torch.save, handle=Handle()" is swapio.torch.save through a plain
handle instead of the bounce=True one it makes itself (durable only).
Each state's header says how many physically contiguous runs its tensors
of 1 MiB or more lie in (root only: /proc/self/pagemap).
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.distributed.checkpoint as dcp

import swapio
import swapio.safetensors as ss
import swapio.torch as st

import common


def cpu_now():
    """CPU seconds of this process and its waited-for children (fio)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def fsync_path(p):
    paths = [p] if os.path.isfile(p) else [
        os.path.join(p, e) for e in os.listdir(p)]
    for q in paths:
        fd = os.open(q, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fd = os.open(os.path.dirname(os.path.abspath(p)), os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def rm(p):
    if os.path.isdir(p):
        shutil.rmtree(p)
    elif os.path.exists(p):
        os.unlink(p)


# -- state dicts ------------------------------------------------------------

def state_gpt():
    from swapio._train import GPT
    torch.manual_seed(0)
    m = GPT()
    opt = {"state": {}, "param_groups": [{"lr": 3e-4, "params": []}]}
    for i, p in enumerate(m.parameters()):
        opt["state"][i] = {"step": torch.tensor(100.0),
                           "exp_avg": torch.randn_like(p),
                           "exp_avg_sq": torch.rand_like(p)}
        opt["param_groups"][0]["params"].append(i)
    return {"model": m.state_dict(), "optimizer": opt}


def state_mixed(gb, big_only=False):
    g = torch.Generator().manual_seed(1)
    d, sd, total, layer = 1024, {}, 0, 0
    while total < gb * 1e9:
        shapes = [(d, d)] * 4 + [(4 * d, d), (d, 4 * d)]
        if not big_only:
            shapes += [(d,), (d,), (4 * d,), (d,), (d,), (d,), (3 * d + 1,),
                       (d // 2 - 3,), (17,), (d,)]
        else:
            shapes += [(5 * d, d // 2)]
        for j, s in enumerate(shapes):
            t = torch.randn(s, generator=g)
            sd[f"layers.{layer}.{j}"] = t
            total += t.numel() * 4
        layer += 1
    return sd


def nbytes(obj):
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(nbytes(v) for v in obj)
    return 0


def flat(obj, prefix=""):
    """Tensors of a nested dict by dotted name (DCP, safetensors)."""
    out = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def empty_like_tree(obj):
    if isinstance(obj, torch.Tensor):
        return torch.empty_like(obj)
    if isinstance(obj, dict):
        return {k: empty_like_tree(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [empty_like_tree(v) for v in obj]
    return obj


def equal(a, b):
    if isinstance(a, torch.Tensor):
        return torch.equal(a.view(-1).view(torch.uint8),
                           b.contiguous().view(-1).view(torch.uint8))
    if isinstance(a, dict):
        return sorted(map(str, a)) == sorted(map(str, b)) and all(
            equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    return a == b


# -- contenders -------------------------------------------------------------

def fio(path, size, rw, engine):
    r = subprocess.run(
        ["fio", "--name=ckpt", f"--filename={path}", f"--rw={rw}",
         "--bs=1M", f"--size={size}", "--direct=1", f"--ioengine={engine}",
         "--iodepth=32", "--end_fsync=1" if rw == "write" else "--thread",
         "--output-format=json"], capture_output=True, text=True)
    if r.returncode:
        sys.exit("checkpoint: fio failed: " + r.stderr)
    job = json.loads(r.stdout[r.stdout.index("{"):])["jobs"][0]
    return {"fio_s": job["job_runtime"] / 1e3}


def writers(sd, fsd, d, size, fio_engine, fastpersist=None):
    p = lambda n: os.path.join(d, n)  # noqa: E731

    def torch_save(durable):
        def go():
            with open(p("torch.pt"), "wb") as f:
                torch.save(sd, f)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
            if durable:
                fsync_path(p("torch.pt"))
        return go

    def sft(durable):
        import safetensors.torch
        def go():
            safetensors.torch.save_file(fsd, p("sft.safetensors"))
            if durable:
                fsync_path(p("sft.safetensors"))
        return go

    def hf(durable, name):
        def go():
            w = dcp.HuggingFaceStorageWriter(p(name))
            w.sync_files = durable  # its data files: synced by default
            dcp.save(fsd, storage_writer=w)
            if durable:  # its JSON index is not synced: add that
                fsync_path(p(name))
        return go

    out = [
        ("fio write", "F", lambda: fio(p("fio"), size, "write", fio_engine),
         None, ["fio"]),
        ("fio write (null)", "F", lambda: fio(p("fio0"), size, "write",
                                              fio_engine), None, ["fio0"]),
        ("torch.save", "D", torch_save(True), None, []),
        ("torch.save", "C", torch_save(False), None, []),
        ("DCP FileSystemWriter (default)", "D", lambda: dcp.save(
            sd, storage_writer=dcp.FileSystemWriter(p("dcp"))), None, []),
        ("DCP FileSystemWriter (default)", "C", lambda: dcp.save(
            sd, storage_writer=dcp.FileSystemWriter(p("dcp_c"),
                                                    sync_files=False)),
         None, ["dcp_c"]),
        ("DCP FileSystemWriter thread_count=4", "D", lambda: dcp.save(
            sd, storage_writer=dcp.FileSystemWriter(p("dcp4"),
                                                    thread_count=4)),
         None, ["dcp4"]),
        ("DCP HuggingFaceStorageWriter", "D", hf(True, "hf"), None, []),
        ("DCP HuggingFaceStorageWriter", "C", hf(False, "hf_c"), None,
         ["hf_c"]),
        ("safetensors save_file", "D", sft(True), None, []),
        ("safetensors save_file", "C", sft(False), None, []),
        ("swapio.torch.save", "D", lambda: st.save(sd, p("swapio.pt")),
         None, ["swapio.pt"]),
        ("swapio.torch.save", "C", lambda: st.save(
            sd, p("swapio_c.pt"), durable=False), None, ["swapio_c.pt"]),
        ("swapio.torch.save, handle=Handle()", "D",
         lambda: save_in_place(sd, p("swapio_nb.pt")), None,
         ["swapio_nb.pt"]),
        ("swapio.torch.dcp.Writer", "D", lambda: dcp.save(
            sd, storage_writer=st.dcp.Writer(p("sdcp"))), None, ["sdcp"]),
        ("swapio.torch.dcp.Writer", "C", lambda: dcp.save(
            sd, storage_writer=st.dcp.Writer(p("sdcp_c"),
                                             sync_files=False)),
         None, ["sdcp_c"]),
        ("swapio.safetensors.save_file", "D", lambda: ss.save_file(
            fsd, p("s.safetensors")), None, ["s.safetensors"]),
        ("swapio.safetensors.save_file", "C", lambda: ss.save_file(
            fsd, p("s_c.safetensors"), durable=False), None,
         ["s_c.safetensors"]),
    ]
    if fastpersist is not None:
        out.append(("DeepSpeed FastPersist (FastFileWriter)", "D",
                    lambda: fastpersist(sd, p("fp.pt")), None, ["fp.pt"]))
    return out


def save_in_place(sd, path):
    """swapio.torch.save through a plain Handle(), not the bounce=True one
    it makes itself: storages that sit on the page as their records do
    are written from torch's memory in place."""
    with swapio.Handle() as h:
        st.save(sd, path, handle=h)


def make_fastpersist():
    """DeepSpeed's FastPersist writer with DeepSpeed's checkpoint defaults
    (aio block 1 MiB, queue depth 8, overlap_events, a 64 MiB double
    buffer), over DeepSpeed's own async_io op and its utils op, both
    built by DeepSpeed's builders (minutes on first use, then reused from
    TORCH_EXTENSIONS_DIR). torch.save writes into it (DeepSpeed's
    checkpoint engine does the same); its close() fsyncs.
    The staging buffer is the op's own locked memory (torch's
    pin_memory needs CUDA). None, with the reason printed, when the ops
    cannot be built here."""
    try:
        import logging
        logging.getLogger("DeepSpeed").setLevel(logging.ERROR)
        import deepspeed.io.fast_file_writer as ffw
        from deepspeed.io import FastFileWriter, FastFileWriterConfig
        from deepspeed.ops.op_builder import AsyncIOBuilder
        from deepspeed.ops.op_builder.utils import UtilsBuilder
        # On a CPU-only torch DeepSpeed's accelerator hands out a stub
        # UtilsBuilder ("not implemented on CPU"); the op itself is plain
        # C++: FastFileWriter is given the generic builder.
        ffw.UtilsBuilder = UtilsBuilder
        UtilsBuilder().load(verbose=False)
        h = AsyncIOBuilder().load(verbose=False).aio_handle(
            block_size=1 << 20, queue_depth=8, single_submit=False,
            overlap_events=True, intra_op_parallelism=1)
    except Exception as e:  # noqa: BLE001 - reported, then left out
        print(f"checkpoint: DeepSpeed FastPersist left out: {e!r}",
              file=sys.stderr)
        return None
    buf = h.new_cpu_locked_tensor(64 << 20, torch.empty(0, dtype=torch.uint8))

    def save(sd, path):
        w = FastFileWriter(path, FastFileWriterConfig(
            dnvme_handle=h, pinned_tensor=buf, double_buffer=True))
        torch.save(sd, w)
        w.close()
        fsync_path(path)  # the directory entry (close() fsynced the data)
    return save


def readers(sd, fsd, d, size, fio_engine):
    p = lambda n: os.path.join(d, n)  # noqa: E731

    def touch_mmap():
        x = torch.load(p("torch.pt"), mmap=True)
        s = 0
        for t in flat(x).values():
            b = t.reshape(-1).view(torch.uint8)
            s += int(b[::4096].sum())
        return x

    # DCP loads into a state dict the caller has, as into a model: made
    # and touched before the timing (every DCP reader copies into it).
    dcp_out = empty_like_tree(sd)
    hf_out = {k: torch.empty_like(v) for k, v in fsd.items()}

    def zero(tree):
        for t in flat(tree).values():
            t.zero_()

    def dcp_load(R, path):
        def go():
            dcp.load(dcp_out, storage_reader=R(path))
            return dcp_out
        go.prep = lambda: zero(dcp_out)
        return go

    def hf_load():
        dcp.load(hf_out, storage_reader=dcp.HuggingFaceStorageReader(p("hf")))
        return hf_out
    hf_load.prep = lambda: zero(hf_out)

    def sft_load():
        import safetensors.torch
        return safetensors.torch.load_file(p("sft.safetensors"))

    return [
        ("fio read", lambda: fio(p("fio"), size, "read", fio_engine), None),
        ("fio read (null)", lambda: fio(p("fio0"), size, "read",
                                        fio_engine), None),
        ("torch.load", lambda: torch.load(p("torch.pt")), sd),
        ("torch.load mmap=True (pages touched)", touch_mmap, sd),
        ("DCP FileSystemReader", dcp_load(dcp.FileSystemReader, p("dcp")),
         sd),
        ("DCP HuggingFaceStorageReader", hf_load, fsd),
        ("safetensors load_file", sft_load, fsd),
        ("swapio.torch.load", lambda: st.load(p("torch.pt")), sd),
        ("swapio.torch.dcp.Reader", dcp_load(st.dcp.Reader, p("dcp")), sd),
        ("swapio.safetensors.load_file",
         lambda: ss.load_file(p("sft.safetensors")), fsd),
    ]


def timed(fn):
    """Wall seconds, CPU seconds, result; for fio its own job runtime
    (the process's start and the file's layout are not the drive's)."""
    c, t = cpu_now(), time.perf_counter()
    r = fn()
    t = time.perf_counter() - t
    if isinstance(r, dict) and "fio_s" in r:
        t = r["fio_s"]
    return t, cpu_now() - c, r


def run_state(name, sd, a, cold):
    fsd = {k: v.contiguous() for k, v in flat(sd).items()}
    size = nbytes(sd)
    d = tempfile.mkdtemp(prefix=f"ckpt-{name}-", dir=a.dir)
    W = writers(sd, fsd, d, size, a.fio_engine, a.fastpersist)
    R = readers(sd, fsd, d, size, a.fio_engine)
    res = {}
    try:
        for rnd in range(a.rounds):
            k = rnd % len(W)
            for label, kind, fn, _, tmp in W[k:] + W[:k]:
                for e in tmp:
                    rm(os.path.join(d, e))
                os.sync()
                t, c, _ = timed(fn)
                res.setdefault(("save", label, kind), []).append((t, c))
                if rnd == 0 and label.startswith("DeepSpeed FastPersist"):
                    # what it wrote is torch.save's format: check it
                    back = torch.load(os.path.join(d, "fp.pt"),
                                      weights_only=False)
                    if not equal(sd, back):
                        sys.exit(f"checkpoint: {label} wrote other data")
                    del back
                for e in tmp:
                    if e not in ("fio", "fio0"):
                        rm(os.path.join(d, e))
            if not cold:
                continue
            k = rnd % len(R)
            for label, fn, ref in R[k:] + R[:k]:
                if hasattr(fn, "prep"):
                    fn.prep()
                drop_caches()
                t, c, out = timed(fn)
                if rnd == 0 and ref is not None and out is not None:
                    if not equal(ref, out):
                        sys.exit(f"checkpoint: {label} loaded other data")
                if out is None and ref is not None:
                    continue
                res.setdefault(("load", label, "cold"), []).append((t, c))
                del out
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return size, res


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dir", default="/var/tmp",
                    help="directory on the filesystem to measure")
    ap.add_argument("--gb", type=float, default=1.0,
                    help="size of the mixed and big state dicts, GB")
    ap.add_argument("--states", default="gpt,mixed,big")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fio-engine", default="libaio")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-fastpersist", action="store_true",
                    help="leave DeepSpeed's FastPersist writer out")
    a = ap.parse_args()
    a.fastpersist = None if a.no_fastpersist else make_fastpersist()
    cold = os.geteuid() == 0
    if not cold:
        print("checkpoint: not root: cannot drop the page cache, the cold "
              "loads are skipped", file=sys.stderr)
    torch.set_num_threads(2)
    out = {}
    for name in a.states.split(","):
        sd = {"gpt": state_gpt, "mixed": lambda: state_mixed(a.gb),
              "big": lambda: state_mixed(a.gb, big_only=True)}[name]()
        ntensors = len(flat(sd))
        size, res = run_state(name, sd, a, cold)
        rows = []
        for (op, label, kind), v in res.items():
            t = statistics.median(x[0] for x in v)
            c = statistics.median(x[1] for x in v)
            rows.append({"op": op, "contender": label, "kind": kind,
                         "gb_s": size / 1e9 / t, "cpu_s_gb": c / (size / 1e9),
                         "s": t, "rounds": len(v)})
        out[name] = {"bytes": size, "tensors": ntensors, "rows": rows}
        if not a.json:
            print(f"\n{name}: {size / 1e9:.2f} GB in {ntensors} tensors, "
                  f"{a.rounds} rounds, medians")
            print(common.runs_line(
                "its tensors of 1 MiB or more",
                [(t.data_ptr(), t.nbytes) for t in flat(sd).values()
                 if t.nbytes >= 1 << 20]))
            print("| op | contender | GB/s | CPU s/GB |")
            print("|---|---|---:|---:|")
            for r in rows:
                kind = {"D": "durable", "F": "durable", "C": "page cache",
                        "cold": "cold"}[r["kind"]]
                print(f"| {r['op']} ({kind}) | {r['contender']} | "
                      f"{r['gb_s']:.2f} | {r['cpu_s_gb']:.2f} |")
        del sd
    if a.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
