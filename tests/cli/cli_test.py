#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tests of the swapio command, run by ctest: cli_test.py SWAPIO CASE.

Exit 0 to pass, 1 to fail, 77 to skip (an engine that cannot run here).
Files live in a fresh directory under SWAPIO_TEST_DIR (default /tmp),
removed at the end.
"""
import json
import os
import re
import struct
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib

SKIP = 77
# The source tree: this file is tests/cli/cli_test.py.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SMALL = "16M"


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def run(*args, expect=0, env=None, preexec_fn=None):
    """Run swapio with args; check its exit code; return (stdout, stderr).
    env: variables set on top of this process's environment."""
    p = subprocess.run([SWAPIO, *args], capture_output=True, text=True,
                       timeout=60, env={**os.environ, **env} if env else None,
                       preexec_fn=preexec_fn)
    if p.returncode != expect:
        raise Fail(f"swapio {' '.join(args)}: exit {p.returncode}, "
                   f"expected {expect}\nstdout: {p.stdout}\n"
                   f"stderr: {p.stderr}")
    return p.stdout, p.stderr


def check(cond, what):
    if not cond:
        raise Fail(what)


def usage_error(*args):
    out, err = run(*args, expect=2)
    check("usage:" in err, f"{args}: no usage on stderr: {err!r}")
    check(out == "", f"{args}: usage error wrote to stdout: {out!r}")


def runtime_error(*args, says, env=None):
    _, err = run(*args, expect=1, env=env)
    check(err.startswith("swapio: "), f"{args}: stderr {err!r}")
    check(says in err, f"{args}: {says!r} not in {err!r}")


def case_usage(d):
    out, _ = run("--help")
    check("bench" in out and "sweep" in out and "info" in out, out)
    for cmd in ("bench", "sweep", "info", "demo"):
        check(cmd in out, f"--help does not list {cmd}")
    for cmd in ("bench", "sweep", "info"):
        out, _ = run(cmd, "--help")
        check(out.startswith(f"usage: swapio {cmd}"), out)
        check(run("help", cmd)[0] == out, f"help {cmd} differs")
    check(run("--version")[0].startswith("swapio 0."), "version")
    f = os.path.join(d, "f")
    usage_error()
    usage_error("frobnicate")
    usage_error("bench")
    usage_error("bench", "--file")
    usage_error("bench", "--bogus", "--file", f)
    usage_error("bench", "-f", f, "--size", "12Q")
    usage_error("bench", "-f", f, "--size", "0")
    usage_error("bench", "-f", f, "--size", "-1G")
    usage_error("bench", "-f", f, "--engine", "spdk")
    usage_error("bench", "-f", f, "--queue-depth", "0")
    usage_error("bench", "-f", f, "--queue-depth", "4097")
    usage_error("bench", "-f", f, "--threads", "65")
    usage_error("bench", "-f", f, "--block-size", "1000")
    usage_error("bench", "-f", f, "--block-size", "2G")
    usage_error("bench", "-f", f, "--mode", "sideways")
    usage_error("bench", "-f", f, "--loops", "0")
    usage_error("bench", "-f", f, "extra")
    usage_error("bench", "-f", f, "--op-size", "1000")
    usage_error("bench", "-f", f, "--op-size", "0")
    usage_error("bench", "-f", f, "--op-size", "2G")
    usage_error("bench", "-f", f, "--in-flight", "0")
    usage_error("bench", "-f", f, "--in-flight", "2000")
    # 2 x 1G, and 17 of the default 64M ops, pass the 1 GiB of buffers.
    _, err = run("bench", "-f", f, "--op-size", "1G", "--in-flight", "2",
                 expect=2)
    check("1G in all" in err, err)
    usage_error("bench", "-f", f, "--in-flight", "17")
    usage_error("bench", "--dir", d, "--op-size", "4K")
    usage_error("sweep")
    usage_error("sweep", "-f", f, "--block-sizes", "1M,,8M")
    usage_error("sweep", "-f", f, "--block-sizes", "1M,")
    usage_error("sweep", "-f", f, "--queue-depths", "1,x")
    usage_error("sweep", "-f", f, "--engines", "uring,bogus")
    usage_error("info", d, d)
    usage_error("info", "--bogus")
    # Numbers past what the option can take are bad arguments (exit 2),
    # never a run that fails later (exit 1): one parser for all.
    for big in ("18446744073709551615", "18446744073709551616",
                "9223372036854775808", "8388608T", "17179869184G"):
        usage_error("bench", "-f", f, "--size", big)
        usage_error("sweep", "-f", f, "--size", big)
        usage_error("demo", "adam", "--params", big)
        usage_error("demo", "adam", "--budget", big)
        usage_error("bench", "--dir", d, "--value-size", big)
        usage_error("bench", "--dir", d, "--stripe-unit", big)
        usage_error("bench", "-f", f, "--op-size", big)
        usage_error("bench", "-f", f, "--block-size", big)
        usage_error("sweep", "-f", f, "--block-sizes", "1M," + big)
    usage_error("bench", "-f", f, "--size", "16T", "--loops", "1000000")
    usage_error("bench", "--dir", d, "--stripe-unit", "2T")
    usage_error("bench", "-f", f, "--loops", "4294967297")
    usage_error("bench", "-f", f, "--queue-depth", "4294967297")
    usage_error("sweep", "-f", f, "--queue-depths", "1,4294967297")
    usage_error("demo", "adam", "--params", "65G")
    usage_error("demo", "adam", "--steps", "4294967297")
    check(not os.path.exists(f), "a usage error created the file")
    check(os.listdir(d) == [], f"usage errors left {os.listdir(d)}")


