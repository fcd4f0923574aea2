"""The build road's subcommands: ``export``, ``parity``, ``fp16``, ``calib``, ``quantize``, ``build-engine``."""
from __future__ import annotations

import argparse
from pathlib import Path

from bcedge.cli.options import check_outputs, input_size
from bcedge.cli.registry import UserError, command


@command("export", "Export a checkpoint to an ONNX deploy graph (dynamic batch; any tile size when the model "
                   "takes one, else fixed; metadata inside)")
def _export(p: argparse.ArgumentParser):
    p.add_argument("model", type=Path, help="bcedge checkpoint (.pt)")
    p.add_argument("--out", type=Path, required=True, help="ONNX file to write, e.g. model.onnx")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-simplify", dest="simplify", action="store_false", help="skip onnxslim")
    p.add_argument("--fp16", action="store_true", help="also write OUT with .fp16.onnx (sensitive ops kept FP32)")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the torch vs ONNX Runtime parity check")

    def run(args) -> int:
        from bcedge.convert.torch2onnx import torch2onnx

        if args.model.suffix.lower() not in (".pt", ".pth"):
            raise UserError(f"{args.model}: export takes a bcedge checkpoint (.pt); this is not one (an .onnx is "
                            "exported already: quantize or build-engine it)")
        check_outputs([args.model], {"--out": args.out,
                                     "--fp16": args.out.with_suffix(".fp16.onnx") if args.fp16 else None})
        out = torch2onnx(args.model, args.out, opset=args.opset, simplify=args.simplify)
        print(f"wrote {out}")
        _say_if_untuned(out)
        if args.fp16:
            from bcedge.convert.onnx2fp16 import onnx2fp16

            print(f"wrote {onnx2fp16(out, out.with_suffix('.fp16.onnx'))}")
        if args.check:
            report = _run_parity([str(args.model), str(out)], images=4, batch_size=2)
            print(report.format())
            return 0 if report.ok else 1
        return 0

    return run


def _say_if_untuned(model: Path) -> None:
    from bcedge.artifact import read_meta

    meta = read_meta(model)
    if not meta.score_thresholds:
        print(f"note: {model.name} counts every class at score {meta.default_score_threshold} (its checkpoint's); tune "
              f"one threshold per class on labelled data: bcedge eval {model} --data VAL --tune TUNED.onnx")


