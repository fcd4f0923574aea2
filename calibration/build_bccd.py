"""Rebuild a BCCD calibration set and its manifest: `python calibration/build_bccd.py [--model M] [--data PATH]`.

Without --model: 640x480 tiles (the training size; one BCCD image per tile) in calibration/bccd_640x480.
With --model (e.g. bcedge/assets/models/default.onnx): that model's tile size, overlap and padding, in
calibration/bccd_<W>x<H>. The same data and options give byte-identical tiles.npy and manifest.json (no
timestamps; seeded selection), so `git diff calibration/*/manifest.json` after a rebuild shows any change.
Tiles come from the *train* split only: the val split stays untouched for accuracy measurements.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bcedge.cli import main  # noqa: E402

DEFAULT_DATA = os.environ.get("BCEDGE_BCCD", "/work/shared/data/bccd")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="BCCD in Pascal VOC layout (env BCEDGE_BCCD)")
    parser.add_argument("--model", type=Path, default=None, help="take tile size, overlap and padding from this artifact")
    parser.add_argument("--out", type=Path, default=None, help="default: calibration/bccd_<W>x<H>")
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    size = ["--input-size", "640x480"]
    if args.model:
        from bcedge.backends import load_backend

        with load_backend(args.model, device="cpu") as runner:
            width, height = runner.meta.input_size
        size = ["--model", str(args.model)]
    else:
        width, height = 640, 480
    out = args.out or HERE / f"bccd_{width}x{height}"
    sys.exit(main(["calib", "build", "--data", args.data, "--split", "train", *size,
                   "--count", str(args.count), "--seed", "0", "--out", str(out)]))
