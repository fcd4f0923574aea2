"""Dataset subcommands: ``data stats``, ``data convert`` and ``synth`` (synthetic smears)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bcedge.cli.options import check_outputs
from bcedge.cli.registry import UserError, command


def _dataset_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="dataset folder or annotation file (VOC, COCO, CSV, BBBC041, YOLO data.yaml)")
    p.add_argument("--split", help="split to read, e.g. train (VOC ImageSets/Main/NAME.txt, NAME.json/.csv, "
                                   "or a YOLO data.yaml key)")
    p.add_argument("--format", dest="fmt", help="reader to use instead of sniffing: voc, coco, csv, bbbc041, yolo")
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


@command("data convert", "Convert a dataset to COCO JSON (the project's exchange format) or a YOLO split")
def _data_convert(p: argparse.ArgumentParser):
    _dataset_arguments(p)
    p.add_argument("--to", required=True, choices=["coco", "yolo"],
                   help="output format (yolo: OUT is a folder; the split goes in as --out-split, else as --split, "
                        "else train)")
    p.add_argument("--out-split", default=None,
                   help="the split to write (yolo), when it differs from the one read or the input has none "
                        "(a COCO file)")
    p.add_argument("out", type=Path, help="output file, e.g. train.json, or folder for yolo")
    p.add_argument("--policy", choices=["keep", "drop", "fail"], default="keep",
                   help="what to do with invalid boxes/images (default keep: convert as is, report problems)")

    def run(args) -> int:
        import inspect

        from bcedge.data import load_dataset
        from bcedge.data.formats import writer
        from bcedge.data.validate import validate

        if args.to == "coco":
            check_outputs([args.path], {"OUT": args.out})
        dataset = load_dataset(args.path, args.split, args.fmt)
        report = validate(dataset, policy=args.policy, check_images=args.check_images)
        print(report.format(limit=20))
        write = writer(args.to)
        split = args.out_split or args.split
        takes_split = split and "split" in inspect.signature(write).parameters  # split-per-folder formats
        out = write(dataset, args.out, split=split) if takes_split else write(dataset, args.out)
        boxes = sum(len(r.boxes) for r in dataset.images)
        print(f"wrote {out}: {len(dataset)} images, {boxes} boxes, classes {', '.join(dataset.class_names)}")
        return 0

    return run


# --- synth (synthetic smears) --------------------------------------------------------------------

def _parse_size(text: str) -> tuple[int, int]:
    """``4096x3072`` -> (4096, 3072); ``4096`` -> (4096, 4096)."""
    parts = text.lower().split("x")
    try:
        width, height = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (0, 0)
    except ValueError:
        width = height = 0
    if width < 1 or height < 1:
        raise UserError(f"--size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 4096x3072")
    return width, height


@command("synth", "Generate a synthetic blood smear and its COCO labels (for tests and benchmarks, not real data)")
def _synth(p: argparse.ArgumentParser):
    p.add_argument("--size", required=True, help="WIDTHxHEIGHT in pixels, e.g. 4096x3072 (any size: streamed)")
    p.add_argument("--seed", type=int, default=0, help="same seed and size give the same image and labels")
    p.add_argument("--out", type=Path, required=True, help="image path: .png, .tif/.tiff, or .jpg (<= 8192x8192); "
                                                          "labels go next to it as .json")
    p.add_argument("--parasites", action="store_true", help="add ring-stage parasites inside some RBCs (class 'ring')")
    p.add_argument("--density", type=float, help="RBC area per image area (default 0.6; above ~0.65 the smear saturates)")
    p.add_argument("--scale", type=float, help="cell size factor; 1 = BCCD scale, RBC ~100 px (default 1)")
    p.add_argument("--strip-rows", type=int, help="rows rendered at a time (memory, not pixels; default 256)")

    def run(args) -> int:
        import time

        from bcedge.data.synth import generate_smear

        width, height = _parse_size(args.size)
        options = {k: v for k, v in (("density", args.density), ("scale", args.scale),
                                     ("strip_rows", args.strip_rows)) if v is not None}
        if args.parasites:
            options["parasites"] = True
        start, shown = time.perf_counter(), [0]

        def progress(done: int, total: int) -> None:
            tenth = 10 * done // total
            if width * height >= 4096 * 4096 and tenth > shown[0]:
                shown[0] = tenth
                print(f"  {done}/{total} rows ({time.perf_counter() - start:.0f} s)", file=sys.stderr)

        result = generate_smear(width, height, seed=args.seed, out=args.out, progress=progress, **options)
        counts = ", ".join(f"{name} {n}" for name, n in result.counts.items())
        print(f"wrote {result.image_path} ({width}x{height}, seed {args.seed}) in {time.perf_counter() - start:.1f} s")
        print(f"labels {result.labels_path}: {counts}")
        for note in result.coco["info"]["notes"]:
            print(f"note: {note}")
        return 0

    return run


# --- train / eval (detectors; need the train extra) ----------------------------------------------
