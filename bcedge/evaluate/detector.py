"""Evaluating a torch ``Detector`` (training, k-fold): through its deploy graph and the runtime's decoding."""
from __future__ import annotations

import numpy as np

from bcedge.data.annotations import Dataset
from bcedge.evaluate.operating import match_scores, tune_thresholds
from bcedge.evaluate.raw import evaluate_raw, input_images, raw_outputs
from bcedge.evaluate.summary import summarise


def evaluate_detector(detector, data: Dataset, tune: bool = False, batch_size: int = 4) -> dict:
    """Evaluate a torch ``Detector`` through its deploy graph and the runtime's decoding.

    Two-stage heads without a deploy graph are evaluated with torchvision's own postprocessing.
    """
    import torch

    meta = detector.meta
    detector.eval()
    device = next(detector.parameters()).device

    @torch.no_grad()
    def infer(batch: np.ndarray):
        x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float().div(255)
        boxes, scores = detector.deploy(x)
        return boxes.cpu().numpy(), scores.cpu().numpy()

    try:
        raw = raw_outputs(infer, data, meta.input_size, batch_size, meta.pad_value)
    except NotImplementedError:
        predictions = []
        for image in input_images(data, meta.input_size, meta.pad_value):
            predictions.extend(detector.predict([image]))
        if tune:
            meta.score_thresholds = tune_thresholds(match_scores(data, predictions, meta.class_names))
        return summarise(data, predictions, meta)
    return evaluate_raw(raw, data, meta, tune)
