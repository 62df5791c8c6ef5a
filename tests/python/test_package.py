"""The built package: what the extension links, and the wheel in a fresh
venv without numpy, torch, scikit-build-core, liburing, libaio or xxHash."""

import glob
import os
import re
import subprocess
import sys
import zipfile

import pytest

import swapio
from swapio import _swapio

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
# glibc's own libraries and the loader: nothing else may be needed.
GLIBC = re.compile(r"^(linux-vdso|libc|libm|libpthread|libdl|librt|"
                   r"ld-linux-x86-64)\.so")


def test_ldd_names_only_glibc():
    out = subprocess.run(["ldd", _swapio.__file__], check=True,
                         capture_output=True, text=True).stdout
    libs = [line.split()[0] for line in out.splitlines() if line.strip()]
    libs = [os.path.basename(lib) for lib in libs]
    assert libs, out
    assert all(GLIBC.match(lib) for lib in libs), out


def test_only_pyinit_exported():
    out = subprocess.run(["nm", "-D", "--defined-only", _swapio.__file__],
                         check=True, capture_output=True, text=True).stdout
    syms = [line.split()[-1] for line in out.splitlines()
            if line.split()[1] in "TtDdBb"]
    assert [s.split("@")[0] for s in syms] == ["PyInit__swapio"], out


def test_abi3_module():
    assert _swapio.__file__.endswith(".abi3.so")


def _wheel(tmp_path):
    given = os.environ.get("SWAPIO_WHEEL")
    if given:
        return given
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "-w", str(tmp_path), ROOT], check=True)
    return glob.glob(str(tmp_path / "swapio-*.whl"))[0]


@pytest.mark.slow
def test_wheel_in_fresh_venv(tmp_path):
    whl = _wheel(tmp_path)
    assert re.search(r"-cp311-abi3-linux_x86_64\.whl$", whl), whl
    names = zipfile.ZipFile(whl).namelist()
    assert "swapio/py.typed" in names and "swapio/__init__.pyi" in names
    assert not [n for n in names if n.endswith((".h", ".a", ".pc"))]
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip",
                    str(venv)], check=True)
    py = str(venv / "bin" / "python")
    subprocess.run([sys.executable, "-m", "pip", "--python", py, "install",
                    "-q", "--no-deps", "--no-index", whl], check=True)
    code = ("import swapio, sys\n"
            "assert 'numpy' not in sys.modules\n"
            "p = sys.argv[1]\n"
            "with swapio.Handle() as h:\n"
            "    assert h.pwrite(p, b'abc' * 5000) == 15000\n"
            "    b = bytearray(15000)\n"
            "    assert h.pread(p, b) == 15000 and b == b'abc' * 5000\n"
            "print(swapio.__file__)\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}
    out = subprocess.run([py, "-c", code, str(tmp_path / "w.swp")],
                         check=True, capture_output=True, text=True,
                         env=env, cwd=str(tmp_path)).stdout
    assert str(venv) in out
