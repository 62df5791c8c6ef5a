"""A fast smoke test of the main job's training run (python -m
swapio._train): a tiny GPT, a few steps, --json, losses equal to
in-memory AdamW's."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")


def test_train_smoke(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "swapio._train", "--layers", "1",
         "--d-model", "32", "--heads", "2", "--ctx", "16", "--batch", "2",
         "--steps", "5", "--check-steps", "3", "--budget", "0.25",
         "--corpus", str(tmp_path), "--json", "--quiet"],
        check=True, stdout=subprocess.PIPE, text=True, timeout=120,
        cwd=str(tmp_path)).stdout
    r = json.loads(out)
    assert r["steps"] == 5 and len(r["losses"]) == 5
    assert r["losses_match"] and r["losses"][:3] == r["inmemory_losses"]
    assert r["corpus"] == "a generated grammar"
    for k in ("forward_backward_s", "optimizer_compute_s", "io_wait_s",
              "io_only_s", "overlap_efficiency", "gb_per_s", "peak_rss",
              "inmemory_peak_rss"):
        assert r[k] >= 0, k


def test_train_help():
    out = subprocess.run([sys.executable, "-m", "swapio._train", "--help"],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    assert "--json" in out and "--budget" in out


def test_train_checkpoint(tmp_path):
    """--checkpoint: torch.save and swapio.torch.save side by side; the
    swapio file, reloaded with stock torch.load, equals the state."""
    ck = tmp_path / "ckpt"
    out = subprocess.run(
        [sys.executable, "-m", "swapio._train", "--layers", "1",
         "--d-model", "32", "--heads", "2", "--ctx", "16", "--batch", "2",
         "--steps", "3", "--check-steps", "2", "--budget", "0.25",
         "--corpus", str(tmp_path), "--json", "--quiet",
         "--checkpoint", str(ck)],
        check=True, stdout=subprocess.PIPE, text=True, timeout=120,
        cwd=str(tmp_path)).stdout
    r = json.loads(out)["checkpoint"]
    assert r["equal"] and r["bytes"] > 0
    assert sorted(p.name for p in ck.iterdir()) == ["swapio.pt", "torch.pt"]
    import torch
    a = torch.load(ck / "torch.pt")
    b = torch.load(ck / "swapio.pt")
    assert list(a["model"]) == list(b["model"])
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k])
    assert len(b["optimizer"]["state"]) == len(a["optimizer"]["state"]) > 0
