"""The small YAML subset that dataset configs (YOLO ``data.yaml``) use, so PyYAML is not a dependency.

Top-level ``key: value`` lines whose value is a scalar (plain, 'single' or "double" quoted; whole
numbers become int), a flow ``[a, b]`` or ``{0: a}`` (may span lines), or an indented block of
``- item`` or ``k: v`` lines. ``#`` comments and ``---`` are ignored. Errors name the file and line.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from bcedge.data.formats import DatasetError


def read_top_level(path: Path, keys: Iterable[str]) -> dict:
    """The values of ``keys`` (those present) at the top level of the YAML file ``path``.

    Other keys' values are skipped unread, so a ``download:`` script or a nested ``roboflow:`` block
    costs nothing and cannot fail the read.
    """
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    blocks: dict[str, tuple[int, str, list[tuple[int, str]]]] = {}  # key -> (line, inline value, block lines)
    current = None
    for number, raw in enumerate(lines, start=1):
        text = _uncomment(raw).rstrip()
        if not text.strip() or text.lstrip().startswith("---"):
            continue
        if not text[0].isspace() and not text.startswith("-"):
            key, colon, value = text.partition(":")
            current = key.strip().strip("'\"")
            if not colon:
                raise DatasetError(f"{path}, line {number}: expected 'key: value', got {text.strip()!r}")
            blocks[current] = (number, value.strip(), [])
        elif current is not None:
            blocks[current][2].append((number, text))
    config = {}
    for key in keys:
        if key in blocks:
            number, value, block = blocks[key]
            config[key] = _value(value, block, path, number)
    return config


def _uncomment(line: str) -> str:
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"" and line[:i].rstrip()[-1:] in ("", ":", "-", "[", "{", ","):  # opens a scalar
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def _value(value: str, block: list[tuple[int, str]], path: Path, number: int):
    if value and value[0] in "[{":
        text = " ".join([value] + [line.strip() for _, line in block])  # a flow value may span lines
        closing = "]" if value[0] == "[" else "}"
        if not text.endswith(closing):
            raise DatasetError(f"{path}, line {number}: {value[0]} is not closed by {closing}")
        items = _split_flow(text[1:-1])
        if closing == "]":
            return [_scalar(item) for item in items]
        return dict(_pair(item, path, number) for item in items)
    if value:
        return _scalar(value)
    if not block:
        return None
    if block[0][1].lstrip().startswith("-"):
        return [_scalar(line.strip()[1:].strip()) for _, line in block if line.strip().startswith("-")]
    return dict(_pair(line.strip(), path, line_number) for line_number, line in block)


def _split_flow(text: str) -> list[str]:
    items, current, quote = [], "", None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == ",":
            items.append(current)
            current = ""
            continue
        current += char
    items.append(current)
    return [item.strip() for item in items if item.strip()]


def _pair(item: str, path: Path, number: int) -> tuple:
    key, colon, value = item.partition(":")
    if not colon:
        raise DatasetError(f"{path}, line {number}: expected 'id: name', got {item!r}")
    return _scalar(key), _scalar(value)


def _scalar(text: str):
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].replace("''", "'") if text[0] == "'" else text[1:-1].replace('\\"', '"')
    return int(text) if re.fullmatch(r"-?\d+", text) else text
