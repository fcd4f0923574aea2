"""Argument types shared by several subcommands."""
from __future__ import annotations

import argparse


def input_size(text: str) -> tuple[int, int]:
    """``640x480`` -> (640, 480), for argparse ``type=``."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x480, got {text!r}") from None
    return width, height


def tile_option(text: str):
    """``auto``, ``none`` or WIDTHxHEIGHT."""
    return text if text in ("auto", "none") else input_size(text)


def positive_int(text: str) -> int:
    """An integer of at least 1 (a batch size, a worker count)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def pixel_count(text: str) -> int:
    """A number of pixels, ``2e9`` or ``2000000000``; 0 means no limit."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels such as 2e9, got {text!r}") from None
    if not value >= 0:  # also NaN
        raise argparse.ArgumentTypeError(f"must be 0 (no limit) or more, got {text}")
    return int(value)
