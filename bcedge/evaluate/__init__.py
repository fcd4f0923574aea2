"""Evaluation: COCO metrics, per-class precision/recall and count error at the operating thresholds,
and tuning of those thresholds (and the NMS IoU) on a validation split.

    summary    summarise(data, predictions, meta), EVAL_SCORE_FLOOR
    raw        raw_outputs / evaluate_raw: raw model outputs decoded as the runtime decodes
    detector   evaluate_detector: a torch Detector through its deploy graph
    artifacts  evaluate_artifact: an exported .onnx / .engine / .pt
"""
from __future__ import annotations

from bcedge.evaluate.detector import evaluate_detector
from bcedge.evaluate.raw import NMS_IOU_GRID, RawOutputs, evaluate_raw, input_images, raw_outputs
from bcedge.evaluate.summary import EVAL_SCORE_FLOOR, summarise

__all__ = ["evaluate_detector", "evaluate_raw", "raw_outputs", "input_images", "summarise", "EVAL_SCORE_FLOOR",
           "NMS_IOU_GRID", "RawOutputs"]
