#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The man pages and the header's contract comments agree on error codes.

  man_contract_test.py MAN_DIR HEADER

The man pages of man/ are the reference for the C contract; the comment
above each SWAPIO_API declaration of include/swapio.h is its short form.
For every public function, every error code its header comment names
(-EXXX, SWAPIO_EXXX) must be in the RETURN VALUE or ERRORS section of its
man page (its own, or the family page its .so link names), and every code
those sections name must be in the header comment of at least one of the
functions the page documents. A comment that defers to another function
("errors as swapio_pread()", "the errors of swapio_store_open()") names
that function's codes too, and likewise a section that defers to another page ("As
swapio_pread(3)", "The errors of swapio_store_open(3)") names that page's
codes too. SWAPIO_EFORKED, which the header states once
for every call on an inherited object, counts as named by every function.

Exit 0 pass, 1 fail.
"""
import os
import re
import sys

# Codes the header states once for all calls, not per function.
GLOBAL_CODES = {"SWAPIO_EFORKED"}
# Functions that take an error code as their argument: the codes in their
# comments are examples of input, not errors they return.
CODES_AS_INPUT = {"swapio_strerror", "swapio_errname"}

CODE = re.compile(r"(?:(?<![\w\\])-|\\-)(E[A-Z0-9]{2,})\b|"
                  r"\b(SWAPIO_E(?!NGINE|RRNO)[A-Z0-9]+)\b")


def codes(text):
    out = set()
    for m in CODE.finditer(text):
        out.add("-" + m.group(1) if m.group(1) else m.group(2))
    return out


def contracts(header):
    """{function: contract comment} for every SWAPIO_API function.

    The contract of a declaration is the comment right before it; a
    declaration with none that follows another directly shares its
    comment (a family declared under one comment)."""
    with open(header, encoding="utf-8") as f:
        text = f.read()
    tok = re.compile(r"/\*.*?\*/|\bSWAPIO_API\b[^;{]*?\b(swapio_\w+)\s*\("
                     r"[^;{]*[;{]|\S", re.S)
    out = {}
    last_comment = None     # a comment with nothing but space after it
    last_decl = None        # the contract of a declaration just before
    for m in tok.finditer(text):
        s = m.group(0)
        if s.startswith("/*"):
            last_comment, last_decl = s, None
        elif m.group(1):
            c = last_comment if last_comment is not None else last_decl
            out.setdefault(m.group(1), c or "")
            last_decl, last_comment = c, None
        else:
            last_comment = last_decl = None
    return out


def header_codes(fns, fn, seen=None):
    """The codes @fn's contract names, with those of the functions it
    defers to ("errors as swapio_pread()", "the errors of
    swapio_store_open()")."""
    seen = seen if seen is not None else set()
    if fn in seen or fn in CODES_AS_INPUT:
        return set()
    seen.add(fn)
    text = re.sub(r"\n\s*\*\s?", " ", fns.get(fn, ""))
    out = codes(text)
    for run in re.findall(r"errors\s+(?:as|of)\s+((?:swapio_\w+\(\)"
                          r"[\s,/]*(?:and\s+|or\s+)?)+)", text):
        for ref in re.findall(r"(swapio_\w+)\(\)", run):
            out |= header_codes(fns, ref, seen)
    return out


def so_target(path):
    with open(path, encoding="utf-8") as f:
        first = f.readline().strip()
    m = re.fullmatch(r"\.so\s+man[13]/(\S+)", first)
    return m.group(1) if m else None


def errors_part(mandir, page, seen=None):
    """The RETURN VALUE and ERRORS sections of @page, as one text, with
    those of the pages they defer to ("As swapio_pread(3)", "The errors
    of swapio_store_open(3)") appended."""
    seen = seen if seen is not None else set()
    if page in seen:
        return ""
    seen.add(page)
    with open(os.path.join(mandir, page), encoding="utf-8") as f:
        text = f.read()
    parts = re.findall(r"^\.SH (?:RETURN VALUE|ERRORS)\n(.*?)(?=^\.SH |\Z)",
                       text, re.S | re.M)
    own = "\n".join(parts)
    for ref in re.findall(r"(?:^As|errors of)\s*\n\.BR (swapio_\w+) \(3\)",
                          own, re.M):
        path = os.path.join(mandir, ref + ".3")
        if os.path.exists(path):
            own += "\n" + errors_part(mandir, so_target(path) or ref + ".3",
                                       seen)
    return own


def check(mandir, header):
    fns = contracts(header)
    bad = []
    by_page = {}
    for fn, comment in fns.items():
        path = os.path.join(mandir, fn + ".3")
        if not os.path.exists(path):
            bad.append(f"{fn}: no man page (man_test.py coverage says more)")
            continue
        page = so_target(path) or fn + ".3"
        by_page.setdefault(page, []).append(fn)
    for page, members in sorted(by_page.items()):
        man = codes(errors_part(mandir, page))
        named = set(GLOBAL_CODES)
        for fn in members:
            hdr = header_codes(fns, fn)
            named |= hdr
            for c in sorted(hdr - man):
                bad.append(f"{fn}: the header names {c}; "
                           f"{page} RETURN VALUE/ERRORS does not")
        for c in sorted(man - named):
            bad.append(f"{page}: RETURN VALUE/ERRORS names {c}; the header "
                       f"comment of none of {', '.join(members)} does")
    for b in bad:
        print(b)
    print(f"{len(fns)} public functions on {len(by_page)} pages, "
          f"{len(bad)} disagreements")
    if bad:
        print("the man page is the reference: fix the page or the header "
              "comment (whichever the code proves wrong) so both name the "
              "same codes")
    return 1 if bad else 0


def main(argv):
    if len(argv) == 3:
        return check(argv[1], argv[2])
    print(__doc__)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
