"""Checkpoint -> ONNX deploy graph: fixed tile size (or any multiple of the stride, for heads that allow it),
dynamic batch, no hidden resize, metadata inside.

The graph is ``Detector.deploy``: normalisation, backbone, heads and box decoding against the anchors
(constants for a fixed input size), giving boxes (B, A, 4) xyxy px and scores (B, A, C). Score
filtering and class-aware NMS stay in the runtime, which also merges across tiles.

Uses the TorchScript-based exporter (``dynamo=False``): it traces torchvision's detection code
predictably, and tracing turns the anchor generator into constants. This is the only module of
``bcedge.convert`` that imports torch.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from bcedge.artifact import ModelMeta
from bcedge.convert import graph

OPSET = 17
TRACE_BATCH = 2          # trace with more than one image so no reshape bakes in a batch of 1


class DeployGraph(nn.Module):
    """The export-only wrapper: ``images`` (B, 3, H, W) RGB 0..1 -> (boxes, scores)."""

    def __init__(self, detector) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.detector.deploy(images)


def _dynamic_axes(dynamic_input: bool) -> dict:
    """Batch always; height, width (and so the anchor count) too for heads whose graph allows it."""
    if not dynamic_input:
        return {n: {0: "batch"} for n in (graph.INPUT_NAME, *graph.OUTPUT_NAMES)}
    return {graph.INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
            **{n: {0: "batch", 1: "anchors"} for n in graph.OUTPUT_NAMES}}


def torch2onnx(model, out: str | Path, opset: int = OPSET, simplify: bool = True) -> Path:
    """Export a ``Detector`` (or a checkpoint path) to ``out``; returns the path written.

    The graph is checked with ``onnx.checker`` and carries the model's ``ModelMeta`` (precision fp32,
    exporter versions and this step recorded in ``recipe["convert"]``).
    """
    import onnx

    from bcedge.models import Detector, load_detector

    detector = model if isinstance(model, Detector) else load_detector(model)[0]
    meta = ModelMeta.from_json(detector.meta.to_json())   # a copy: the detector's own stays as it is
    width, height = meta.input_size
    was_training = detector.training
    module = DeployGraph(detector).eval()   # puts the detector in eval mode
    example = torch.rand(TRACE_BATCH, 3, height, width, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            boxes, scores = module(example)
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings: shapes are constants here on purpose
            torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=opset,
                              input_names=[graph.INPUT_NAME], output_names=list(graph.OUTPUT_NAMES),
                              dynamic_axes=_dynamic_axes(meta.dynamic_input),
                              do_constant_folding=True)
    finally:
        detector.train(was_training)
    proto = onnx.load_from_string(buffer.getvalue())
    tool = "not simplified"
    if simplify:
        proto, tool = graph.simplify(proto)
    if meta.dynamic_input:
        graph.set_io_shapes(proto, "batch", ("height", "width"), "anchors", int(scores.shape[2]))
    else:
        graph.set_io_shapes(proto, "batch", (height, width), int(boxes.shape[1]), int(scores.shape[2]))
    graph.name_nodes(proto)
    meta.precision = "fp32"
    import torchvision

    meta.versions = {**meta.versions, "torch": torch.__version__.split("+")[0],
                     "torchvision": torchvision.__version__.split("+")[0], "opset": str(opset)}
    graph.record_step(meta, "torch2onnx", opset=opset, exporter="torch.onnx (TorchScript)", simplifier=tool,
                      anchors=int(boxes.shape[1]))
    return graph.save(proto, out, meta)

