"""File names as reports show them: any name the filesystem allows, as text every output accepts.

A POSIX file name is bytes. Python hands bytes that are not UTF-8 over as lone surrogates, which
SQLite, JSON files and terminals refuse, so reports show them escaped:

    b"smear\\xff.png" -> "smear\\\\xff.png"      (the four characters \\ x f f)

Bytes that are not UTF-8 and control characters become ``\\xNN``; a backslash becomes ``\\\\``, so
two different names never show the same (the watch service keys its state by these names).
Everything else, including any Unicode letter, is shown as it is.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path, PurePath
from typing import Sequence

_NEEDS_ESCAPE = re.compile(r"[\x00-\x1f\x7f\\\ud800-\udfff]")


def _escape(char: str) -> str:
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as os.fsdecode carries it
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return f"\\x{code:02x}"


def escape_name(name: str | bytes | os.PathLike) -> str:
    """``name`` (a str from the filesystem, bytes, or a path; POSIX separators) as printable UTF-8 text."""
    if isinstance(name, PurePath):
        name = name.as_posix()
    text = os.fsdecode(name)
    if not _NEEDS_ESCAPE.search(text):
        return text
    return _NEEDS_ESCAPE.sub(lambda m: _escape(m.group()), text)


def escape_text(text: str) -> str:
    """A message that may quote a file name (an exception's text): only what no UTF-8 output takes (bytes
    that are not UTF-8) is escaped; backslashes and line breaks stay."""
    return re.sub(r"[\ud800-\udfff]", lambda m: _escape(m.group()), text)


def unique_names(paths: Sequence[str | Path]) -> list[str]:
    """For each path, its shortest tail of folders and name that no other path in ``paths`` ends with:
    ``a/x.png``, ``b/x.png`` -> ``a/x.png``, ``b/x.png``; ``a/x.png``, ``b/y.png`` -> ``x.png``, ``y.png``.
    Escaped, so it can name a row, a file inside an output folder, or a line on a terminal."""
    parts = [Path(os.path.abspath(p)).parts for p in paths]
    names: list[str | None] = [None] * len(parts)
    depth = 1
    while any(n is None for n in names) and depth <= max((len(p) for p in parts), default=0):
        tails = [p[-depth:] for p in parts]
        seen = Counter(tails)
        for i, tail in enumerate(tails):
            if names[i] is None and (seen[tail] == 1 or depth >= len(parts[i])):
                names[i] = escape_name("/".join(tail).lstrip("/"))
        depth += 1
    return [n if n is not None else escape_name(Path(p).name) for n, p in zip(names, paths)]
