"""The ``bcedge`` command: one subcommand per job, each a few lines calling the library.

Library imports happen inside the handlers so that ``bcedge count`` never loads torch and
``bcedge --help`` stays fast.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

_COMMANDS: dict[str, tuple[str, Callable, Callable]] = {}


class UserError(Exception):
    """A problem the user can fix (bad path, bad option): printed without a traceback."""


def command(name: str, help: str):
    """Register ``add_arguments(parser)`` for subcommand ``name`` ("data stats" nests under "data").

    The decorated function sets up arguments and returns the handler ``run(args) -> int``.
    """

    def register(add_arguments: Callable) -> Callable:
        _COMMANDS[name] = (help, add_arguments, None)
        return add_arguments

    return register


def build_parser() -> argparse.ArgumentParser:
    from bcedge import __version__

    parser = argparse.ArgumentParser(prog="bcedge", description="Detect and count blood cells in microscope smears.")
    parser.add_argument("--version", action="version", version=f"bcedge {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, (help_text, add_arguments, _) in _COMMANDS.items():
        *group, leaf = name.split()
        subparsers = top
        if group:
            if group[0] not in groups:
                group_parser = top.add_parser(group[0], help=f"{group[0]} commands")
                groups[group[0]] = group_parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
            subparsers = groups[group[0]]
        sub = subparsers.add_parser(leaf, help=help_text, description=help_text)
        sub.set_defaults(handler=add_arguments(sub))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except (UserError, FileNotFoundError, ValueError) as exc:
        print(f"bcedge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bcedge: interrupted", file=sys.stderr)
        return 130


# --- data (datasets: stats, convert) -------------------------------------------------------------
def _dataset_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="dataset folder or annotation file (VOC, COCO, CSV, BBBC041)")
    p.add_argument("--split", help="split to read, e.g. train (VOC ImageSets/Main/NAME.txt, or NAME.json/.csv)")
    p.add_argument("--format", dest="fmt", help="reader to use instead of sniffing: voc, coco, csv, bbbc041")
    p.add_argument("--no-check-images", dest="check_images", action="store_false",
                   help="do not open the images (skips missing/unreadable/size/greyscale checks)")


@command("data stats", "Describe a dataset: images, boxes per class, sizes, problems")
def _data_stats(p: argparse.ArgumentParser):
    _dataset_arguments(p)
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the stats as JSON to OUT")

    def run(args) -> int:
        import json

        from bcedge.data import load_dataset
        from bcedge.data.stats import dataset_stats, format_stats

        stats = dataset_stats(load_dataset(args.path, args.split, args.fmt), check_images=args.check_images)
        print(format_stats(stats))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(stats, indent=2))
        return 0

    return run


@command("data convert", "Convert a dataset to COCO JSON (the project's exchange format)")
def _data_convert(p: argparse.ArgumentParser):
    _dataset_arguments(p)
    p.add_argument("--to", required=True, choices=["coco"], help="output format")
    p.add_argument("out", type=Path, help="output file, e.g. train.json")
    p.add_argument("--policy", choices=["keep", "drop", "fail"], default="keep",
                   help="what to do with invalid boxes/images (default keep: convert as is, report problems)")

    def run(args) -> int:
        from bcedge.data import load_dataset
        from bcedge.data.formats import writer
        from bcedge.data.validate import validate

        dataset = load_dataset(args.path, args.split, args.fmt)
        report = validate(dataset, policy=args.policy, check_images=args.check_images)
        print(report.format(limit=20))
        out = writer(args.to)(dataset, args.out)
        boxes = sum(len(r.boxes) for r in dataset.images)
        print(f"wrote {out}: {len(dataset)} images, {boxes} boxes, classes {', '.join(dataset.class_names)}")
        return 0

    return run


# --- synth (synthetic smears) --------------------------------------------------------------------


# --- train / eval (detectors; need the train extra) ----------------------------------------------


def _input_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x480, got {text!r}") from None
    return width, height


@command("train", "Train a detector on a dataset (needs the train extra)")
def _train(p: argparse.ArgumentParser):
    p.add_argument("--data", type=Path, required=True, help="dataset path (VOC folder, CSV, COCO or BBBC041 JSON)")
    p.add_argument("--split", default=None, help="training split name (VOC ImageSets/Main/NAME.txt)")
    p.add_argument("--val-split", default=None, help="validation split, evaluated during training")
    p.add_argument("--arch", default="fcos_efficientnet_lite0", help="<head>_<backbone>; see `bcedge zoo`")
    p.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, history (resumes if present)")
    p.add_argument("--input-size", type=_input_size, default=(640, 480), help="model input WIDTHxHEIGHT")
    p.add_argument("--epochs", type=int, default=24)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--freeze-backbone", action="store_true")
    p.add_argument("--weights", type=Path, default=None, help="local torchvision-format backbone weights")
    p.add_argument("--no-pretrained", action="store_true", help="train the backbone from scratch")
    p.add_argument("--folds", type=int, default=0, help="k-fold cross-validation instead of one run")
    p.add_argument("--eval-every", type=int, default=2, help="evaluate on --val-split every N epochs")
    p.add_argument("--device", default="auto")
    p.add_argument("--max-iters", type=int, default=None, help=argparse.SUPPRESS)

    def run(args) -> int:
        import json

        from bcedge.train import TrainConfig, cross_validate, load_training_data, train

        pretrained = False if args.no_pretrained else (str(args.weights) if args.weights else True)
        cfg = TrainConfig(arch=args.arch, input_size=args.input_size, epochs=args.epochs, batch_size=args.batch_size,
                          lr=args.lr, freeze_backbone=args.freeze_backbone, pretrained=pretrained,
                          device=args.device, max_iters=args.max_iters, eval_every=args.eval_every)
        data = load_training_data(args.data, args.split)
        if args.folds:
            print(json.dumps(cross_validate(cfg, data, args.out, args.folds), indent=2))
            return 0
        val = load_training_data(args.data, args.val_split, data.class_names) if args.val_split else None
        print(f"checkpoint: {train(cfg, data, args.out, val_data=val)}")
        return 0

    return run


@command("zoo", "List the detector architectures (<head>_<backbone>)")
def _zoo(p: argparse.ArgumentParser):
    def run(args) -> int:
        from bcedge.models import zoo

        print("\n".join(zoo()))
        return 0

    return run


# --- export / parity / quantize / build-engine ----------------------------------------------------


# --- count (the runtime) ---------------------------------------------------------------------------


# --- watch (folder service) -----------------------------------------------------------------------


# --- bench ------------------------------------------------------------------------------------------


if __name__ == "__main__":
    sys.exit(main())