def case_errors(d):
    missing = os.path.join(d, "missing")
    runtime_error("bench", "-f", missing, "--mode", "read",
                  says=f"swapio: {missing}: No such file or directory")
    runtime_error("bench", "-f", os.path.join(missing, "f"),
                  "--size", SMALL, says="No such file or directory")
    runtime_error("bench", "-f", d, "--size", SMALL, says="Is a directory")
    runtime_error("bench", "-f", os.path.join(d, "f"), "--config", missing,
                  says=f"swapio: {missing}: No such file or directory")
    bad = os.path.join(d, "bad.conf")
    with open(bad, "w") as fp:
        fp.write("block_size = 1M\nturbo = on\n")
    runtime_error("bench", "-f", os.path.join(d, "f"), "--config", bad,
                  says=f"swapio: {bad}: Invalid argument")
    small = os.path.join(d, "small")
    with open(small, "wb") as fp:
        fp.write(os.urandom(8192))
    runtime_error("bench", "-f", small, "--mode", "read", "--size", "1M",
                  says="fewer than --size")
    runtime_error("info", missing, says="No such file or directory")
    # Not a file to seek in: ESPIPE, as swapio_file_open(3) promises.
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    for path in ("/dev/null", fifo):
        for mode in ("both", "write", "read"):
            runtime_error("bench", "-f", path, "--size", "1M", "--mode",
                          mode, says=f"swapio: {path}: Illegal seek")
    os.unlink(fifo)
    # A malformed variable: the error names it and its value.
    runtime_error("bench", "-f", os.path.join(d, "f"), "--size", SMALL,
                  env={"SWAPIO_ENGINE": "urng"},
                  says="SWAPIO_ENGINE='urng': unknown engine")
    runtime_error("bench", "--dir", d, "--size", SMALL, "--value-size", "1M",
                  env={"SWAPIO_FAULT_FD": "call=bogus"},
                  says="SWAPIO_FAULT_FD='call=bogus': ")
    check(sorted(os.listdir(d)) == ["bad.conf", "small"],
          f"left behind: {os.listdir(d)}")


PHASE_FIELDS = ("gbps", "cpu_s_per_gb", "syscalls_per_gb", "p50_us", "p99_us")


def check_phase(ph, name):
    check(isinstance(ph, dict), f"{name}: {ph!r}")
    for k in PHASE_FIELDS:
        check(isinstance(ph.get(k), (int, float)), f"{name}.{k}: {ph!r}")
    check(ph["gbps"] > 0 and ph["cpu_s_per_gb"] >= 0, f"{name}: {ph!r}")
    check(ph["p99_us"] >= ph["p50_us"] > 0, f"{name} latency: {ph!r}")
    check(ph["syscalls_per_gb"] > 0, f"{name} syscalls: {ph!r}")


