"""The ``bcedge`` command: one subcommand per job, each a few lines calling the library.

Library imports happen inside the handlers so that ``bcedge count`` never loads torch and
``bcedge --help`` stays fast.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

_COMMANDS: dict[str, tuple[str, Callable]] = {}  # name -> (help, add_arguments)


class UserError(Exception):
    """A problem the user can fix (bad path, bad option): printed without a traceback."""


def command(name: str, help: str):
    """Register ``add_arguments(parser)`` for subcommand ``name`` ("data stats" nests under "data").

    The decorated function sets up arguments and returns the handler ``run(args) -> int``.
    """

    def register(add_arguments: Callable) -> Callable:
        _COMMANDS[name] = (help, add_arguments)
        return add_arguments

    return register


def build_parser() -> argparse.ArgumentParser:
    from bcedge import __version__

    parser = argparse.ArgumentParser(prog="bcedge", description="Detect and count blood cells in microscope smears.")
    parser.add_argument("--version", action="version", version=f"bcedge {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, (help_text, add_arguments) in _COMMANDS.items():
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
    from bcedge.artifact import ArtifactError
    from bcedge.backends.base import BackendUnavailable

    try:
        return int(args.handler(args) or 0)
    except (UserError, OSError, ValueError, ArtifactError, BackendUnavailable) as exc:
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


@command("eval", "Evaluate a model on a labelled dataset: COCO mAP, per-class AP, count error")
def _eval(p: argparse.ArgumentParser):
    p.add_argument("model", help="'default', a checkpoint (.pt) or an artifact (.onnx, .engine)")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", default=None)
    p.add_argument("--json", type=Path, default=None, help="write the metrics as JSON")
    p.add_argument("--pr-curves", type=Path, default=None, help="write PR curves (PNG)")
    p.add_argument("--tune", type=Path, default=None, metavar="OUT",
                   help="tune per-class score thresholds and NMS IoU on this data; write the model with them to OUT")
    p.add_argument("--backend", default="auto")
    p.add_argument("--device", default="auto")

    def run(args) -> int:
        import json

        from bcedge.evaluate.artifacts import evaluate_artifact, store_metadata
        from bcedge.report.outputs import write_json_atomic
        from bcedge.train.prepare import load_training_data

        data = load_training_data(args.data, args.split)
        metrics, meta = evaluate_artifact(args.model, data, tune=bool(args.tune), backend=args.backend, device=args.device)
        if args.tune:
            meta.metrics = {**meta.metrics, "tuned_on": {"data": str(args.data), "split": args.split, **_headline(metrics)}}
            print(f"tuned model written to {store_metadata(args.model, meta, args.tune)}")
        summary = {k: v for k, v in metrics.items() if k != "pr_curves"}
        print(json.dumps(summary, indent=1))
        if args.json:
            write_json_atomic(args.json, summary)
        if args.pr_curves:
            from bcedge.evaluate.plots import plot_pr_curves

            plot_pr_curves(metrics, args.pr_curves, title=f"{meta.arch}: mAP50 {metrics['mAP50']:.3f}")
        return 0

    return run


def _headline(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("mAP", "mAP50", "mAP75")}


@command("zoo", "List the detector architectures (<head>_<backbone>)")
def _zoo(p: argparse.ArgumentParser):
    def run(args) -> int:
        from bcedge.models import zoo

        print("\n".join(zoo()))
        return 0

    return run


# --- export / parity / quantize / build-engine ----------------------------------------------------
@command("export", "Export a checkpoint to an ONNX deploy graph (fixed tile size, dynamic batch, metadata inside)")
def _export(p: argparse.ArgumentParser):
    p.add_argument("model", type=Path, help="bcedge checkpoint (.pt)")
    p.add_argument("--out", type=Path, required=True, help="ONNX file to write, e.g. model.onnx")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-simplify", dest="simplify", action="store_false", help="skip onnxslim")
    p.add_argument("--fp16", action="store_true", help="also write OUT with .fp16.onnx (sensitive ops kept FP32)")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the torch vs ONNX Runtime parity check")

    def run(args) -> int:
        from bcedge.convert.torch2onnx import torch2onnx

        out = torch2onnx(args.model, args.out, opset=args.opset, simplify=args.simplify)
        print(f"wrote {out}")
        if args.fp16:
            from bcedge.convert.onnx2fp16 import onnx2fp16

            print(f"wrote {onnx2fp16(out, out.with_suffix('.fp16.onnx'))}")
        if args.check:
            report = _run_parity([str(args.model), str(out)], images=4, batch_size=2)
            print(report.format())
            return 0 if report.ok else 1
        return 0

    return run


def _open_runner(spec: str, device: str):
    """PATH, PATH@BACKEND or PATH@BACKEND:DEVICE -> an open backend."""
    from bcedge.backends import load_backend

    path, _, choice = spec.partition("@")
    backend, _, spec_device = choice.partition(":")
    return load_backend(Path(path), backend=backend or "auto", device=spec_device or device)


def _run_parity(specs: list[str], images: int, batch_size: int, calib: Path | None = None, device: str = "auto",
                score_floor: float | None = None, tolerance=None):
    from bcedge.parity import compare, random_batches, tile_batches

    runners = {spec: _open_runner(spec, device) for spec in specs}
    meta = next(iter(runners.values())).meta
    if calib:
        from bcedge.convert.calibration import CalibrationSet

        tiles = CalibrationSet.load(calib)
        tiles.check_model(meta.input_size, specs[0])
        batches = tile_batches(tiles.tiles[:images], batch_size)
    else:
        batches = random_batches(meta, images, batch_size)
    try:
        return compare(runners, batches, tolerance=tolerance, score_floor=score_floor)
    finally:
        for runner in runners.values():
            runner.close()


@command("parity", "Run models through their backends on the same inputs and compare raw outputs and detections")
def _parity(p: argparse.ArgumentParser):
    p.add_argument("models", nargs="+", help="PATH[@BACKEND[:DEVICE]], e.g. m.pt m.onnx m.onnx@onnxruntime:cuda m.engine; "
                                             "the first is the reference")
    p.add_argument("--images", type=int, default=8, help="how many inputs (default 8)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--calib", type=Path, default=None, help="use tiles of this calibration set instead of random images")
    p.add_argument("--device", default="auto", help="device for backends whose spec names none")
    p.add_argument("--score-floor", type=float, default=None, help="one score threshold for all classes instead of the tuned ones")
    p.add_argument("--box-rtol", type=float, default=None)
    p.add_argument("--box-atol", type=float, default=None, help="px")
    p.add_argument("--score-atol", type=float, default=None)
    p.add_argument("--json", type=Path, default=None, help="write the report as JSON")

    def run(args) -> int:
        import json

        from bcedge.parity import Tolerance, with_tolerance

        if len(args.models) < 2:
            raise UserError("parity needs at least two models to compare")
        changes = {"box_rtol": args.box_rtol, "box_atol": args.box_atol, "score_atol": args.score_atol}
        tolerance = with_tolerance(Tolerance(), **changes) if any(v is not None for v in changes.values()) else None
        report = _run_parity(args.models, args.images, args.batch_size, args.calib, args.device, args.score_floor, tolerance)
        print(report.format())
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report.to_dict(), indent=1))
        return 0 if report.ok else 1

    return run


@command("fp16", "Convert an FP32 ONNX export to FP16, keeping the sensitive operations in FP32")
def _fp16(p: argparse.ArgumentParser):
    p.add_argument("model", type=Path, help="FP32 ONNX from `bcedge export`")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--convert-tail", dest="keep_tail", action="store_false",
                   help="also convert the heads' final activations and box decoding (not recommended)")

    def run(args) -> int:
        from bcedge.convert.onnx2fp16 import onnx2fp16

        print(f"wrote {onnx2fp16(args.model, args.out, keep_tail=args.keep_tail)}")
        return 0

    return run


@command("calib build", "Build a calibration set: representative tiles, rare classes included, with a manifest")
def _calib_build(p: argparse.ArgumentParser):
    p.add_argument("--data", type=Path, required=True, help="dataset (VOC, COCO, CSV, BBBC041)")
    p.add_argument("--split", default=None, help="split to draw from (use the training split, not the evaluation one)")
    p.add_argument("--format", dest="fmt", default=None)
    p.add_argument("--out", type=Path, required=True, help="folder for tiles.npy and manifest.json")
    p.add_argument("--count", type=int, default=500, help="tiles to keep (default 500)")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--model", type=Path, help="take the tile size from this artifact (.onnx, .pt, .engine)")
    size.add_argument("--input-size", type=_input_size, help="tile size WIDTHxHEIGHT")
    p.add_argument("--overlap", type=int, default=None,
                   help="tile overlap in px (default: the counter's, from the model's object size; a quarter tile)")
    p.add_argument("--seed", type=int, default=0)

    def run(args) -> int:
        from bcedge.convert.calibration import TileSpec, build_calibration_set
        from bcedge.data import load_dataset

        if args.model:  # tile size, overlap and padding exactly as the counter uses them for this model
            with _open_runner(str(args.model), "cpu") as runner:
                spec = TileSpec.for_model(runner.meta, args.overlap)
        else:
            spec = TileSpec(args.input_size, min(args.input_size) // 4 if args.overlap is None else args.overlap)
        data = load_dataset(args.data, args.split, args.fmt)
        print(build_calibration_set(data, args.out, spec, count=args.count, seed=args.seed).summary())
        return 0

    return run


@command("calib verify", "Check a calibration set's tiles against its manifest hash")
def _calib_verify(p: argparse.ArgumentParser):
    p.add_argument("path", type=Path)

    def run(args) -> int:
        from bcedge.convert.calibration import CalibrationSet

        print(CalibrationSet.load(args.path, verify=True).summary())
        return 0

    return run


@command("quantize", "Explicit INT8: write a Q/DQ ONNX calibrated on a calibration set (ONNX Runtime, CPU)")
def _quantize(p: argparse.ArgumentParser):
    p.add_argument("model", type=Path, help="FP32 ONNX from `bcedge export`")
    p.add_argument("--calib", type=Path, required=True, help="calibration set folder (`bcedge calib build`)")
    p.add_argument("--out", type=Path, required=True, help="e.g. model.int8.onnx")
    p.add_argument("--target", choices=["tensorrt", "cpu"], default="tensorrt",
                   help="tensorrt: symmetric signed INT8, Conv inputs (also runs in ONNX Runtime); "
                        "cpu: asymmetric U8S8 on every op, fastest in ONNX Runtime on x86, not for TensorRT")
    p.add_argument("--method", choices=["percentile", "minmax", "entropy"], default="percentile")
    p.add_argument("--quantize-final-convs", dest="keep_final_convs", action="store_false",
                   help="also quantize each head's last convolution (kept FP32 by default)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N tiles")
    p.add_argument("--cache", type=Path, default=None, help="tensor-range cache (JSON), reused when present")

    def run(args) -> int:
        from bcedge.convert.quantize import QuantOptions, quantize

        options = QuantOptions(method=args.method, target=args.target, keep_final_convs=args.keep_final_convs,
                               limit=args.limit)
        print(f"wrote {quantize(args.model, args.calib, args.out, options, cache=args.cache)}")
        return 0

    return run


@command("build-engine", "Build a TensorRT engine from an ONNX export (needs TensorRT on this machine)")
def _build_engine(p: argparse.ArgumentParser):
    p.add_argument("model", type=Path, help="ONNX from `bcedge export` (FP32, FP16 or Q/DQ INT8)")
    p.add_argument("--out", type=Path, default=None, help="engine file (default: MODEL with .PRECISION.engine)")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp16")
    p.add_argument("--calib", type=Path, default=None, help="calibration set for implicit INT8 (TensorRT 8.6/10)")
    p.add_argument("--calib-cache", type=Path, default=None)
    p.add_argument("--calibrator", choices=["entropy", "minmax"], default="entropy")
    p.add_argument("--batch", default="1,4,8", help="MIN,OPT,MAX batch of the optimization profile (default 1,4,8)")
    p.add_argument("--workspace", type=int, default=1024, help="builder workspace, MB")
    p.add_argument("--timing-cache", type=Path, default=None)
    typed = p.add_mutually_exclusive_group()
    typed.add_argument("--strongly-typed", dest="strongly_typed", action="store_const", const=True, default=None)
    typed.add_argument("--weakly-typed", dest="strongly_typed", action="store_const", const=False)

    def run(args) -> int:
        from bcedge.convert.onnx2engine import EngineOptions, onnx2engine, parse_batch

        options = EngineOptions(precision=args.precision, batch=parse_batch(args.batch), workspace_mb=args.workspace,
                                calib=args.calib, calib_cache=args.calib_cache, calibrator=args.calibrator,
                                timing_cache=args.timing_cache, strongly_typed=args.strongly_typed)
        out = args.out or args.model.with_suffix(f".{args.precision}.engine")
        print(f"wrote {onnx2engine(args.model, out, options)}")
        return 0

    return run



# --- count (the runtime) ---------------------------------------------------------------------------


def _image_inputs(paths: list[Path]) -> list[Path]:
    """Files as given, folders expanded to the images they hold (sorted); a missing path is an error."""
    from bcedge.imageio import IMAGE_SUFFIXES

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
            if not found:
                raise UserError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"{path}: no such image file or folder")
    return files


def _tile_option(text: str):
    return text if text in ("auto", "none") else _input_size(text)


@command("count", "Count blood cells in images of any size (no torch needed)")
def _count(p: argparse.ArgumentParser):
    p.add_argument("images", type=Path, nargs="+", help="image files or folders")
    p.add_argument("--model", default="default", help="'default' (bundled), or a .onnx / .engine / .pt artifact")
    p.add_argument("--backend", default="auto", help="onnxruntime, tensorrt or torch (default: by model suffix)")
    p.add_argument("--device", default="auto", help="cpu, cuda, tensorrt (ONNX Runtime providers) or auto")
    p.add_argument("--tile", type=_tile_option, default="auto", help="auto (model input size), none, or WxH")
    p.add_argument("--overlap", type=int, default=None, help="tile overlap in px (default: largest cell size)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--json", type=Path, default=None, help="write counts and COCO-style detections here")
    p.add_argument("--csv", type=Path, default=None, help="write per-image counts as CSV here")
    p.add_argument("--overlay", type=Path, default=None, help="folder for overlay PNGs")

    def run(args) -> int:
        from bcedge.imageio import ImageReadError
        from bcedge.report.outputs import counts_csv, counts_table, write_json_atomic
        from bcedge.runtime.counter import Counter

        files = _image_inputs(args.images)
        counter = Counter.load(args.model, backend=args.backend, device=args.device, tile=args.tile,
                               overlap=args.overlap, batch_size=args.batch_size)
        results, failed = [], []
        for image_id, path in enumerate(files, start=1):
            try:
                result = counter.count_file(path)
            except (ImageReadError, ValueError) as exc:
                print(f"bcedge: skipped {exc}", file=sys.stderr)
                failed.append({"path": str(path), "error": str(exc)})
                continue
            results.append(result.to_dict(image_id))
            if args.overlay:
                from bcedge.report.overlay import write_source_overlay

                write_source_overlay(args.overlay / f"{path.stem}.overlay.png", path, result.detections, counter.meta.class_names)
        names = counter.meta.class_names
        if results:
            print(counts_table(results, names))
        if args.json:
            totals = {n: sum(r["counts"][n] for r in results) for n in names}
            write_json_atomic(args.json, {"model": {"arch": counter.meta.arch, "classes": names,
                                                     "backend": counter.backend.describe()},
                                          "totals": totals, "total": sum(totals.values()),
                                          "images": results, "failed": failed})
        if args.csv:
            args.csv.parent.mkdir(parents=True, exist_ok=True)
            args.csv.write_text(counts_csv(results, names))
        return 1 if failed else 0

    return run


# --- watch (folder service) -----------------------------------------------------------------------
@command("watch", "Count every image that lands in a folder, exactly once (a service; --once for a batch)")
def _watch(p: argparse.ArgumentParser):
    p.add_argument("in_dir", type=Path, help="folder to watch")
    p.add_argument("--out", type=Path, required=True,
                   help="results/, summary.csv/.json, quarantine.jsonl, watch.log and the state database")
    p.add_argument("--model", default="default", help="'default' (bundled), or a .onnx / .engine / .pt artifact")
    p.add_argument("--backend", default="auto", help="onnxruntime, tensorrt or torch (default: by model suffix)")
    p.add_argument("--device", default="auto", help="cpu, cuda, tensorrt or auto")
    p.add_argument("--recursive", action="store_true", help="also watch subfolders")
    p.add_argument("--workers", type=int, default=2, help="files processed at once (default 2)")
    p.add_argument("--once", action="store_true", help="process what is there, then exit (batch mode)")
    p.add_argument("--poll", action="store_true", help="poll instead of filesystem events (automatic on NFS/SMB)")
    p.add_argument("--poll-interval", type=float, default=2.0, help="seconds between polls (default 2)")
    p.add_argument("--settle", type=float, default=1.0,
                   help="a file is complete once unchanged this many seconds, or renamed into place (default 1)")
    p.add_argument("--overlays", action="store_true", help="also write OUT/overlays/<path>.png")
    p.add_argument("--max-pixels", type=float, default=5e8,
                   help="quarantine images larger than this (default 5e8; 0: no cap)")
    p.add_argument("--ignore", action="append", default=[], metavar="GLOB",
                   help="skip matching files, e.g. '*.xml' (repeatable)")
    p.add_argument("--grace", type=float, default=30.0,
                   help="on SIGINT/SIGTERM, seconds to finish files in flight before rolling them back")
    p.add_argument("--quiet", action="store_true", help="no status line")

    def run(args) -> int:
        import logging

        from bcedge.watch import WatchConfig, WatchService, service
        from bcedge.watch.progress import TextFormatter

        config = WatchConfig(args.in_dir, args.out, recursive=args.recursive, workers=args.workers, once=args.once,
                             poll=True if args.poll else None, poll_interval=args.poll_interval, settle=args.settle,
                             overlays=args.overlays, max_pixels=int(args.max_pixels) or None,
                             ignore=tuple(args.ignore), grace=args.grace, model_name=str(args.model))
        counter = service.open_counter(args.model, backend=args.backend, device=args.device)
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(TextFormatter())
        console.setLevel(logging.WARNING)
        logging.getLogger("bcedge.watch").addHandler(console)
        try:
            return int(WatchService(counter, config, show_status=not args.quiet).run())
        finally:
            logging.getLogger("bcedge.watch").removeHandler(console)

    return run


# --- bench ------------------------------------------------------------------------------------------
def _checkpoint_pair(text: str) -> tuple[str, Path]:
    arch, sep, path = text.partition("=")
    if not sep or not arch or not path:
        raise argparse.ArgumentTypeError(f"expected ARCH=PATH such as fcos_efficientnet_lite0=runs/best.pt, got {text!r}")
    return arch, Path(path)


def _bench_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="cpu", help="quick, cpu, gpu or jetson (default cpu)")
    p.add_argument("--archs", nargs="+", default=None, help="architectures instead of the profile's (see `bcedge zoo`)")
    p.add_argument("--runners", nargs="+", default=None,
                   help="BACKEND:DEVICE instead of the profile's, e.g. torch:cpu onnxruntime:cuda tensorrt:cuda")
    p.add_argument("--precisions", nargs="+", default=None, choices=["fp32", "fp16", "int8"])
    p.add_argument("--batch", nargs="+", type=int, default=None, help="batch sizes instead of the profile's")
    p.add_argument("--tile", nargs="+", type=_input_size, default=None, help="tile sizes WIDTHxHEIGHT")
    p.add_argument("--checkpoint", action="append", type=_checkpoint_pair, default=[], metavar="ARCH=PATH",
                   help="trained checkpoint for an architecture (repeat); missing files are ignored, others are untrained")
    p.add_argument("--data", type=Path, default=None, help="labelled dataset for accuracy (its --split) and calibration (train)")
    p.add_argument("--split", default=None, help="evaluation split (default: the profile's, val)")
    p.add_argument("--calib", type=Path, action="append", default=[], help="calibration set folder to reuse (repeat)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="results folder")
    p.add_argument("--work", type=Path, default=None, help="artifact cache (default: bcedge-bench-matrix in the temp dir)")
    p.add_argument("--name", default=None, help="results file stem (default matrix_<profile>_<machine>)")
    p.add_argument("--note", default="", help="recorded with the machine description")
    p.add_argument("--min-time", type=float, default=None, help="seconds to time each cell at least")
    p.add_argument("--iterations", type=int, default=None, help="timed calls per cell at least")
    p.add_argument("--warmup", type=int, default=None, help="warm-up calls per cell")
    p.add_argument("--max-contention", type=float, default=None,
                   help="share of the CPU (0-1) other processes may use during a cell: wait for it before each cell "
                        "(see --quiet-wait) and, with --resume, rerun cells measured above it")
    p.add_argument("--quiet-wait", type=float, default=0.0, help="seconds to wait at most for a quiet machine before a cell")
    p.add_argument("--resume", action="store_true", help="keep the measured cells of an existing results file, run the rest")
    p.add_argument("--dry-run", action="store_true", help="list the cells and what this machine can run, run nothing")


@command("bench run", "Run the benchmark matrix: latency, throughput, smear time, memory, accuracy per cell")
def _bench_run(p: argparse.ArgumentParser):
    _bench_run_arguments(p)

    def run(args) -> int:
        from bcedge.bench.matrix import get_profile, precheck
        from bcedge.bench.runner import RunOptions, existing_checkpoints, run_matrix, with_overrides

        profile = with_overrides(get_profile(args.profile), archs=args.archs, runners=args.runners,
                                 precisions=args.precisions, batches=args.batch, tiles=args.tile,
                                 accuracy_split=args.split, min_time_s=args.min_time,
                                 min_iterations=args.iterations, warmup=args.warmup)
        if args.dry_run:
            for cell in profile.cells():
                print(f"{cell.key}: {precheck(cell) or 'to run'}")
            return 0
        if args.data is not None and not args.data.exists():
            raise UserError(f"{args.data}: no such dataset")
        options = RunOptions(out=args.out, checkpoints=existing_checkpoints(dict(args.checkpoint)), data=args.data,
                             calib_dirs=tuple(args.calib), name=args.name, note=args.note,
                             max_contention=args.max_contention, quiet_wait_s=args.quiet_wait, resume=args.resume)
        if args.work is not None:
            options.work = args.work
        results = run_matrix(profile, options)
        ok = sum(c["status"] == "ok" for c in results["cells"])
        print(f"{ok} of {len(results['cells'])} cells measured; results in {results['files']['json']}")
        return 0

    return run


@command("bench report", "Write the markdown table and Pareto plot (PNG) of a benchmark results file")
def _bench_report(p: argparse.ArgumentParser):
    p.add_argument("results", type=Path, help="results JSON from `bcedge bench run`")
    p.add_argument("--out", type=Path, default=None, help="output stem (default: beside the JSON)")

    def run(args) -> int:
        from bcedge.bench.report import load, write_all

        md, png = write_all(load(args.results), args.out or args.results.with_suffix(""))
        print(f"wrote {md} and {png}")
        return 0

    return run


@command("bench compare", "Put benchmark results from different machines side by side (markdown)")
def _bench_compare(p: argparse.ArgumentParser):
    p.add_argument("results", type=Path, nargs="+", help="results JSON files; the first is the reference")
    p.add_argument("--labels", nargs="+", default=None, help="a column label per file")
    p.add_argument("--out", type=Path, default=None, help="write the markdown here (default: print)")

    def run(args) -> int:
        from bcedge.bench.report import compare, load

        if args.labels and len(args.labels) != len(args.results):
            raise UserError(f"{len(args.labels)} labels for {len(args.results)} results files")
        text = compare([load(path) for path in args.results], args.labels)
        if args.out:
            args.out.write_text(text)
            print(f"wrote {args.out}")
        else:
            print(text, end="")
        return 0

    return run


@command("bench machine", "Describe this machine as benchmark files record it (CPU, GPU, driver, libraries, Jetson)")
def _bench_machine(p: argparse.ArgumentParser):
    def run(args) -> int:
        import json

        from bcedge.bench.machine import describe_machine

        print(json.dumps(describe_machine(), indent=1))
        return 0

    return run



if __name__ == "__main__":
    sys.exit(main())
