"""Average the weights of several checkpoints of one run (stochastic weight averaging, done afterwards).

The last epochs of a cosine schedule sit around one minimum; their mean usually generalises a little
better than any one of them, at no inference cost. Only valid for checkpoints of the same architecture
and classes. BatchNorm statistics are frozen in bcedge's pretrained backbones, and the heads use
GroupNorm, so no statistics need recomputing after averaging.
"""
from __future__ import annotations

from pathlib import Path

import torch

from bcedge.models import load_detector


def average_checkpoints(paths: list[str | Path], out: str | Path) -> Path:
    """Write to ``out`` a checkpoint whose weights are the mean of ``paths``' (metadata from the last one)."""
    if len(paths) < 2:
        raise ValueError("averaging needs at least two checkpoints")
    detector, state = load_detector(paths[-1])
    epochs = [state.get("epoch")]
    total = {k: v.double().clone() if v.is_floating_point() else v for k, v in detector.model.state_dict().items()}
    for path in paths[:-1]:
        other, other_state = load_detector(path)
        if (other.meta.arch, other.meta.class_names) != (detector.meta.arch, detector.meta.class_names):
            raise ValueError(f"{path}: {other.meta.arch} for {other.meta.class_names} cannot be averaged with "
                             f"{paths[-1]}: {detector.meta.arch} for {detector.meta.class_names}")
        epochs.append(other_state.get("epoch"))
        for key, value in other.model.state_dict().items():
            if value.is_floating_point():
                total[key] += value.double()
    mean = {k: (v / len(paths)).to(torch.float32) if v.is_floating_point() else v for k, v in total.items()}
    detector.model.load_state_dict(mean)
    detector.meta.recipe = {**detector.meta.recipe, "weight_average": {
        "checkpoints": [Path(p).name for p in paths], "epochs": sorted(e for e in epochs if e is not None)}}
    detector.save(out, epoch=max((e for e in epochs if e is not None), default=0))
    return Path(out)
