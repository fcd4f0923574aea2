"""Detector subcommands (need the train extra): ``train``, ``eval``, ``zoo``."""
from __future__ import annotations

import argparse
from pathlib import Path

from bcedge.cli.options import add_scale_options, input_size, positive_int, scale_options
from bcedge.cli.registry import UserError, command


@command("train", "Train a detector on one or several datasets (needs the train extra)")
def _train(p: argparse.ArgumentParser):
    p.add_argument("--data", type=Path, action="append", required=True,
                   help="dataset path (VOC, CSV, COCO, BBBC041, YOLO), or a sources .yaml; repeat to train on several "
                        "(classes matched by name, sampling balanced over source groups)")
    p.add_argument("--split", default=None, help="training split name (VOC ImageSets/Main/NAME.txt, YOLO split)")
    p.add_argument("--group-by", default="size", choices=["dataset", "size", "folder"],
                   help="source groups that sampling balances: per dataset, frame size (default) or image folder")
    p.add_argument("--val-split", default=None, help="validation split, evaluated during training (one dataset)")
    p.add_argument("--arch", default="fcos_efficientnet_lite0", help="<head>_<backbone>; see `bcedge zoo`")
    p.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, history (resumes if present)")
    p.add_argument("--input-size", type=input_size, default=(640, 480), help="model input (training crop) WIDTHxHEIGHT")
    p.add_argument("--cell-px", type=float, default=None,
                   help="working scale: resample each image so its median red cell is this many px (multi-scale data)")
    p.add_argument("--scale-jitter", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="random rescaling range around the working scale (default 0.8 1.25)")
    p.add_argument("--epochs", type=int, default=24)
    p.add_argument("--minutes", type=float, default=None, help="time budget: the schedule ends on time")
    p.add_argument("--batch-size", type=positive_int, default=4)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"])
    p.add_argument("--ema", type=float, default=0.0, help="weight EMA decay, e.g. 0.9995 (0: off)")
    p.add_argument("--workers", type=int, default=0, help="data loading processes")
    p.add_argument("--train-bn", action="store_true", help="update BatchNorm statistics (large batches)")
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="start from a trained checkpoint's weights (same architecture and classes): fine-tuning")
    p.add_argument("--qat", action="store_true",
                   help="quantization-aware: convolutions see the TensorRT target's INT8 rounding while training "
                        "(with --init-from, a short fine-tune before `bcedge quantize --target tensorrt`)")
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
        from bcedge.train.augment import AugmentConfig
        from bcedge.train.prepare import load_training_sources

        if args.val_split and (len(args.data) > 1 or args.cell_px):
            raise SystemExit("bcedge train: --val-split evaluates one dataset at the model's input size; with several "
                             "datasets or --cell-px, evaluate the checkpoint afterwards with `bcedge eval` (any image size)")
        augment = AugmentConfig(target_cell_px=args.cell_px)
        if args.scale_jitter:
            augment.scale = tuple(args.scale_jitter)
        pretrained = False if args.no_pretrained else (str(args.weights) if args.weights else True)
        cfg = TrainConfig(arch=args.arch, input_size=args.input_size, epochs=args.epochs, batch_size=args.batch_size,
                          lr=args.lr, freeze_backbone=args.freeze_backbone, pretrained=pretrained,
                          device=args.device, max_iters=args.max_iters, eval_every=args.eval_every,
                          optimizer=args.optimizer, ema=args.ema, workers=args.workers, train_bn=args.train_bn,
                          init_from=args.init_from, qat=args.qat,
                          time_budget_s=args.minutes * 60 if args.minutes else None, augment=augment)
        if len(args.data) == 1 and args.data[0].suffix.lower() not in (".yaml", ".yml"):
            data = load_training_data(args.data[0], args.split)
        else:
            data = load_training_sources(args.data, args.split, args.group_by)
        if args.folds:
            print(json.dumps(cross_validate(cfg, data, args.out, args.folds), indent=2))
            return 0
        val = load_training_data(args.data[0], args.val_split, data.class_names) if args.val_split else None
        if val is not None:   # evaluated padded to the input size, never resized: refuse now, not after an epoch
            larger = [r for r in val.images if r.width > cfg.input_size[0] or r.height > cfg.input_size[1]]
            if larger:
                widest = max(r.width for r in val.images), max(r.height for r in val.images)
                raise UserError(f"--val-split {args.val_split}: {len(larger)} images are larger than --input-size "
                                f"{cfg.input_size[0]}x{cfg.input_size[1]} (e.g. {larger[0].image_path}, "
                                f"{larger[0].width}x{larger[0].height}); give at least {widest[0]}x{widest[1]}, or "
                                "evaluate the trained model with bcedge eval, which tiles")
        print(f"checkpoint: {train(cfg, data, args.out, val_data=val)}")
        return 0

    return run


