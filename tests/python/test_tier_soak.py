"""A soak of swapio.BlockTier that damages, fills and restarts it, and
counts wrong blocks: there must be none.

Each block's bytes follow from (key, version), and the test remembers the
version of every key's last completed put. A miss is always allowed
(eviction, damage); wrong bytes never. Between rounds the tier is closed,
another owner is killed with SIGKILL mid-batch, and random bytes of the
data file are flipped; the capacity is small, so eviction runs all the
time. Two phases:
- data damaged: a hit must give exactly the last completed put's bytes;
- the index damaged too (the tier then rebuilds it from the blocks' own
  headers): a hit must give the bytes of some put of that key, never a
  mix, another key's or damaged bytes. An older block may come back where
  the record of its eviction was lost; a KV cache's keys name their
  content, so there it is the same block.
SWAPIO_SOAK_SECS sets the length (default 20 s in the suite).
"""

import errno
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np

import swapio

BLOCK = 32 * 1024
KEYS = 96


def content(key, version):
    rng = np.random.default_rng(key * 1_000_003 + version)
    return rng.integers(0, 256, BLOCK, dtype=np.uint8)


def damage(root, rng, index_too):
    d = os.path.join(root, "soak")
    for name in ("data",) + (("index",) if index_too else ()):
        p = os.path.join(d, name)
        size = os.path.getsize(p)
        if not size:
            continue
        with open(p, "r+b") as f:
            for _ in range(rng.randint(10, 40)):
                at = rng.randrange(size)
                f.seek(at)
                b = f.read(1)
                f.seek(at)
                f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))


def run_round(t, rng, versions, hist, stats, secs, strict):
    end = time.monotonic() + secs
    out = np.zeros(8 * BLOCK, dtype=np.uint8)
    while time.monotonic() < end:
        keys = rng.sample(range(KEYS), 8)
        if rng.random() < 0.5:
            vs = [versions.get(k, 0) + 1 for k in keys]
            bufs = [content(k, v) for k, v in zip(keys, vs)]
            bid = t.submit_put(["k%d" % k for k in keys], bufs)
            t.wait()
            (got, res), = t.reap()
            assert got == bid
            for k, v, r in zip(keys, vs, res):
                hist.setdefault(k, set()).add(v)
                if r == 0:
                    versions[k] = v
                else:           # a failed put changes nothing
                    assert r == -errno.ENOSPC, r
        else:
            mv = memoryview(out)
            bid = t.submit_get(["k%d" % k for k in keys],
                               [mv[i * BLOCK:(i + 1) * BLOCK]
                                for i in range(8)])
            t.wait()
            (got, res), = t.reap()
            for i, (k, r) in enumerate(zip(keys, res)):
                if r != 0:
                    assert r in (-errno.ENOENT, -errno.EBADMSG), r
                    stats["misses"] += 1
                    continue
                stats["hits"] += 1
                got_b = out[i * BLOCK:(i + 1) * BLOCK]
                want = versions.get(k)
                if want is not None and np.array_equal(got_b,
                                                       content(k, want)):
                    continue
                if not strict and any(np.array_equal(got_b, content(k, v))
                                      for v in hist.get(k, ())):
                    stats["older"] += 1
                    continue
                stats["wrong"] += 1


KILLED = r"""
import sys, time, numpy as np, swapio
root = sys.argv[1]
t = swapio.BlockTier(root, namespace="soak", capacity=int(sys.argv[2]))
rng = np.random.default_rng(int(sys.argv[3]))
bufs = [rng.integers(0, 256, 32 * 1024, dtype=np.uint8) for _ in range(8)]
print("ready", flush=True)
while True:
    t.submit_put(["junk%d" % i for i in rng.integers(0, 64, 8)], bufs)
    t.reap()
"""


def soak(root, secs, index_too):
    cap = 48 * (BLOCK + 4096)       # half the keys fit
    rng = random.Random(1234)
    versions, hist = {}, {}
    stats = {"hits": 0, "misses": 0, "wrong": 0, "older": 0, "rounds": 0}
    end = time.monotonic() + secs
    while time.monotonic() < end:
        t = swapio.BlockTier(root, namespace="soak", capacity=cap)
        try:
            run_round(t, rng, versions, hist, stats, min(2.0, secs / 6),
                      strict=not index_too)
        finally:
            t.close()
        stats["rounds"] += 1
        if stats["rounds"] % 3 == 0:
            # Another owner killed mid-put, its blocks under other keys.
            p = subprocess.Popen([sys.executable, "-c", KILLED, root,
                                  str(cap), str(stats["rounds"])],
                                 stdout=subprocess.PIPE, text=True)
            assert p.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.05, 0.3))
            p.send_signal(signal.SIGKILL)
            p.wait()
        damage(root, rng, index_too=index_too and stats["rounds"] % 2 == 0)
    print("soak (index damaged too: %s):" % index_too, stats)
    assert stats["wrong"] == 0, stats
    assert stats["rounds"] >= 3 and stats["hits"] > 0, stats
    if not index_too:
        assert stats["older"] == 0, stats


def test_soak_damage_fill_restart(tmp_path):
    secs = float(os.environ.get("SWAPIO_SOAK_SECS", "20"))
    soak(str(tmp_path / "a"), secs / 2, index_too=False)
    soak(str(tmp_path / "b"), secs / 2, index_too=True)
