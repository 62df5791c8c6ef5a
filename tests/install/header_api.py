# SPDX-License-Identifier: MIT
"""The public functions that include/swapio.h declares (SWAPIO_API)."""
import re


def public_functions(header):
    """The names of the SWAPIO_API functions in @header, in order."""
    with open(header, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    names = re.findall(r"\bSWAPIO_API\b[^;{]*?\b(swapio_\w+)\s*\(", text)
    return list(dict.fromkeys(names))
