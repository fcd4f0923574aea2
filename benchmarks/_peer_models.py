"""Models for the peer and speed benchmarks: files from git history, Ultralytics YOLO built from its
YAML and exported to ONNX, YOLO quantized the way bcedge's CPU INT8 is, and GFLOPs.

Ultralytics is a benchmark-only dependency (``pip install ultralytics``; never a product one). It is
imported only here, and only when YOLO is asked for. Nothing here is part of the installed library.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import subprocess
from pathlib import Path

from _common import CACHE, REPO, log

# The FCOS-Lite0 default bundled until issue 15 (fixed 640x480 input, 21.7 GFLOPs), as committed.
OLD_DEFAULT_REV = "fd440e6"
OLD_DEFAULT = f"git:{OLD_DEFAULT_REV}:bcedge/assets/models/default.onnx"
OLD_DEFAULT_INT8 = f"git:{OLD_DEFAULT_REV}:bcedge/assets/models/default.int8.onnx"
OLD_CHECKPOINT = "export/checkpoints/fcos_efficientnet_lite0_bccd/checkpoint.pt"   # its training checkpoint


def model_file(spec: str | Path) -> Path:
    """A model path, ``default``/``default-int8`` (the bundled files), or ``git:REV:PATH`` (that file as
    committed at REV, copied to the benchmark cache): the old default stays measurable after it is replaced."""
    spec = str(spec)
    if spec.startswith("git:"):
        _, rev, path = spec.split(":", 2)
        blob = _git("rev-parse", f"{rev}:{path}", spec=spec).decode().strip()   # cached by content, not by name
        out = CACHE / "git" / f"{blob[:12]}_{Path(path).name}"
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(_git("cat-file", "blob", blob, spec=spec))
        return out
    from bcedge.catalogue import resolve_model

    try:
        return resolve_model(spec)
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None


def _git(*args: str, spec: str) -> bytes:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{spec}: not in this repository's history ({done.stderr.decode().strip()})")
    return done.stdout


# --- Ultralytics YOLO ----------------------------------------------------------------------------

def ultralytics_missing() -> str | None:
    """Why YOLO cannot be built here, or None."""
    os.environ.setdefault("YOLO_OFFLINE", "1")   # no downloads, no update checks
    try:
        import ultralytics  # noqa: F401
    except ImportError as exc:
        return f"ultralytics is not installed ({exc}); `pip install ultralytics` (benchmark-only dependency)"
    return None


def build_yolo(name: str, nc: int, size_hw: tuple[int, int], folder: Path, calib: Path) -> dict:
    """YOLO ``name`` (yolov8n, yolo11n...) from its YAML with ``nc`` classes and random weights, exported
    to ONNX at ``size_hw`` (batch 1, opset 17, simplified). Returns paths, params and GFLOPs.

    Random weights alone shrink activations layer after layer to denormal floats and exact zeros,
    which x86 computes slowly (FP32) and which leave INT8 calibration nothing to measure; so the
    BatchNorm statistics are re-estimated on BCCD train tiles (``calib``) first, giving activations
    of a trained network's scale. The weights stay random: speed only."""
    import torch
    from ultralytics import YOLO, __version__
    from ultralytics.utils.torch_utils import get_flops

    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / f"{name}_nc{nc}_{size_hw[0]}x{size_hw[1]}.onnx"
    yaml_path = folder / f"{name}.yaml"   # the file name keeps the scale letter Ultralytics reads from it
    if not yaml_path.is_file():
        from ultralytics.nn.tasks import yaml_model_load

        cfg = yaml_model_load(f"{name}.yaml")
        cfg["nc"] = nc
        import yaml

        yaml_path.write_text(yaml.safe_dump({k: v for k, v in cfg.items() if k != "yaml_file"}, sort_keys=False))
    torch.manual_seed(0)
    model = YOLO(str(yaml_path))
    net = model.model
    recalibrate_batchnorm(net, calib)
    params = sum(p.numel() for p in net.parameters())
    gflops = get_flops(net, list(size_hw))
    torch_gflops = flops_of(net.eval(), size_hw)
    if not onnx_path.is_file():
        log(f"exporting {name} (nc={nc}) to ONNX at {size_hw[1]}x{size_hw[0]} ...")
        with contextlib.chdir(folder):   # Ultralytics writes next to the YAML name, in the working directory
            written = Path(model.export(format="onnx", imgsz=list(size_hw), opset=17, simplify=True, dynamic=False,
                                        batch=1, device="cpu", verbose=False)).resolve()
        shutil.move(str(written), onnx_path)
    return {"onnx": onnx_path, "params_m": round(params / 1e6, 3), "gflops_ultralytics": round(gflops, 3),
            "gflops_torch": round(torch_gflops, 3), "ultralytics": __version__, "yaml": f"{name}.yaml", "nc": nc}