@command("eval", "Evaluate a model on labelled data as `count` runs it: mAP, per-class AP, count error, per source")
def _eval(p: argparse.ArgumentParser):
    p.add_argument("model", help="a bundled model ('default', 'default-int8'), a checkpoint (.pt) or an artifact (.onnx, .engine)")
    p.add_argument("--data", type=Path, action="append", required=True,
                   help="labelled dataset (VOC, CSV, COCO, BBBC041, YOLO) or a sources YAML; repeat to evaluate "
                        "several at once")
    p.add_argument("--split", default=None)
    p.add_argument("--group-by", default="size", choices=["dataset", "size", "folder"],
                   help="source groups reported separately: per dataset, per frame size (default) or per image folder")
    p.add_argument("--json", type=Path, default=None, help="also write the metrics as JSON")
    p.add_argument("--pr-curves", type=Path, default=None, help="write PR curves (PNG)")
    p.add_argument("--tune", type=Path, default=None, metavar="OUT",
                   help="tune per-class score thresholds on this data; write the model with them to OUT")
    p.add_argument("--backend", default="auto", help="onnxruntime, tensorrt or torch (default: by model suffix)")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--class-map", action="append", default=[], metavar="NAME=CLASS",
                   help="the data's class NAME is the model's CLASS (repeat); NAME= leaves NAME's boxes out. Other "
                        "spellings and common names (erythrocyte, leukocyte, thrombocyte, ...) are matched without it")
    add_scale_options(p)

    def run(args) -> int:
        import sys

        from bcedge.data.class_names import parse_class_map

        from bcedge.artifact import artifact_kind
        from bcedge.atomic import atomic_write_json, check_writable
        from bcedge.catalogue import resolve_model
        from bcedge.data.multisource import load_sources, source_specs
        from bcedge.data.validate import validate
        from bcedge.evaluate.artifacts import store_metadata
        from bcedge.evaluate.runtime_eval import evaluate_runtime
        from bcedge.evaluate.table import metrics_table

        class_map = parse_class_map(args.class_map)   # a malformed NAME=CLASS is refused before any work
        for out in (args.json, args.pr_curves, args.tune):
            if out:
                check_writable(out)
        model = resolve_model(args.model)
        if args.tune and artifact_kind(args.tune) is not artifact_kind(model):
            raise UserError(f"--tune {args.tune}: must be the same kind of artifact as {model.name}")
        data = load_sources(*source_specs(args.data, args.split, args.group_by))
        validate(data, policy="drop")
        if not data.images:
            raise UserError(f"{', '.join(map(str, args.data))}: no images to evaluate"
                            + (f" in split {args.split!r}" if args.split else ""))
        bar = None
        if not args.quiet and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=len(data), unit="image", desc="eval", file=sys.stderr)
        progress = (lambda done, total: bar.update(done - bar.n)) if bar else None
        metrics, meta = evaluate_runtime(model, data, tune=bool(args.tune), backend=args.backend,
                                         device=args.device, progress=progress, class_map=class_map,
                                         **scale_options(args))
        if bar:
            bar.close()
        for name, target in metrics.get("class_map", {}).items():
            print(f"class {name!r} of the data counted as {target!r}" if target else f"class {name!r}: boxes left out")
        if args.tune:
            meta.metrics = {**meta.metrics, "tuned_on": {"data": [str(d) for d in args.data], "split": args.split,
                                                         **_headline(metrics)}}
            print(f"tuned model written to {store_metadata(model, meta, args.tune)}")
        print(metrics_table(metrics))
        if args.json:
            atomic_write_json(args.json, {k: v for k, v in metrics.items() if k != "pr_curves"})
        if args.pr_curves:
            from bcedge.evaluate.plots import plot_pr_curves

            plot_pr_curves(metrics, args.pr_curves, title=f"{meta.arch}: mAP50 {metrics['mAP50']:.3f}")
        return 0

    return run


def _headline(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("mAP", "mAP50", "mAP75")}


@command("average", "Average the weights of several checkpoints of one run (e.g. the last epochs)")
def _average(p: argparse.ArgumentParser):
    p.add_argument("checkpoints", type=Path, nargs="+", help="checkpoints (.pt) of the same architecture and classes")
    p.add_argument("--out", type=Path, required=True)

    def run(args) -> int:
        from bcedge.train.average import average_checkpoints

        print(f"wrote {average_checkpoints(args.checkpoints, args.out)}")
        return 0

    return run


@command("zoo", "List the detector architectures (<head>_<backbone>)")
def _zoo(p: argparse.ArgumentParser):
    def run(args) -> int:
        from bcedge.models import zoo

        print("\n".join(zoo()))
        return 0

    return run
