"""The library's environment variables: a malformed value is an error that
names the variable and the value; fault injection says so on stderr, once
per process, in the wheel too."""

import errno
import os
import subprocess
import sys

import pytest

import swapio


@pytest.mark.parametrize("name, value", [
    ("SWAPIO_ENGINE", "urng"),
    ("SWAPIO_SHARE_NODE", "yes"),
    ("SWAPIO_FAULT", "errno=EBOGUS"),
    ("SWAPIO_GPU_PATH", "fast"),
    ("SWAPIO_GPU_CHUNK", "8M"),
])
def test_bad_variable_named(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(swapio.Error) as e:
        swapio.Handle()
    assert e.value.errno == errno.EINVAL
    assert f"{name}='{value}': " in str(e.value)


def test_local_world_size_named(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "0")
    with pytest.raises(swapio.Error) as e:
        swapio.Handle(share_node=True)
    assert "LOCAL_WORLD_SIZE='0': " in str(e.value)
    swapio.Handle(share_node=False).close()    # not read: not judged


def test_store_fault_fd_named(monkeypatch, tmp_path):
    monkeypatch.setenv("SWAPIO_FAULT_FD", "call=bogus")
    with swapio.Handle() as h:
        with pytest.raises(swapio.Error) as e:
            swapio.Store(str(tmp_path / "st"), h)
    assert e.value.errno == errno.EINVAL
    assert "SWAPIO_FAULT_FD='call=bogus': " in str(e.value)


def test_fault_injection_announced_once():
    code = ("import swapio\n"
            "for _ in range(3):\n"
            "    swapio.Handle().close()\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SWAPIO_")}
    env["SWAPIO_FAULT"] = "delay_ms=1"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ("swapio: SWAPIO_FAULT='delay_ms=1' is set: "
                        "injecting I/O faults (testing only)\n")