def case_json(d):
    f = os.path.join(d, "f")
    out, _ = run("bench", "-f", f, "-s", SMALL, "-b", "256K", "-q", "4",
                 "-t", "2", "--json")
    r = json.loads(out)
    check(r["engine"] in ("uring", "aio", "threads"), r)
    check(isinstance(r["engine_note"], str), r)
    check(r["block_size"] == 256 << 10 and r["queue_depth"] == 4, r)
    check(r["threads"] == 2 and r["size"] == 16 << 20, r)
    check(r["direct"] is True, f"O_DIRECT expected under {d}: {r}")
    for ph in ("write", "read"):
        check_phase(r[ph], ph)
        check(r[ph]["bytes"] == 16 << 20, r[ph])
    check(not os.path.exists(f), "bench left its file behind")

    out, _ = run("bench", "-f", f, "-s", SMALL, "--mode", "write", "--keep",
                 "--no-direct", "--loops", "2", "--no-pin", "--no-huge",
                 "--json")
    r = json.loads(out)
    check(r["read"] is None and r["direct"] is False, r)
    check(r["pinned"] is False and r["huge"] is False, r)
    check(r["write"]["bytes"] == 32 << 20, r)
    check(os.path.getsize(f) == 16 << 20, "--keep did not keep the file")
    out, _ = run("bench", "-f", f, "--mode", "read", "--json")
    r = json.loads(out)
    check(r["write"] is None and r["size"] == 16 << 20, r)
    check(os.path.exists(f), "bench removed a file it did not create")


