"""k-fold cross-validation: train k times, each fold held out once; report mean and std of COCO mAP."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from bcedge.data.annotations import Dataset


def kfold_indices(n: int, folds: int, seed: int = 0) -> list[np.ndarray]:
    """Shuffled, near-equal folds of ``range(n)``."""
    if not 2 <= folds <= n:
        raise ValueError(f"--folds must be between 2 and the number of images ({n}), got {folds}")
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(order, folds)]


def cross_validate(cfg, data: Dataset, out_dir: str | Path, folds: int = 5, log=print) -> dict:
    from bcedge.evaluate import evaluate_detector
    from bcedge.models import load_detector
    from bcedge.train.loop import train

    out_dir = Path(out_dir)
    parts = kfold_indices(len(data), folds, cfg.seed)
    results = []
    for k, held_out in enumerate(parts):
        train_idx = np.setdiff1d(np.arange(len(data)), held_out)
        fold_dir = out_dir / f"fold{k + 1}"
        log(f"fold {k + 1}/{folds}: {len(train_idx)} train, {len(held_out)} held out")
        checkpoint = train(replace(cfg, eval_every=cfg.epochs), data.subset(train_idx), fold_dir,
                           val_data=data.subset(held_out), log=log)
        detector, _ = load_detector(checkpoint)
        metrics = evaluate_detector(detector, data.subset(held_out))
        results.append({"fold": k + 1, "mAP": metrics["mAP"], "mAP50": metrics["mAP50"]})
    summary = {"folds": results}
    for key in ("mAP", "mAP50"):
        values = np.array([r[key] for r in results])
        summary[key] = {"mean": round(float(values.mean()), 4), "std": round(float(values.std(ddof=1)), 4) if folds > 1 else 0.0}
    return summary
