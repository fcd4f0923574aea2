"""Recipe of the bundled scale-guess network (``bcedge/assets/models/scale_prior.onnx``).

    python export/train_scale_prior.py --out runs/scale_prior --minutes 25

Trains on the default model's training images (TXL-PBC train + BCCD train, near-copies of either val
split removed: ``train_default.training_sources``), each emulated at 0.3-5x and more
(``bcedge.train.scale_prior``), exports the ONNX file OpenCV's DNN module runs, and measures it on
both val splits at fixed magnifications: how far its guess is from the labels' median red cell.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "export"))

from train_default import CLASSES, training_sources  # noqa: E402

from bcedge.data.cellsize import image_cell_sizes  # noqa: E402
from bcedge.data.multisource import SourceSpec, load_sources  # noqa: E402
from bcedge.imageio import read_image  # noqa: E402
from bcedge.runtime.resample import ResampledSource  # noqa: E402
from bcedge.runtime.scale_prior import PRIOR_PATH, ScalePrior  # noqa: E402
from bcedge.runtime.sources import ArraySource  # noqa: E402

FACTORS = (0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0, 5.0)   # magnification against the val image's own


def guess_errors(prior: ScalePrior, txl: Path, bccd: Path) -> dict:
    """Per val split and magnification: the guess's median and 90th-percentile error (ratio), and the share of
    images guessed within 15% (the counter's tolerance: such a first pass is the count) and within 2x."""
    report = {}
    for name, spec in (("TXL-PBC val", SourceSpec(txl, "val", group_by="size")), ("BCCD val", SourceSpec(bccd, "val"))):
        data = load_sources([spec], CLASSES)
        truth = image_cell_sizes(data)
        images = [ArraySource(read_image(r.image_path)) for r in data.images]
        for factor in FACTORS:
            errors = np.array([abs(math.log(prior.cell_px(ResampledSource(src, factor)) / (cell * factor)))
                               for src, cell in zip(images, truth) if np.isfinite(cell)])
            report[f"{name} x{factor:g}"] = {
                "images": len(errors), "median_error": round(math.expm1(float(np.median(errors))), 4),
                "p90_error": round(math.expm1(float(np.percentile(errors, 90))), 4),
                "within_15pct": round(float(np.mean(errors <= math.log1p(0.15))), 4),
                "within_2x": round(float(np.mean(errors <= math.log(2))), 4)}
            print(name, factor, report[f"{name} x{factor:g}"], flush=True)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--txl", type=Path, default=ROOT.parent / "shared/data/txl-pbc")
    ap.add_argument("--bccd", type=Path, default=ROOT.parent / "shared/data/bccd")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=25.0)
    ap.add_argument("--steps", type=int, default=100_000, help="upper bound; --minutes usually ends training first")
    ap.add_argument("--resume", action="store_true", help="go on from --out's checkpoint.pt (a cut-off run)")
    ap.add_argument("--install", action="store_true", help="copy the exported network to the bundled asset")
    ap.add_argument("--eval-only", action="store_true", help="measure the ONNX file in --out, no training")
    args = ap.parse_args(argv)

    onnx_path = args.out / "scale_prior.onnx"
    if not args.eval_only:
        from bcedge.train.scale_prior import PriorConfig, export_prior, train_prior

        net = train_prior(training_sources(args.txl, args.bccd), PriorConfig(steps=args.steps, minutes=args.minutes),
                          args.out, resume=args.resume)
        export_prior(net, onnx_path)
    report = guess_errors(ScalePrior(onnx_path), args.txl, args.bccd)
    (args.out / "guess_errors.json").write_text(json.dumps(report, indent=1))
    if args.install:
        shutil.copyfile(onnx_path, PRIOR_PATH)
        print(f"installed {PRIOR_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
