#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A striped store over 1, 2 and 4 drives: correctness, then speed.

1. Correctness on real filesystems (root): three small ext4 images, each
   on its own loop device (losetup + mkfs.ext4), mounted under the work
   directory; `swapio bench --dir A --dir B --dir C --verify` on every
   engine puts values of an odd size through a store striped over them
   and checks every byte read back. Not root: skipped, with the reason.

2. Speed of the software path: four tmpfs mounts stand in for four
   drives (O_DIRECT works on tmpfs in this kernel). For 1, 2 and 4 of them
   `swapio bench --dir ... --json` writes and reads --size bytes in values
   of --value-size, a handle per drive. Rounds alternate the order of the
   drive counts (1 2 4, 2 4 1, 4 1 2, ...), so that the machine's noise
   falls on every count alike; each figure is the median over the rounds,
   printed with its range. GB/s is 10^9 bytes/s; CPU s/GB is the whole
   process's CPU time per GB, library threads included: if swapio's own
   cost grew with the drive count, CPU s/GB would grow with it.

3. The one real disk: the same store over 1 and 2 directories on it
   (--disk-dir, default: the work directory's filesystem), alternating.

A figure of GB/s against the drive count (medians, range as error bars)
goes to --png through gnuplot (Debian: gnuplot-nox), and every figure to
--json. Everything else it makes lies under the work directory and is
unmounted, detached and deleted at the end, also on Ctrl-C.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from common import find_swapio


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


class Mounts:
    """Mounts and loop devices made here, undone in reverse order."""

    def __init__(self):
        self.undo = []

    def tmpfs(self, path, size):
        os.makedirs(path)
        sh("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path)
        self.undo.append(("umount", path))

    def ext4(self, image, path, size):
        with open(image, "wb") as f:
            f.truncate(size)
        sh("mkfs.ext4", "-q", "-F", "-m", "0", image)
        dev = subprocess.run(["losetup", "-f", "--show", image], check=True,
                             capture_output=True, text=True).stdout.strip()
        self.undo.append(("losetup", dev))
        os.makedirs(path)
        sh("mount", "-t", "ext4", dev, path)
        self.undo.append(("umount", path))

    def close(self):
        for kind, what in reversed(self.undo):
            cmd = ["umount", what] if kind == "umount" else \
                  ["losetup", "-d", what]
            subprocess.run(cmd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        self.undo.clear()


def bench(swapio, dirs, args, *extra):
    cmd = [swapio, "bench", "-s", args.size, "--value-size",
           args.value_size, "--stripe-unit", args.stripe_unit]
    for d in dirs:
        cmd += ["--dir", d]
    p = subprocess.run(cmd + list(extra), capture_output=True, text=True,
                       timeout=600)
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {p.stderr.strip()}")
    return p.stdout


def correctness(swapio, work, args, m):
    if os.geteuid() != 0:
        print("correctness on loop-mounted ext4: skipped (needs root for "
              "losetup and mount)")
        return {"skipped": "not root"}
    dirs = []
    for i in range(3):
        d = os.path.join(work, f"ext4-{i}")
        m.ext4(os.path.join(work, f"ext4-{i}.img"), d, 160 << 20)
        dirs.append(d)
    out = {}
    for engine in ("uring", "aio", "threads"):
        txt = bench(swapio, dirs, argparse.Namespace(
            size="96M", value_size="5M", stripe_unit="256K"),
            "-e", engine, "--verify")
        ok = "every byte read matched" in txt
        out[engine] = ok
        print(f"ext4 x3 (loop devices), {engine:7s}: "
              f"{'every byte matched' if ok else 'MISMATCH'}")
        if not ok:
            raise RuntimeError(txt)
    return out


def rounds(swapio, sets, args):
    """{name: [bench JSON per round]} with the order rotating per round."""
    names = list(sets)
    res = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            res[n].append(json.loads(bench(swapio, sets[n], args,
                                            "--json")))
        print(f"  round {r + 1}/{args.rounds}: "
              + ", ".join(f"{n}: w {res[n][-1]['write']['gbps']:.2f} "
                          f"r {res[n][-1]['read']['gbps']:.2f}"
                          for n in names), flush=True)
    return res


def summary(runs):
    out = {}
    for ph in ("write", "read"):
        for k in ("gbps", "cpu_s_per_gb"):
            v = [r[ph][k] for r in runs]
            out[f"{ph}_{k}"] = {"median": statistics.median(v),
                                "min": min(v), "max": max(v)}
    return out


def table(title, res):
    print(f"\n{title}")
    print(f"{'':10s} {'write GB/s':>22s} {'read GB/s':>22s} "
          f"{'write CPU s/GB':>22s} {'read CPU s/GB':>22s}")
    for n, s in res.items():
        cells = []
        for k in ("write_gbps", "read_gbps", "write_cpu_s_per_gb",
                  "read_cpu_s_per_gb"):
            c = s[k]
            cells.append(f"{c['median']:.3f} [{c['min']:.3f}-"
                         f"{c['max']:.3f}]")
        print(f"{n:10s} " + " ".join(f"{c:>22s}" for c in cells))


def figure(res, png, work):
    dat = os.path.join(work, "stripe.dat")
    with open(dat, "w") as f:
        for n, s in res.items():
            w, r = s["write_gbps"], s["read_gbps"]
            cw, cr = s["write_cpu_s_per_gb"], s["read_cpu_s_per_gb"]
            f.write(f"{n.split()[0]} {w['median']} {w['min']} {w['max']} "
                    f"{r['median']} {r['min']} {r['max']} "
                    f"{cw['median']} {cr['median']}\n")
    gp = os.path.join(work, "stripe.gp")
    with open(gp, "w") as f:
        f.write(f"""set terminal pngcairo size 800,560 font ",11"
set output "{png}"
set title "swapio store striped over N tmpfs drives (software path)"
set xlabel "drives"
set ylabel "GB/s (10^9 B/s), median and range"
set xtics (1, 2, 4)
set xrange [0.5:4.5]
set yrange [0:*]
set y2label "CPU s/GB, median (dashed)"
set y2range [0:*]
set y2tics
set ytics nomirror
set key below horizontal
set grid ytics
plot "{dat}" using 1:2:3:4 with yerrorlines lw 2 pt 7 title "write GB/s", \\
     "{dat}" using 1:5:6:7 with yerrorlines lw 2 pt 5 title "read GB/s", \\
     "{dat}" using 1:8 axes x1y2 with linespoints dt 2 lw 2 pt 7 \\
        title "write CPU s/GB", \\
     "{dat}" using 1:9 axes x1y2 with linespoints dt 2 lw 2 pt 5 \\
        title "read CPU s/GB"
""")
    if not shutil.which("gnuplot"):
        print("figure: skipped (no gnuplot; scripts/install-deps.sh "
              "installs gnuplot-nox)")
        return
    subprocess.run(["gnuplot", gp], check=True)
    print(f"\nfigure: {png}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--swapio")
    ap.add_argument("--work", default=None,
                    help="work directory (default: a new one in /tmp)")
    ap.add_argument("--disk-dir", default=None,
                    help="directory on the real disk (default: --work)")
    ap.add_argument("--size", default="1G")
    ap.add_argument("--value-size", default="64M")
    ap.add_argument("--stripe-unit", default="1M")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--png", default="docs/stripe-scaling.png")
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-disk", action="store_true")
    args = ap.parse_args()
    swapio = find_swapio(args.swapio)
    if not swapio:
        sys.exit("bench/stripe.py: no swapio binary (build first, or "
                 "--swapio)")
    work = tempfile.mkdtemp(prefix="swapio-stripe-", dir=args.work)
    m = Mounts()
    out = {"size": args.size, "value_size": args.value_size,
           "stripe_unit": args.stripe_unit, "rounds": args.rounds}
    try:
        out["correctness"] = correctness(swapio, work, args, m)
        if os.geteuid() != 0:
            print("speed on tmpfs: skipped (needs root to mount tmpfs)")
        else:
            t = []
            for i in range(4):
                t.append(os.path.join(work, f"tmpfs-{i}"))
                m.tmpfs(t[-1], "1200m")
            print("\ntmpfs drives, alternating rounds:")
            sets = {"1 drive": t[:1], "2 drives": t[:2], "4 drives": t[:4]}
            res = {n: summary(v) for n, v in
                   rounds(swapio, sets, args).items()}
            out["tmpfs"] = res
            table("tmpfs (the software path): median [min-max] over "
                  f"{args.rounds} rounds", res)
            figure(res, os.path.abspath(args.png), work)
        if not args.no_disk:
            base = args.disk_dir or work
            d = [tempfile.mkdtemp(prefix="disk-", dir=base)
                 for _ in range(2)]
            print("\nthe disk, 1 and 2 directories, alternating rounds:")
            res = {n: summary(v) for n, v in rounds(
                swapio, {"1 dir": d[:1], "2 dirs": d}, args).items()}
            out["disk"] = res
            table("the disk: median [min-max] over "
                  f"{args.rounds} rounds", res)
    finally:
        m.close()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
