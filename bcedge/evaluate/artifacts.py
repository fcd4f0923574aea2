"""Evaluate any artifact (checkpoint, ONNX, engine) on a dataset, and store tuned thresholds back."""
from __future__ import annotations

from pathlib import Path

from bcedge.artifact import ModelMeta
from bcedge.data.annotations import Dataset
from bcedge.evaluate import evaluate_detector, evaluate_raw, raw_outputs


def evaluate_artifact(model: str | Path, data: Dataset, tune: bool = False, backend: str = "auto",
                      device: str = "auto") -> tuple[dict, ModelMeta]:
    """Metrics for ``model`` on ``data``; checkpoints run in torch, other artifacts through their backend."""
    from bcedge.backends import backend_for
    from bcedge.catalogue import resolve_model

    path = resolve_model(model)
    if backend_for(path) == "torch" and backend in ("auto", "torch"):  # checkpoints evaluate in torch directly
        from bcedge.models import load_detector

        detector, _ = load_detector(path)
        return evaluate_detector(detector, data, tune=tune), detector.meta
    from bcedge.backends import load_backend, preprocess

    with load_backend(path, backend=backend, device=device) as runner:
        raw = raw_outputs(lambda batch: runner.infer(preprocess(batch)), data, runner.meta.input_size,
                          pad_value=runner.meta.pad_value)
        return evaluate_raw(raw, data, runner.meta, tune=tune), runner.meta


def store_metadata(model: str | Path, meta: ModelMeta, out: str | Path) -> Path:
    """Write a copy of ``model`` whose metadata is ``meta`` (e.g. with tuned thresholds); any artifact kind."""
    from bcedge.artifact import write_meta

    return write_meta(model, meta, out)
