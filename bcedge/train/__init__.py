"""Training (needs torch): ``train`` for one run, ``cross_validate`` for k folds.

    from bcedge.train import TrainConfig, train, load_training_data
    data = load_training_data("data/bccd", split="train")
    train(TrainConfig(arch="fcos_efficientnet_lite0", epochs=24), data, "runs/fcos", val_data=...)
"""
from __future__ import annotations

from bcedge.train.kfold import cross_validate, kfold_indices
from bcedge.train.loop import TrainConfig, train
from bcedge.train.prepare import load_training_data

__all__ = ["TrainConfig", "train", "cross_validate", "kfold_indices", "load_training_data"]