def _open_runner(spec: str, device: str):
    """PATH, PATH@BACKEND or PATH@BACKEND:DEVICE -> an open backend (PATH may name a bundled model)."""
    from bcedge.backends import load_backend
    from bcedge.catalogue import resolve_model

    path, _, choice = spec.partition("@")
    backend, _, spec_device = choice.partition(":")
    return load_backend(resolve_model(path), backend=backend or "auto", device=spec_device or device)


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
    p.add_argument("model", help="FP32 ONNX from `bcedge export`, or a bundled model ('default')")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--convert-tail", dest="keep_tail", action="store_false",
                   help="also convert the heads' final activations and box decoding (not recommended)")

    def run(args) -> int:
        from bcedge.catalogue import resolve_model
        from bcedge.convert.onnx2fp16 import onnx2fp16

        model = resolve_model(args.model)
        check_outputs([model], {"--out": args.out})
        print(f"wrote {onnx2fp16(model, args.out, keep_tail=args.keep_tail)}")
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
    size.add_argument("--model", help="take the tile size from this artifact (.onnx, .pt, .engine) or bundled model")
    size.add_argument("--input-size", type=input_size, help="tile size WIDTHxHEIGHT")
    p.add_argument("--overlap", type=int, default=None,
                   help="tile overlap in px (default: the counter's, from the model's object size; a quarter tile)")
    p.add_argument("--seed", type=int, default=0)

    def run(args) -> int:
        from bcedge.convert.calibration import TileSpec, build_calibration_set, build_scaled_calibration_set
        from bcedge.data import load_dataset
        from bcedge.runtime.scale import REUSE_TOLERANCE, model_cell_px

        data = load_dataset(args.data, args.split, args.fmt)
        if args.model:  # tile size, overlap and padding exactly as the counter uses them for this model
            with _open_runner(str(args.model), "cpu") as runner:
                meta = runner.meta
            cell_px = model_cell_px(meta)
            if cell_px:   # the counter brings every image to the model's scale first: so do its tiles
                print(f"{args.model}: tiles of images resampled to red cells of {cell_px:g} px (its working scale), "
                      f"within the {REUSE_TOLERANCE:.0%} the counter leaves an image at")
                built = build_scaled_calibration_set(data, args.out, cell_px, tuple(meta.input_size), args.count,
                                                     args.seed, meta.pad_value, jitter=REUSE_TOLERANCE)
                print(built.summary())
                return 0
            spec = TileSpec.for_model(meta, args.overlap)
        else:
            spec = TileSpec(args.input_size, min(args.input_size) // 4 if args.overlap is None else args.overlap)
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
    p.add_argument("model", help="FP32 ONNX from `bcedge export`, or a bundled model ('default')")
    p.add_argument("--calib", type=Path, required=True, action="append",
                   help="calibration set folder (`bcedge calib build`); repeat with other draws (other --seed) to "
                        "average each tensor's range over them")
    p.add_argument("--out", type=Path, required=True, help="e.g. model.int8.onnx")
    p.add_argument("--target", choices=["tensorrt", "cpu"], default="tensorrt",
                   help="tensorrt (default): symmetric signed INT8, Conv inputs (also runs in ONNX Runtime); "
                        "cpu: asymmetric U8S8 on every op, fastest in ONNX Runtime on x86, not for TensorRT")
    p.add_argument("--method", choices=["percentile", "minmax", "entropy"], default=None,
                   help="calibration (default: the target's: minmax for tensorrt, percentile for cpu)")
    p.add_argument("--quantize-final-convs", dest="keep_final_convs", action="store_false",
                   help="also quantize each head's last convolution (kept FP32 by default)")
    p.add_argument("--keep-first-conv", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the stem convolution (it sees raw pixels) in FP32 (default: yes for the tensorrt target, "
                        "where quantizing it cost the default model 3.6 mAP50 points on TXL-PBC val; no for cpu)")
    p.add_argument("--keep-fp32", action="append", default=[], metavar="PREFIX",
                   help="keep the nodes whose ONNX name starts with PREFIX in FP32 (repeat), e.g. /backbone/lateral")
    p.add_argument("--limit", type=int, default=None, help="use only the first N tiles")
    p.add_argument("--cache", type=Path, default=None, help="tensor-range cache (JSON), reused when present")

    def run(args) -> int:
        from bcedge.catalogue import resolve_model
        from bcedge.convert.quantize import QuantOptions, quantize

        model = resolve_model(args.model)
        check_outputs([model, *args.calib], {"--out": args.out})
        options = QuantOptions(method=args.method, target=args.target, keep_final_convs=args.keep_final_convs,
                               keep_first_conv=args.keep_first_conv, keep_fp32=tuple(args.keep_fp32), limit=args.limit)
        print(f"wrote {quantize(model, args.calib, args.out, options, cache=args.cache)}")
        return 0

    return run


@command("build-engine", "Build a TensorRT engine from an ONNX export (needs TensorRT on this machine)")
def _build_engine(p: argparse.ArgumentParser):
    p.add_argument("model", help="ONNX from `bcedge export` (FP32, FP16 or Q/DQ INT8), or a bundled model")
    p.add_argument("--out", type=Path, default=None, help="engine file (default: MODEL with .PRECISION.engine)")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp16", help="default fp16")
    p.add_argument("--calib", type=Path, default=None, help="calibration set for implicit INT8 (TensorRT 8.6/10)")
    p.add_argument("--calib-cache", type=Path, default=None)
    p.add_argument("--calibrator", choices=["entropy", "minmax"], default="entropy")
    p.add_argument("--batch", default="1,4,8", help="MIN,OPT,MAX batch of the optimization profile (default 1,4,8)")
    p.add_argument("--workspace", type=int, default=1024, help="builder workspace, MB")
    p.add_argument("--timing-cache", type=Path, default=None)
    p.add_argument("--input-sizes", default=None,
                   help="MIN,OPT,MAX input sizes WxH,WxH,WxH for a dynamic-input ONNX (default: half to twice its tile)")
    p.add_argument("--dla", type=int, default=None, metavar="N",
                   help="Jetson: run the layers DLA can on DLA core N, the rest on the GPU (FP16/INT8, fixed batch = OPT)")
    p.add_argument("--version-compatible", action="store_true",
                   help="TensorRT 8.6+: an engine later TensorRT versions can run (may be slower)")
    typed = p.add_mutually_exclusive_group()
    typed.add_argument("--strongly-typed", dest="strongly_typed", action="store_const", const=True, default=None)
    typed.add_argument("--weakly-typed", dest="strongly_typed", action="store_const", const=False)

    def run(args) -> int:
        from bcedge.catalogue import resolve_model
        from bcedge.convert.onnx2engine import EngineOptions, onnx2engine, parse_batch, parse_sizes

        options = EngineOptions(precision=args.precision, batch=parse_batch(args.batch), workspace_mb=args.workspace,
                                calib=args.calib, calib_cache=args.calib_cache, calibrator=args.calibrator,
                                timing_cache=args.timing_cache, strongly_typed=args.strongly_typed,
                                input_sizes=parse_sizes(args.input_sizes) if args.input_sizes else None,
                                dla_core=args.dla, version_compatible=args.version_compatible)
        model = resolve_model(args.model)
        out = args.out or model.with_suffix(f".{args.precision}.engine")
        check_outputs([model], {"--out": out})
        print(f"wrote {onnx2engine(model, out, options)}")
        return 0

    return run