def recalibrate_batchnorm(net, calib: Path, tiles: int = 32, batch: int = 8) -> None:
    """Set every BatchNorm's running mean and variance to their averages over ``tiles`` calibration tiles."""
    import torch

    from bcedge.convert.calibration import CalibrationSet

    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None   # a cumulative average over the batches below
    net.train()
    with torch.no_grad():
        for x in CalibrationSet.load(calib).batches(batch, limit=tiles):
            net(torch.from_numpy(x))
    net.eval()


def quantize_peer(src: Path, calib_dir: Path, out: Path, method: str = "percentile", limit: int | None = None) -> Path:
    """INT8 for a graph without bcedge metadata, with ``bcedge.convert.quantize``'s CPU-target settings:
    QDQ, U8S8 (unsigned asymmetric activations, signed symmetric per-channel weights), every op type,
    the same calibration method, and the same nodes kept FP32 (the stem convolution, the heads' last
    convolutions and what follows them: ``graph.final_compute_nodes`` + ``graph.head_tail_nodes``)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization import CalibrationMethod

    from bcedge.convert import graph
    from bcedge.convert.calibration import CalibrationSet
    from bcedge.convert.quantize import TARGETS

    if out.is_file() and out.stat().st_mtime > src.stat().st_mtime:
        return out
    target = TARGETS["cpu"]
    model = onnx.load(str(src))
    exclude = graph.head_tail_nodes(model) + graph.final_compute_nodes(model)
    if target.keep_first_conv:
        exclude += graph.first_compute_nodes(model)
    calib = CalibrationSet.load(calib_dir)
    input_name = model.graph.input[0].name
    total = min(limit or len(calib), len(calib))

    class Reader(CalibrationDataReader):   # one tile at a time: the graph's batch is fixed at 1
        def __init__(self) -> None:
            self.set_range(0, total)

        def __len__(self) -> int:
            return total

        def set_range(self, start_index: int, end_index: int) -> None:
            self.queue = list(range(start_index, end_index))

        def get_next(self):
            if not self.queue:
                return None
            index = self.queue.pop(0)
            return {input_name: next(calib.batches(1, limit=index + 1, start=index))}

    methods = {"percentile": CalibrationMethod.Percentile, "minmax": CalibrationMethod.MinMax,
               "entropy": CalibrationMethod.Entropy}
    log(f"quantizing {src.name} on {total} tiles of {calib_dir} ...")
    quantize_static(model, str(out), Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=None,
                    per_channel=True, activation_type=getattr(QuantType, target.activations),
                    weight_type=QuantType.QInt8, nodes_to_exclude=exclude, calibrate_method=methods[method],
                    extra_options={"ActivationSymmetric": target.symmetric, "WeightSymmetric": True,
                                   "QuantizeBias": target.quantize_bias, "CalibStridedMinMax": 1})
    return out


def peer_calibration(folder: Path) -> Path:
    """BCCD train tiles at 640x480 (the old default's INT8 set, built by ``calibration/build_bccd.py``)."""
    if not (folder / "tiles.npy").is_file():
        log(f"building the 640x480 BCCD train calibration set in {folder} ...")
        subprocess.run([sys.executable, str(REPO / "calibration" / "build_bccd.py"),
                        "--model", str(model_file(OLD_DEFAULT)), "--out", str(folder)], check=True)
    return folder


# --- compute -------------------------------------------------------------------------------------

def flops_of(module, size_hw: tuple[int, int], call=None) -> float:
    """GFLOPs (2 per multiply-add) of one (1, 3, H, W) forward, by ``torch.utils.flop_counter``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, 3, *size_hw)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        (call or module)(x)
    return counter.get_total_flops() / 1e9


def bcedge_compute(checkpoint: str | None, onnx_path: Path, size_hw: tuple[int, int]) -> dict:
    """GFLOPs of a bcedge model's deploy graph at ``size_hw``, and its parameters: from the checkpoint,
    or (none given) from the architecture named in the ONNX metadata with random weights (FLOPs do not
    depend on weights)."""
    from bcedge.artifact import read_onnx_meta
    from bcedge.models import build_detector, load_detector

    meta = read_onnx_meta(onnx_path)
    if checkpoint and Path(checkpoint).is_file():
        detector, _ = load_detector(checkpoint)
        source = f"checkpoint {checkpoint}"
    else:
        detector = build_detector(meta.arch, meta.class_names, meta.input_size, pretrained=False, meta=meta)
        source = f"architecture {meta.arch} from the ONNX metadata (random weights)"
    if detector.meta.arch != meta.arch:
        raise SystemExit(f"{checkpoint} is {detector.meta.arch} but {onnx_path} is {meta.arch}")
    detector.eval()
    gflops = flops_of(detector, size_hw, call=detector.deploy)
    params = sum(p.numel() for p in detector.model.parameters())
    return {"gflops_torch": round(gflops, 3), "params_m": round(params / 1e6, 3), "flops_from": source,
            "arch": meta.arch, "at": f"{size_hw[1]}x{size_hw[0]}"}
