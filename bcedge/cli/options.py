"""Arguments shared by several subcommands: their types, the option groups that ``count``, ``watch``
(and ``eval``) add alike, so each option has one name, one default and one help text, and the check every
command makes of its output paths before any work."""
from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from bcedge.cli.registry import UserError


def check_outputs(inputs: Iterable[str | Path | None], outputs: Mapping[str, str | Path | None]) -> None:
    """Before any work: every output (option -> path) can be written, none is one of the inputs, and no two name
    one file. ``realpath``: a link to an input is that input, and a symlink loop does not raise."""
    from bcedge.atomic import check_writable

    to_read = {os.path.realpath(path) for path in inputs if path is not None}
    named: dict[str, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        check_writable(path)
        real = os.path.realpath(path)
        if real in to_read:
            raise UserError(f"{option} {path} is one of the inputs: it would be overwritten")
        if real in named:
            raise UserError(f"{named[real]} and {option} both name {path}: one would overwrite the other")
        named[real] = option


def input_size(text: str) -> tuple[int, int]:
    """``640x480`` -> (640, 480), for argparse ``type=``."""
    from bcedge.runtime.tiling import size_from_text

    try:
        return size_from_text(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def tile_option(text: str):
    """``auto`` or WIDTHxHEIGHT."""
    return text if text == "auto" else input_size(text)


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


def cell_size_option(text: str) -> float | str:
    """``auto`` or a positive number of pixels (a red cell's diameter in the images)."""
    if text == "auto":
        return text
    return _positive_float(text, "a cell diameter in pixels such as 42, or auto")


def um_per_px_option(text: str) -> float:
    """A positive pixel pitch in micrometres."""
    return _positive_float(text, "a pixel pitch in micrometres such as 0.17")


def gpu_share(text: str) -> float:
    """``--worker-gpus``: a positive number of GPUs, whole or a share of one."""
    value = _positive_float(text, "a number of GPUs such as 1 or 0.5")
    if value > 1 and not value.is_integer():
        raise argparse.ArgumentTypeError(f"{text}: more than one GPU per worker must be a whole number")
    return value


def _positive_float(text: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not 0 < value < float("inf"):  # also NaN
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--backend``, ``--device``: which artifact runs, and on what."""
    parser.add_argument("--model", default="default",
                        help="a bundled model ('default'; 'default-int8': faster on CPUs), or a .onnx / .engine / .pt artifact")
    parser.add_argument("--backend", default="auto", help="onnxruntime, tensorrt or torch (default: by model suffix)")
    parser.add_argument("--device", default="auto",
                        help="cpu, cuda, tensorrt (for ONNX Runtime: its execution provider) or auto")


def add_scale_options(parser: argparse.ArgumentParser) -> None:
    """``--cell-size``, ``--um-per-px``, ``--no-scale-guess``, ``--tile``, ``--no-smoothing``, ``--no-light-correction``,
    ``--no-surround-fill``: how images are brought to the model (scale, tile size, a noisy camera's grain, an uneven
    lamp, an eyepiece's round field; see ``scale_options``)."""
    parser.add_argument("--cell-size", type=cell_size_option, default="auto",
                        help="a red cell's diameter in the images, in px, or auto (default: estimated per image)")
    parser.add_argument("--um-per-px", type=um_per_px_option, default=None,
                        help="the images' pixel pitch in micrometres (instead of --cell-size)")
    parser.add_argument("--no-scale-guess", dest="scale_prior", action="store_false",
                        help="with the automatic scale, start a first image at the training images' typical scale, "
                             "and one of another frame size at the last images' (default: at the scale a small "
                             "network reads from its thumbnail)")
    parser.add_argument("--tile", type=tile_option, default="auto",
                        help="auto (the model input size, or chosen per image for dynamic-input models) or WxH")
    parser.add_argument("--no-smoothing", dest="denoise", action="store_false",
                        help="count grainy images as they are (default: images whose noise is over 2 grey levels at "
                             "the model's scale are blurred slightly first, and flagged 'noisy')")
    parser.add_argument("--no-light-correction", dest="even_light", action="store_false",
                        help="count unevenly lit images as they are (default: an image whose lamp, measured from its "
                             "background, varies by over 1.4x across it is evened first, and flagged 'uneven light')")
    parser.add_argument("--no-surround-fill", dest="fill_surround", action="store_false",
                        help="count an eyepiece's round field as it is (default: a dark surround holding the image's "
                             "corners is filled with the field's background first, so cells the field's edge cuts are "
                             "found as at the image edge; flagged 'field stop')")


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """``--engine``, ``--address``, ``--workers``: count here, or on a Ray cluster (``bcedge.cluster``)."""
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local (default), or ray: images, and bands of huge TIFFs, counted by a Ray cluster's "
                             "workers, one loaded model each, with the same results (pip install 'bcedge[cluster]')")
    parser.add_argument("--address", default=None,
                        help="the Ray cluster, HOST:PORT, ray://HOST:PORT or auto (default: start a local one); "
                             "its machines must see the images at the same paths")
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="Ray workers (default: one per CPU of the cluster, or per --worker-gpus share)")
    parser.add_argument("--worker-gpus", type=gpu_share, default=None, metavar="N",
                        help="GPUs each Ray worker holds (1, or a share such as 0.5 for two workers a GPU); "
                             "each worker then counts on its GPU")


def scale_options(args: argparse.Namespace) -> dict:
    """The keyword arguments ``add_scale_options`` gives ``Counter`` / ``Counter.load``."""
    return {"cell_size": args.cell_size, "um_per_px": args.um_per_px, "tile": args.tile, "denoise": args.denoise,
            "scale_prior": args.scale_prior, "even_light": args.even_light, "fill_surround": args.fill_surround}
