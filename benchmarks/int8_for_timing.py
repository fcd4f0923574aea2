"""An INT8 twin of a dynamic-input bcedge model, made the way the bundled default's is, for timing
before the shipped ``default.int8.onnx`` exists.

It follows ``export/build_default_model.py``: training images only (TXL-PBC train + BCCD train, the
near-copies of either validation split left out: ``export/train_default.training_sources``),
resampled so their median red cell is the model's ``cell_px``, cut into 320x320 tiles; then
``bcedge.convert.quantize`` with the CPU target (U8S8 Q/DQ, weights per channel, percentile).
Its accuracy is not measured here: the shipped file is the one to evaluate.

    nice -n 10 python benchmarks/int8_for_timing.py /work/runs/lite/model.onnx --out /tmp/new_default.int8.onnx
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _common import CACHE, REPO, log

sys.path.insert(0, str(REPO / "export"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="FP32 dynamic-input bcedge ONNX")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--txl", type=Path, default=REPO.parent / "shared/data/txl-pbc")
    parser.add_argument("--bccd", type=Path, default=REPO.parent / "shared/data/bccd")
    parser.add_argument("--calib", type=Path, default=CACHE / "calib_scaled_320")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--size", type=int, default=320, help="calibration tile side, model pixels")
    args = parser.parse_args(argv)

    from train_default import training_sources

    from bcedge.artifact import read_onnx_meta
    from bcedge.convert.calibration import CalibrationSet, build_scaled_calibration_set
    from bcedge.convert.quantize import QuantOptions, quantize

    meta = read_onnx_meta(args.model)
    if not meta.pixel_scale:
        raise SystemExit(f"{args.model}: has no pixel scale; quantize it with `bcedge quantize` on a set of its tile size")
    if (args.calib / "manifest.json").is_file():
        calib = CalibrationSet.load(args.calib)
    else:
        log(f"building the calibration set {args.calib} from the training splits ...")
        train = training_sources(args.txl, args.bccd, log=log)
        calib = build_scaled_calibration_set(train, args.calib, meta.pixel_scale["cell_px"], (args.size, args.size),
                                             count=args.count)
    log(calib.summary())
    started = time.perf_counter()
    out = quantize(args.model, args.calib, args.out, QuantOptions(target="cpu"))
    log(f"wrote {out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
