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
