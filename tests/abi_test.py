#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ABI checks of libswapio.so.

  abi_test.py symbols HEADER LIB
      exports exactly the functions HEADER declares, each under the
      version node SWAPIO_0.1, and nothing else;
  abi_test.py abidiff BASELINE HEADERS_DIR LIB
      abidiff against the committed baseline: fails on an incompatible
      change (abidiff's bit 8), on any removed or changed function,
      variable or type they use, or an abidiff error; prints additions
      without failing.

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
    changed = 0
    for m in re.finditer(r"changes summary: (\d+) Removed(?:, (\d+) Changed)?",
                         r.stdout):
        changed += int(m.group(1)) + int(m.group(2) or 0)
    if r.returncode & 8 or changed:
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
