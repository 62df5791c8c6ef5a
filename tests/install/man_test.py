#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The man pages of man/.

  man_test.py lint MAN_DIR
      every page passes `mandoc -T lint -W warning` (skip without mandoc);
      every .so link names a page that exists;
  man_test.py coverage MAN_DIR HEADER TOOL_SOURCE
      every public function of HEADER has a page (its own or a .so link
      to its family's) whose NAME section names it, and every subcommand
      of the swapio command (TOOL_SOURCE's table) has swapio-CMD(1).

Exit 0 pass, 1 fail, 77 skip.
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from header_api import public_functions  # noqa: E402


def pages(mandir):
    return sorted(f for f in os.listdir(mandir)
                  if re.fullmatch(r"[\w.-]+\.[13]", f))


def so_target(path):
    """The page a `.so man3/x.3` link names, or None for a real page."""
    with open(path, encoding="utf-8") as f:
        first = f.readline().strip()
    m = re.fullmatch(r"\.so\s+man[13]/(\S+)", first)
    return m.group(1) if m else None


def lint(mandir):
    if not shutil.which("mandoc"):
        print("mandoc not found (Debian: mandoc); skipping")
        return 77
    bad = 0
    for p in pages(mandir):
        path = os.path.join(mandir, p)
        target = so_target(path)
        if target:
            if not os.path.exists(os.path.join(mandir, target)) or \
                    so_target(os.path.join(mandir, target)):
                print(f"{p}: .so link to a missing page {target}")
                bad += 1
            continue
        r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", path],
                           capture_output=True, text=True)
        if r.returncode or r.stdout or r.stderr:
            print(f"{p}: mandoc -T lint:\n{r.stdout}{r.stderr}")
            bad += 1
    print(f"{len(pages(mandir))} pages, {bad} with problems")
    return 1 if bad else 0


def names_of(path):
    """The names in a page's NAME section."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^\.SH NAME\n(.*?)\\-", text, re.S | re.M)
    if not m:
        return set()
    return {n.strip() for n in m.group(1).replace("\n", " ").split(",")}


def coverage(mandir, header, tool_source):
    missing, unnamed = [], []
    for fn in public_functions(header):
        path = os.path.join(mandir, fn + ".3")
        if not os.path.exists(path):
            missing.append(fn)
            continue
        target = so_target(path)
        page = os.path.join(mandir, target) if target else path
        if os.path.exists(page) and fn not in names_of(page):
            unnamed.append(f"{fn} (in {os.path.basename(page)})")
    with open(tool_source, encoding="utf-8") as f:
        cmds = re.findall(r'\{\s*"(\w+)",\s*cmd_\w+', f.read())
    for c in cmds:
        if not os.path.exists(os.path.join(mandir, f"swapio-{c}.1")):
            missing.append(f"swapio-{c}(1)")
    for name in ("swapio.1", "swapio.3"):
        if not os.path.exists(os.path.join(mandir, name)):
            missing.append(name)
    if missing:
        print("public functions or commands without a man page "
              f"({len(missing)}):")
        for m in missing:
            print(f"  {m}")
        print("write man/NAME.3 (or a one-line `.so man3/FAMILY.3` link "
              "to the page of its family) and add NAME to that page's "
              "NAME section")
    if unnamed:
        print("pages that do not list the function in NAME:")
        for u in unnamed:
            print(f"  {u}")
    n = len(public_functions(header))
    print(f"{n} public functions, {len(cmds)} commands checked")
    return 1 if missing or unnamed else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "lint":
        return lint(argv[2])
    if len(argv) == 5 and argv[1] == "coverage":
        return coverage(argv[2], argv[3], argv[4])
    print(__doc__)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