def case_verify(d, engine):
    f = os.path.join(d, "f")
    p = subprocess.run([SWAPIO, "bench", "-f", f, "-s", SMALL, "-e", engine,
                        "-b", "128K", "-q", "8", "--verify"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode == 1 and f"engine {engine}:" in p.stderr:
        raise Skip(p.stderr.strip())
    check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
    check(f"engine {engine}" in p.stdout, p.stdout)
    check("every byte read matched" in p.stdout, p.stdout)
    check(not os.path.exists(f), "bench left its file behind")


def case_verify_corrupt(d):
    f = os.path.join(d, "f")
    run("bench", "-f", f, "-s", SMALL, "--mode", "write", "--verify",
        "--keep")
    run("bench", "-f", f, "--mode", "read", "--verify")
    with open(f, "r+b") as fp:
        fp.seek(5_000_003)
        old = fp.read(1)
        fp.seek(5_000_003)
        fp.write(bytes([old[0] ^ 0xff]))
    runtime_error("bench", "-f", f, "--mode", "read", "--verify",
                  says="mismatch at byte 5000003")


def case_no_prealloc(d):
    # The writes grow a new file themselves (the library allocates each
    # extending range): the file must end at exactly --size, verified.
    f = os.path.join(d, "f")
    run("bench", "-f", f, "-s", str(16 * 2**20 + 5), "--mode", "write", "--no-prealloc",
        "--verify", "--keep", "-b", "64K")
    check(os.path.getsize(f) == 16 * 2**20 + 5, f"size {os.path.getsize(f)}")
    out, _ = run("bench", "-f", f, "--mode", "read", "--verify")
    check("every byte read matched" in out, out)


def case_memory(d):
    # Caller memory (one malloc'd region), plain and collapsed into huge
    # pages, carries verified data both ways; a bad kind is a usage error.
    f = os.path.join(d, "f")
    for kind in ("caller", "caller-huge"):
        out, _ = run("bench", "-f", f, "-s", str(8 * 2**20 + 4096),
                     "--memory", kind, "--verify", "--json", "-b", "256K")
        r = json.loads(out)
        check(r["memory"] == kind and not r["pinned"], r)
        check(r["read"]["bytes"] == 8 * 2**20 + 4096, r)
        if kind == "caller-huge":
            check(r["huge_bytes"] >= 0, r)
    usage_error("bench", "-f", f, "--memory", "gpu")
    check(os.listdir(d) == [], f"left behind: {os.listdir(d)}")


def case_sweep(d):
    f = os.path.join(d, "f")
    conf = os.path.join(d, "best.conf")
    out, _ = run("sweep", "-f", f, "-s", SMALL, "-b", "128K,1M",
                 "-q", "1,8", "-t", "1", "--save", conf)
    check(out.count("\n") >= 8 and "best write:" in out
          and "best read:" in out, out)
    check(not os.path.exists(f), "sweep left its file behind")
    saved = {}
    with open(conf) as fp:
        for line in fp:
            line = line.split("#")[0].strip()
            if line:
                k, v = (x.strip() for x in line.split("=", 1))
                saved[k] = v
    check(saved["block_size"] in ("128K", "1M"), saved)
    check(saved["queue_depth"] in ("1", "8") and saved["threads"] == "1",
          saved)
    check(saved["engine"] in ("uring", "aio", "threads"), saved)

    out, _ = run("bench", "-f", f, "-s", SMALL, "--config", conf, "--json")
    r = json.loads(out)
    bs = {"128K": 128 << 10, "1M": 1 << 20}[saved["block_size"]]
    check(r["block_size"] == bs, r)
    check(r["queue_depth"] == int(saved["queue_depth"]), r)
    check(r["engine"] == saved["engine"], r)
    out, _ = run("bench", "-f", f, "-s", SMALL, "--config", conf, "-q", "3",
                 "--json")
    check(json.loads(out)["queue_depth"] == 3, "option did not override")

    out, _ = run("sweep", "-f", f, "-s", SMALL, "-b", "1M", "-q", "4",
                 "-t", "1,2", "-e", "threads", "--json")
    r = json.loads(out)
    check(len(r["points"]) == 2 and r["saved"] is None, r)
    check([p["threads"] for p in r["points"]] == [1, 2], r)
    for k in ("best", "best_read", "best_write"):
        check(0 <= r[k]["index"] < 2 and r[k]["gbps"] > 0, r)
    check(os.listdir(d) == ["best.conf"], f"left behind: {os.listdir(d)}")


def op_phase(ph, name, ops):
    """A phase's op latencies are real numbers, one op per request."""
    check_phase(ph, name)
    check(ph["op_p99_us"] >= ph["op_p50_us"] > 0, f"{name} op: {ph!r}")
    check(ph["op_mean_us"] > 0, f"{name} op mean: {ph!r}")
    check(ph["requests"] == ops, f"{name}: {ph['requests']} requests, "
          f"{ops} ops expected")


def case_small_ops(d):
    """4 KiB ops one at a time in a random order: verified, timed."""
    f = os.path.join(d, "f")
    out, _ = run("bench", "-f", f, "-s", "8M", "--op-size", "4K",
                 "--in-flight", "1", "--random", "--verify", "--json")
    r = json.loads(out)
    check(r["op_bytes"] == 4096 and r["ops_in_flight"] == 1, r)
    check(r["random"] is True, r)
    for ph in ("write", "read"):
        op_phase(r[ph], ph, 2048)
    out, _ = run("bench", "-f", f, "-s", "8M", "--op-size", "256K",
                 "--in-flight", "4")
    check("ops of 256K, 4 in flight," in out, out)
    check("op p50 us" in out and "req p50 us" in out, out)
    out, _ = run("bench", "-f", f, "-s", "8M", "--json")
    r = json.loads(out)
    check(r["random"] is False and r["op_bytes"] == 8 << 20, r)
    check(not os.path.exists(f), "bench left its file behind")


def case_random_odd(d):
    """12K ops at random over 8M (the last one 8K): every byte lands."""
    f = os.path.join(d, "f")
    size = 8 << 20
    ops = -(-size // (12 << 10))
    out, _ = run("bench", "-f", f, "-s", "8M", "--op-size", "12K",
                 "--random", "--mode", "write", "--verify", "--keep",
                 "--json")
    r = json.loads(out)
    check(r["random"] is True and r["op_bytes"] == 12 << 10, r)
    op_phase(r["write"], "write", ops)
    out, _ = run("bench", "-f", f, "--op-size", "12K", "--random",
                 "--mode", "read", "--verify")
    check("every byte read matched" in out, out)
    # In order and whole: an offset the permutation missed would still
    # hold the zeros of fallocate.
    out, _ = run("bench", "-f", f, "--mode", "read", "--verify")
    check("every byte read matched" in out, out)
    with open(f, "r+b") as fp:
        fp.seek(size - 5)
        old = fp.read(1)
        fp.seek(size - 5)
        fp.write(bytes([old[0] ^ 0xff]))
    runtime_error("bench", "-f", f, "--op-size", "12K", "--random",
                  "--in-flight", "3", "--mode", "read", "--verify",
                  says=f"mismatch at byte {size - 5}")


def case_store_random(d):
    """Gets of a store in a random order, 16 in flight, verified."""
    out, _ = run("bench", "--dir", d, "--value-size", "64K", "--in-flight",
                 "16", "--random", "--verify", "-s", "8M", "--json")
    r = json.loads(out)
    check(r["random"] is True and r["ops_in_flight"] == 16, r)
    for ph in ("write", "read"):
        check_phase(r[ph], ph)
        check(r[ph]["bytes"] == 8 << 20, r[ph])
        check(r[ph]["op_p99_us"] >= r[ph]["op_p50_us"] > 0, r[ph])
    out, _ = run("bench", "--dir", d, "--value-size", "64K", "--in-flight",
                 "16", "--random", "--verify", "-s", "8M")
    check("gets in a random order" in out and
          "every byte read matched" in out, out)
    check(os.listdir(d) == [], f"bench left {os.listdir(d)} in {d}")


def case_bench_man(d):
    """Every long option of bench --help is in swapio-bench(1)."""
    page = os.path.join(ROOT, "man", "swapio-bench.1")
    with open(page, encoding="utf-8") as fp:
        text = fp.read()
    out, _ = run("bench", "--help")
    opts = sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", out)))
    check(len(opts) > 20, f"too few options found: {opts}")
    missing = [o for o in opts if o.replace("-", "\\-") not in text]
    check(not missing, f"not in {page}: {missing}")


def case_store_vs_fio(d):
    """bench/store_vs_fio.py --smoke: it runs and prints a table per point."""
    if not shutil.which("fio"):
        raise Skip("fio not found (Debian: fio)")
    script = os.path.join(ROOT, "bench", "store_vs_fio.py")
    p = subprocess.run([sys.executable, script, "--smoke", "--dir", d,
                        "--swapio", SWAPIO, "--quiet"],
                       capture_output=True, text=True, timeout=300)
    check(p.returncode == 0, f"store-vs-fio: exit {p.returncode}\n"
          f"{p.stdout}\n{p.stderr}")
    for want in ("### put 64K qd64:", "### get 64K qd64:", "### lat 4K qd1:",
                 "| null fio/fio, median [range] |", "| op p50 us"):
        check(want in p.stdout, f"no {want!r} in\n{p.stdout}")
    # One GB/s row per point, both tools' figures measured, not n/a.
    rows = [line.split("|") for line in p.stdout.splitlines()
            if line.startswith("| GB/s |")]
    check(len(rows) == 3, f"{len(rows)} GB/s rows in\n{p.stdout}")
    for row in rows:
        check(float(row[2]) > 0 and float(row[3]) > 0, f"GB/s row {row}")
    check(os.listdir(d) == [], f"left behind: {os.listdir(d)}")


def case_info(d):
    out, _ = run("info", d)
    for want in ("swapio 0.", "uring", "aio", "threads", "auto",
                 "filesystem", "O_DIRECT", "memlock", "THP"):
        check(want in out, f"info: no {want!r} in\n{out}")
    check("transfer     ok" in out, out)
    check(os.listdir(d) == [], f"info left behind: {os.listdir(d)}")
    f = os.path.join(d, "f")
    with open(f, "wb") as fp:
        fp.write(os.urandom(2 << 20))
    out, _ = run("info", f)
    check("filesystem" in out and "transfer     ok" in out, out)
    out, _ = run("info")
    check("engines:" in out and "filesystem" not in out, out)


def case_info_store(d):
    """info --store: a store's counters, and a note for a torn tail."""
    run("bench", "--dir", d, "--keep", "-s", "4M", "--value-size", "64K")
    (name,) = os.listdir(d)
    st = os.path.join(d, name)
    out, err = run("info", "--store", st)
    check("keys       64" in out and "0 record(s) dropped" in out, out)
    check("note" not in err, err)
    out, _ = run("info", "--json", "--store", st)
    r = json.loads(out)["store"]
    check(r["keys"] == 64 and r["dropped_records"] == 0, r)
    # The last record (the close's) torn: the open drops it and says so.
    idx = os.path.join(st, "index")
    with open(idx, "r+b") as f:
        f.seek(-100, os.SEEK_END)
        f.write(b"torn")
    out, err = run("info", "--store", st)
    check("1 record(s) dropped" in out, out)
    check(err.startswith("swapio: note: ") and "1 record(s)" in err, err)
    # Damage the close vouched for: an error naming the record.
    with open(idx, "r+b") as f:
        f.seek(3 * 320 + 64)
        f.write(os.urandom(64))
    runtime_error("info", "--store", st, says="record 3 of")
    runtime_error("info", "--store", os.path.join(d, "none"),
                  says="No such file")


def check_png(path, width, height):
    """@path is a whole PNG of @width x @height: magic, IHDR, CRCs, IEND."""
    with open(path, "rb") as fp:
        data = fp.read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: no PNG magic")
    pos, chunks = 8, []
    while pos + 12 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        check(len(body) == n and zlib.crc32(kind + body) == crc,
              f"{path}: chunk {kind!r} truncated or bad CRC")
        chunks.append((kind, body))
        pos += 12 + n
    check(chunks and chunks[0][0] == b"IHDR" and len(chunks[0][1]) == 13,
          f"{path}: first chunk is not IHDR")
    w, h, depth, color = struct.unpack(">IIBB", chunks[0][1][:10])
    check((w, h) == (width, height), f"{path}: {w}x{h}")
    check(depth in (1, 2, 4, 8, 16) and color in (0, 2, 3, 4, 6),
          f"{path}: depth {depth}, colour type {color}")
    check(any(k == b"IDAT" for k, _ in chunks), f"{path}: no IDAT")
    check(chunks[-1][0] == b"IEND" and pos == len(data),
          f"{path}: does not end in IEND")


def case_png(d):
    if not shutil.which("gnuplot"):
        raise Skip("gnuplot not found (Debian: gnuplot-nox)")
    f, png = os.path.join(d, "f"), os.path.join(d, "grid.png")
    run("sweep", "-f", f, "-s", "8M", "-b", "128K,1M", "-q", "1,4",
        "-t", "1", "--png", png)
    check_png(png, 1200, 520)
    # A PNG that cannot be written is a runtime error, not a silent skip.
    _, err = run("sweep", "-f", f, "-s", "8M", "-b", "1M", "-q", "1",
                 "-t", "1", "--png", os.path.join(d, "no", "x.png"),
                 expect=1)
    check("gnuplot" in err, err)


def case_vsfio_png(d):
    """bench/vs_fio.py --png over saved results (--from-json): no fio runs."""
    if not shutil.which("gnuplot"):
        raise Skip("gnuplot not found (Debian: gnuplot-nox)")
    vsfio = os.path.join(ROOT, "bench", "vs_fio.py")
    results = [{"point": f"{m} 1M qd32", "pair": "swapio uring / fio",
                "engine": "uring", "gbps": {"S": 2.0, "F": 2.1, "N": 2.1},
                "cpu": {"S": 0.1, "F": 0.1, "N": 0.1},
                "ratio": [0.9, 0.95, 1.1], "null": [0.97, 1.0, 1.02],
                "cpu_ratio": [1.0], "cpu_null": [1.0],
                "swapio_syscalls_per_gb": 1000,
                "strace_syscalls_per_gb": {"swapio": None, "fio": None}}
               for m in ("write", "read", "write")]
    saved, png = os.path.join(d, "run.json"), os.path.join(d, "ratios.png")
    with open(saved, "w") as fp:
        json.dump({"setup": "a test", "results": results}, fp)
    p = subprocess.run([sys.executable, vsfio, "--from-json", saved,
                        "--png", png], capture_output=True, text=True,
                       timeout=60)
    check(p.returncode == 0, f"vs-fio: {p.returncode} {p.stderr}")
    check("0.95 [0.90..1.10]" in p.stdout, p.stdout)
    check_png(png, 900, 520)


def case_info_json(d):
    out, _ = run("info", "--json", d)
    r = json.loads(out)
    check(r["version"].startswith("0."), r)
    check([e["name"] for e in r["engines"]] == ["uring", "aio", "threads"],
          r)
    for e in r["engines"]:
        check(e["available"] == (e["error"] is None), e)
    check(r["auto"]["engine"] in ("uring", "aio", "threads"), r)
    p = r["path"]
    check(p["path"] == d and p["error"] is None and p["free_bytes"] > 0, p)
    check(p["transfer"]["bytes"] == 1 << 20 and p["transfer"]["written"],
          p)
    check(p["mem_align"] > 0 and p["offset_align"] > 0, p)
    check(isinstance(r["memory"]["root"], bool), r)
    check(os.listdir(d) == [], f"info left behind: {os.listdir(d)}")
    out, _ = run("info", "-j")
    check("path" not in json.loads(out), out)
    out, _ = run("info", "--json", os.path.join(d, "missing"), expect=1)
    check(json.loads(out)["path"]["error"] == "ENOENT", out)


def case_stripe(d):
    """bench --dir over three directories: a striped store, verified."""
    dirs = [os.path.join(d, f"drive{i}") for i in range(3)]
    for x in dirs:
        os.mkdir(x)
    args = [a for x in dirs for a in ("--dir", x)]
    out, _ = run("bench", *args, "-s", SMALL, "--value-size", "3M",
                 "--stripe-unit", "256K", "--verify", "--json")
    r = json.loads(out)
    for ph in ("write", "read"):
        check_phase(r[ph], ph)
        check(r[ph]["bytes"] == 5 * (3 << 20), r[ph])
    out, _ = run("bench", *args, "-s", SMALL, "--value-size", "3M",
                 "--verify")
    check("3 drives, a handle each" in out and
          "every byte read matched" in out, out)
    for x in dirs:
        check(os.listdir(x) == [], f"bench left {os.listdir(x)} in {x}")
    usage_error("bench", "--dir", dirs[0], "-f", os.path.join(d, "f"))
    usage_error("bench", "--dir", dirs[0], "--stripe-unit", "1000")
    runtime_error("bench", "--dir", dirs[0], "--dir",
                  os.path.join(d, "missing", "deeper"), "-s", SMALL,
                  says="missing")


def bench_dirs(d):
    return sorted(x for x in os.listdir(d) if x.startswith("swapio-bench."))


def case_temporaries(d):
    """bench's temporaries: made exclusively and private, never a path
    that was there before, removed at the end and after an error."""
    target = os.path.join(d, "target")
    os.mkdir(target)
    store = ["--dir", d, "-s", "1M", "--value-size", "64K"]

    # The name an older bench used (swapio-bench.PID), planted for the
    # very process that runs bench: a link to another directory.
    def plant_link():
        os.symlink(target, os.path.join(d, f"swapio-bench.{os.getpid()}"))

    run("bench", *store, "--keep", "--verify", preexec_fn=plant_link)
    made = [x for x in bench_dirs(d)
            if not os.path.islink(os.path.join(d, x))]
    check(len(made) == 1, f"bench made {made}")
    st = os.lstat(os.path.join(d, made[0]))
    check(st.st_mode & 0o777 == 0o700, f"{made[0]}: mode {st.st_mode:o}")
    check(os.listdir(target) == [], f"bench wrote through the link: "
          f"{os.listdir(target)}")
    shutil.rmtree(os.path.join(d, made[0]))
    links = bench_dirs(d)
    check(len(links) == 1 and os.path.islink(os.path.join(d, links[0])),
          f"the planted link: {links}")
    os.unlink(os.path.join(d, links[0]))

    # A directory at that name, with a file in it: left as it was.
    def plant_dir():
        x = os.path.join(d, f"swapio-bench.{os.getpid()}")
        os.mkdir(x)
        with open(os.path.join(x, "mine"), "w") as fp:
            fp.write("untouched")

    run("bench", *store, "--verify", preexec_fn=plant_dir)
    left = bench_dirs(d)
    check(len(left) == 1, f"left: {left}")
    x = os.path.join(d, left[0])
    check(os.listdir(x) == ["mine"], f"{x}: {os.listdir(x)}")
    with open(os.path.join(x, "mine")) as fp:
        check(fp.read() == "untouched", "the planted file changed")
    shutil.rmtree(x)

    # Two benches on one directory at once: neither sees the other.
    ps = [subprocess.Popen([SWAPIO, "bench", *store, "--verify"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True) for _ in range(2)]
    for p in ps:
        out, err = p.communicate(timeout=60)
        check(p.returncode == 0, f"exit {p.returncode}: {err}")
        check("every byte read matched" in out, out)
    check(sorted(os.listdir(d)) == ["target"], f"left {os.listdir(d)}")

    # An error after the directory was made: it goes all the same.
    runtime_error("bench", *store, env={"SWAPIO_FAULT": "errno=EIO"},
                  says="Input/output error")
    check(sorted(os.listdir(d)) == ["target"], f"left {os.listdir(d)}")

    # --file: a file bench makes is private; a link already at the path
    # is refused, and what it points to is not created.
    f = os.path.join(d, "f")
    run("bench", "-f", f, "-s", "1M", "--keep")
    check(os.stat(f).st_mode & 0o777 == 0o600,
          f"mode {os.stat(f).st_mode:o}")
    os.unlink(f)
    os.symlink(os.path.join(target, "made"), f)
    runtime_error("bench", "-f", f, "-s", "1M", says="File exists")
    check(os.listdir(target) == [], "bench followed the link")
    os.unlink(f)

    # demo adam's store directory under $TMPDIR goes, after an error too.
    tmp = os.path.join(d, "tmp")
    os.mkdir(tmp)
    _, err = run("demo", "adam", "-n", "1M", "-b", "4M", "-r", "1",
                 "-s", "1", expect=1,
                 env={"TMPDIR": tmp, "SWAPIO_FAULT_FD": "call=bogus"})
    check("SWAPIO_FAULT_FD='call=bogus'" in err, err)
    check(os.listdir(tmp) == [], f"demo left {os.listdir(tmp)}")
    run("demo", "adam", "-n", "1M", "-b", "4M", "-r", "1", "-s", "1",
        env={"TMPDIR": tmp})
    check(os.listdir(tmp) == [], f"demo left {os.listdir(tmp)}")


def case_interrupt(d):
    """Ctrl-C during bench --dir: it stops and removes its directory."""
    # Every completion 200 ms late: a run of 64 values takes 13 s.
    p = subprocess.Popen([SWAPIO, "bench", "--dir", d, "-s", "64M",
                          "--value-size", "1M", "--in-flight", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env={**os.environ,
                                         "SWAPIO_FAULT": "delay_ms=200"})
    for _ in range(200):
        if bench_dirs(d):
            break
        time.sleep(0.05)
    check(bench_dirs(d), "bench made no directory")
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    check(p.returncode == 130, f"exit {p.returncode}: {err}")
    check("interrupted" in err, err)
    check(os.listdir(d) == [], f"left {os.listdir(d)}")


CASES = {
    "temporaries": case_temporaries,
    "interrupt": case_interrupt,
    "stripe": case_stripe,
    "small_ops": case_small_ops,
    "random_odd": case_random_odd,
    "store_random": case_store_random,
    "bench_man": case_bench_man,
    "store_vs_fio": case_store_vs_fio,
    "png": case_png,
    "info_json": case_info_json,
    "info_store": case_info_store,
    "vsfio_png": case_vsfio_png,
    "usage": case_usage,
    "errors": case_errors,
    "json": case_json,
    "verify.uring": lambda d: case_verify(d, "uring"),
    "verify.aio": lambda d: case_verify(d, "aio"),
    "verify.threads": lambda d: case_verify(d, "threads"),
    "verify_corrupt": case_verify_corrupt,
    "no_prealloc": case_no_prealloc,
    "memory": case_memory,
    "sweep": case_sweep,
    "info": case_info,
}


def main():
    global SWAPIO
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print(f"usage: {sys.argv[0]} SWAPIO {{{','.join(CASES)}}}",
              file=sys.stderr)
        return 2
    SWAPIO = sys.argv[1]
    base = os.environ.get("SWAPIO_TEST_DIR", "/tmp")
    d = tempfile.mkdtemp(prefix="swapio-cli-", dir=base)
    try:
        CASES[sys.argv[2]](d)
    except Skip as e:
        print(f"SKIP: {e}", file=sys.stderr)
        return SKIP
    except (Fail, json.JSONDecodeError, KeyError) as e:
        print(f"FAIL: {e!r}" if not isinstance(e, Fail) else f"FAIL: {e}",
              file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
