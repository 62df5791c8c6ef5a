#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ABI checks of libswapio.so.

  abi_test.py symbols HEADER LIB
      exports exactly the functions HEADER declares, each under the
      version node SWAPIO_0.1, and nothing else;
  abi_test.py abidiff BASELINE HEADERS_DIR LIB
      abidiff against the committed baseline: fails on an incompatible
      change (abidiff's bit 8), on any removed or changed function,
      variable or type they use (but a struct taking new members from its
      reserved words, its size unchanged, is compatible), or an abidiff
      error; prints additions without failing.

Exit 0 pass, 1 fail, 77 skip (tool missing).
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from header_api import public_functions  # noqa: E402

NODE = "SWAPIO_0.1"


def symbols(header, lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    exported = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 3 or parts[1] == "A":
            continue
        name, _, version = parts[2].partition("@@")
        exported[name] = version
    declared = set(public_functions(header))
    bad = 0
    for name in sorted(declared - exported.keys()):
        print(f"declared in swapio.h but not exported: {name}")
        bad += 1
    for name in sorted(exported.keys() - declared):
        print(f"exported but not declared in swapio.h: {name}")
        bad += 1
    for name, version in sorted(exported.items()):
        if version != NODE:
            print(f"{name}: version '{version}', want {NODE}")
            bad += 1
    print(f"{len(exported)} symbols exported, {len(declared)} declared")
    return 1 if bad else 0


# What a struct that grew into its reserved words looks like in abidiff's
# report: members inserted where a reserved member was, the reserved
# member shrunk and moved behind them, the size unchanged. Any other line
# in a changed function's report is a change callers would notice.
_BENIGN = [re.compile(p) for p in (
    r"^\[C\] '.*' .*has some indirect sub-type changes:$",
    r"^parameter \d+ of type '.*' has sub-type changes:$",
    r"^return type changed:$",
    r"^in pointed to type '[^']*'( at [^ ]*)?:$",
    r"^in unqualified underlying type '[^']*'( at [^ ]*)?:$",
    r"^type size hasn't changed$",
    r"^\d+ data member insertions?:$",
    r"^\d+ data member changes?( \(\d+ filtered\))?:$",
)]
_INSERTED = re.compile(r"^'[^']*', at offset (\d+) \(in bits\)")
_RESERVED = re.compile(r"^type of '[^']*\breserved\w*(\[\d*\])?' changed:$")
_MOVED = re.compile(r"and offset changed from (\d+) to (\d+)")
# The same on one line, as abidiff words it behind a const-qualified type.
_RESERVED_MOVED = re.compile(r"^'[^']*\breserved\w*(\[\d*\])?' offset changed "
                             r"from (\d+) to (\d+) \(in bits\)")


def reserved_reuse_only(report):
    """True if every changed function in @report changed only because a
    public struct took new members from its reserved words."""
    blocks, cur = [], None
    for line in report.splitlines():
        if line.strip().startswith(("[C] ", "[A] ", "[D] ")) or \
                (line and not line.startswith(" ")):
            cur = [] if line.strip().startswith("[C] ") else None
            if cur is not None:
                blocks.append(cur)
        if cur is not None and line.strip():
            cur.append(line)
    for block in blocks:
        inserted, moved_from, skip_deeper = [], [], None
        for line in block:
            depth = len(line) - len(line.lstrip())
            text = line.strip()
            if skip_deeper is not None and depth > skip_deeper:
                m = _MOVED.search(text)
                if m:
                    moved_from.append(int(m.group(1)))
                continue
            skip_deeper = None
            m = _INSERTED.search(text)
            one = _RESERVED_MOVED.search(text)
            if m:
                inserted.append(int(m.group(1)))
            elif one:
                moved_from.append(int(one.group(2)))
            elif _RESERVED.search(text):
                skip_deeper = depth - 1	# "and offset changed" is a sibling
            elif not any(b.search(text) for b in _BENIGN):
                return False
        if not inserted or not moved_from or min(inserted) < min(moved_from):
            return False
    return bool(blocks)


def abidiff(baseline, headers, lib):
    if not shutil.which("abidiff"):
        print("abidiff not found (Debian: abigail-tools); skipping")
        return 77
    # Types defined outside HEADERS_DIR are private (the insides of the
    # opaque objects): the baseline leaves them out, and so does this.
    r = subprocess.run(["abidiff", "--headers-dir2", headers,
                        "--drop-private-types", baseline, lib],
                       capture_output=True, text=True)
    sys.stdout.write(r.stdout + r.stderr)
    if r.returncode & 3:
        print(f"abidiff failed to run (exit {r.returncode})")
        return 1
    # Bit 8 is a change abidiff knows to break callers (a symbol gone);
    # bit 4 alone may still be a changed type, which breaks them as well.
    # Only additions pass.
    removed = changed = 0
    for m in re.finditer(r"changes summary: (\d+) Removed(?:, (\d+) Changed)?",
                         r.stdout):
        removed += int(m.group(1))
        changed += int(m.group(2) or 0)
    if changed and not removed and reserved_reuse_only(r.stdout):
        print("structs grew into their reserved words, size unchanged: "
              "compatible")
        changed = 0
    if r.returncode & 8 or removed or changed:
        print("incompatible ABI change against " + baseline +
              "; see docs/ARCHITECTURE.md, 'ABI', to make it on purpose")
        return 1
    if r.returncode & 4:
        print("compatible ABI changes (additions): fine")
    else:
        print("ABI identical to the baseline")
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "symbols":
        return symbols(argv[2], argv[3])
    if len(argv) == 5 and argv[1] == "abidiff":
        return abidiff(argv[2], argv[3], argv[4])
    print(__doc__)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
