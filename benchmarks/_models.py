"""The model a benchmark runs: a bundled name, an .onnx file, or a .pt checkpoint exported at a tile size."""
from __future__ import annotations

from pathlib import Path

from _common import CACHE, log


def benchmark_model(spec: str, tile: int = 768, like: str | None = None) -> Path:
    """``default`` (the bundled model), an .onnx file, or a .pt checkpoint exported to ONNX at ``tile`` x ``tile``.

    ``like``: an ONNX model whose operating point (score thresholds, NMS IoU, largest object size) the
    export takes, so a checkpoint exported at another tile size counts exactly like the bundled model.
    """
    from bcedge.artifact import read_onnx_meta
    from bcedge.catalogue import resolve_model as bundled

    path = bundled(spec)
    if path.suffix.lower() not in (".pt", ".pth"):
        return path
    ref = bundled(like) if like else None
    key = f"_like{ref.stem}{int(ref.stat().st_mtime)}" if ref else ""
    out = CACHE / f"{path.stem}_{int(path.stat().st_mtime)}{key}_{tile}x{tile}.onnx"
    if not out.is_file():
        from bcedge.convert.torch2onnx import torch2onnx
        from bcedge.models import load_detector

        log(f"exporting {path} at {tile}x{tile} -> {out}")
        CACHE.mkdir(parents=True, exist_ok=True)
        detector, _ = load_detector(path)
        detector.meta.input_size = (tile, tile)  # fully convolutional: anchors become constants for this size
        if ref is not None:
            point = read_onnx_meta(ref)
            for name in ("score_thresholds", "default_score_threshold", "nms_iou", "max_object_size"):
                setattr(detector.meta, name, getattr(point, name))
        torch2onnx(detector, out)
    return out
