"""The Python programs of examples/python, each run as a newcomer would
run it (a subprocess of this interpreter, small sizes): they must finish,
say what they checked, and leave nothing behind."""

import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "..", "..", "examples", "python")


def run_example(name, *args, cwd):
    p = subprocess.run([sys.executable, os.path.join(EXAMPLES, name),
                        *args], capture_output=True, text=True, timeout=120,
                       cwd=str(cwd))
    assert p.returncode == 0, f"{name}: exit {p.returncode}\n{p.stderr}"
    return p.stdout


def test_numpy_swap(tmp_path):
    out = run_example("numpy_swap.py", "--dir", str(tmp_path), "--mib", "8",
                      cwd=tmp_path)
    assert "identical" in out and "GB/s" in out
    assert os.listdir(tmp_path) == []


def test_torch_offload(tmp_path):
    pytest.importorskip("torch")
    out = run_example("torch_offload.py", "--dir", str(tmp_path),
                      "--layers", "3", "--mib", "1", cwd=tmp_path)
    assert "6 tensors" in out and "bit for bit" in out
    assert os.listdir(tmp_path) == []


def test_asyncio_reads(tmp_path):
    out = run_example("asyncio_reads.py", "--dir", str(tmp_path),
                      "--chunks", "16", "--kib", "256", cwd=tmp_path)
    assert "16 writes and 16 reads of 256 KiB" in out and "identical" in out
    assert os.listdir(tmp_path) == []


def test_examples_all_tested():
    """A new example script gets a test here."""
    tested = {"numpy_swap.py", "torch_offload.py", "asyncio_reads.py"}
    found = {f for f in os.listdir(EXAMPLES) if f.endswith(".py")}
    assert found == tested, found ^ tested
