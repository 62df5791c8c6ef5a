"""examples/zero_shard: ZeRO-style sharded AdamW over torch.distributed
(gloo, 2 ranks spawned by torch.multiprocessing), each shard's state in a
swapio store striped over two directories. A run stopped and checkpointed
after 2 steps and resumed must give the losses of a run that never
stopped, bit for bit; a fresh optimizer in place of the resumed one would
not (its moments would start at zero)."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples",
                       "zero_shard", "zero_shard.py")


def run(tmp_path, name, *extra):
    dirs = [tmp_path / name / d for d in ("drive0", "drive1")]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(
        [sys.executable, EXAMPLE, "--spawn", "2", "--steps", "4",
         "--width", "128", "--dirs", ",".join(map(str, dirs)),
         "--ckpt", str(tmp_path / name / "ckpt"), *extra],
        capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    last = json.loads(p.stdout.strip().splitlines()[-1])
    return last["losses"]


def test_resume_gives_identical_losses(tmp_path):
    straight = run(tmp_path, "a")
    assert len(straight) == 4 and all(x > 0 for x in straight)
    first = run(tmp_path, "b", "--stop-at", "2")
    assert first == straight[:2]
    man = json.loads((tmp_path / "b" / "ckpt" / "manifest.json")
                     .read_text())
    assert man["step"] == 2 and man["world"] == 2
    for r in range(2):      # each rank's store, striped over both drives
        for d in ("drive0", "drive1"):
            assert (tmp_path / "b" / d / f"rank{r}" / "data").exists()
    assert (tmp_path / "b" / "drive0" / "rank0" / "index").exists()
    resumed = run(tmp_path, "b", "--resume")
    assert resumed == straight      # bit for bit: float repr equal
