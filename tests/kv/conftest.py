"""Shared fixtures of the KV-engine tests (vLLM, LMCache).

These tests run in the KV venv (scripts/venv-kv.sh: vLLM's CPU build,
LMCache, torch 2.13.0 CPU), into which scripts/test.sh installs the swapio
wheel. Engines run in subprocesses (run_engine, or a test's own Popen
under engine_env), so that pytest's process never holds vLLM's global
state, threads or shared memory; whatever a run leaves in /dev/shm and no
live process still uses is removed after it.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # tiny_model, cpu_offload_spec

# An engine start is 20-40 s here, a short generation about 1 s; this
# bounds one engine process (start, generations, shutdown) with room for a
# machine busy with other work.
ENGINE_TIMEOUT_S = 420


def engine_env(extra=None):
    """The environment of an engine subprocess: vLLM's CPU settings, no
    telemetry, this directory on PYTHONPATH (cpu_offload_spec,
    tiny_model)."""
    env = dict(os.environ)
    env.update({
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "LMCACHE_TRACK_USAGE": "false",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": os.pathsep.join(
            [HERE] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                      if p]),
    })
    if extra:
        env.update(extra)
    return env


def _shm_entries():
    try:
        return set(os.listdir("/dev/shm"))
    except OSError:
        return set()


def _shm_in_use():
    """/dev/shm paths some live process has open or mapped."""
    used = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/maps") as f:
                for line in f:
                    i = line.find("/dev/shm/")
                    if i >= 0:
                        used.add(line[i:].split(" (deleted)")[0].strip())
        except OSError:
            pass
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("/dev/shm/"):
                used.add(target)
    return used


# What vLLM, LMCache, torch and Python's multiprocessing name their shared
# memory and semaphores; nothing else in /dev/shm is ever touched.
_SHM_PREFIXES = ("vllm", "lmcache", "psm_", "sem.mp-", "torch_")


def clean_shm(before):
    """Removes /dev/shm entries made since BEFORE (a _shm_entries() set),
    named as engines name theirs, that no live process uses: what a killed
    or crashed engine left."""
    new = {n for n in _shm_entries() - before
           if n.startswith(_SHM_PREFIXES)}
    if not new:
        return
    used = _shm_in_use()
    for name in new:
        path = "/dev/shm/" + name
        if path in used or not os.path.isfile(path):
            continue
        try:
            os.unlink(path)
        except OSError:
            pass


class Engine:
    """A subprocess in a session of its own; killed with its children
    (by its process group) if it outlives its timeout."""

    def __init__(self, argv, log_path, env=None, cwd=None):
        self.shm_before = _shm_entries()
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._log,
                                     stderr=subprocess.STDOUT,
                                     env=env or engine_env(), cwd=cwd,
                                     start_new_session=True)

    def wait(self, timeout=ENGINE_TIMEOUT_S):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def _group(self):
        """Pids still in the engine's process group (its workers)."""
        pids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.proc.pid:
                pids.append(int(pid))
        return pids

    def close(self):
        self.kill()
        # Workers of the engine live in its process group and may outlive
        # its main process by a moment: end what is left of the group.
        for pid in self._group():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()
        clean_shm(self.shm_before)

    def log_tail(self, n=4000):
        with open(self.log_path, "rb") as f:
            return f.read()[-n:].decode(errors="replace")


def run_engine(spec, tmp_path, name="engine"):
    """Runs engine_run.py on SPEC (a dict, see there) in a subprocess and
    returns its results; fails the test with the log's tail if it fails."""
    spec_path = tmp_path / f"{name}.json"
    out_path = tmp_path / f"{name}.out.json"
    spec_path.write_text(json.dumps(spec))
    eng = Engine([sys.executable, os.path.join(HERE, "engine_run.py"),
                  str(spec_path), str(out_path)],
                 str(tmp_path / f"{name}.log"))
    try:
        rc = eng.wait()
        if rc != 0 or not out_path.exists():
            pytest.fail(f"{name} exited with {rc}:\n{eng.log_tail()}")
    finally:
        eng.close()
    return json.loads(out_path.read_text())


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The tiny Llama of tiny_model.py, built once per session."""
    path = tmp_path_factory.mktemp("tiny-llama")
    r = subprocess.run([sys.executable, os.path.join(HERE, "tiny_model.py"),
                        str(path)], capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        pytest.fail(f"building the tiny model failed:\n{r.stderr[-4000:]}")
    return str(path)
