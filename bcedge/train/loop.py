"""The training loop: SGD with warm-up then cosine or step decay, resumable checkpoints, progress bar."""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bcedge.data.annotations import Dataset
from bcedge.models import Detector, build_detector, load_detector
from bcedge.train.augment import AugmentConfig
from bcedge.train.dataset import DetectionDataset, collate, repeat_factors


@dataclass
class TrainConfig:
    arch: str = "fcos_efficientnet_lite0"
    input_size: tuple[int, int] = (640, 480)
    epochs: int = 24
    batch_size: int = 4
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 200
    schedule: str = "cosine"          # or "step" (x0.1 at 2/3 and 8/9 of training)
    clip_grad: float = 10.0
    freeze_backbone: bool = False
    pretrained: bool | str = True     # True: packaged ImageNet weights; path: local file; False: scratch
    rare_class_sampling: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    eval_every: int = 2
    seed: int = 0
    device: str = "auto"
    max_iters: int | None = None      # stop early (tests, smoke runs)


def dataset_fingerprint(data: Dataset) -> dict:
    """Identify the training data: a hash over image names and boxes, and the per-class counts."""
    digest = hashlib.sha256()
    counts: dict[str, int] = {c: 0 for c in data.class_names}
    for record in data.images:
        digest.update(record.name.encode())
        digest.update(np.round(record.boxes, 1).tobytes())
        for label in record.labels:
            counts[label] += 1
    return {"sha256": digest.hexdigest()[:16], "images": len(data), "boxes": counts, "root": str(data.root or "")}


def _lr_factor(cfg: TrainConfig, it: int, total: int) -> float:
    warm = min(1.0, (it + 1) / max(cfg.warmup_iters, 1))
    progress = min(1.0, it / max(total, 1))
    if cfg.schedule == "step":
        decay = 0.1 ** sum(progress >= m for m in (2 / 3, 8 / 9))
    else:
        decay = 0.5 * (1 + math.cos(math.pi * progress))
    return warm * max(decay, 0.01)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _all_boxes(data: Dataset, input_size) -> np.ndarray:
    boxes = [r.boxes for r in data.images if len(r.boxes)]
    return np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)


def train(cfg: TrainConfig, train_data: Dataset, out_dir: str | Path, val_data: Dataset | None = None,
          log=print) -> Path:
    """Train ``cfg.arch`` on ``train_data``; resumes from ``out_dir/last.pt`` when present.

    Writes ``last.pt`` every epoch, ``best.pt`` (best val mAP50) when ``val_data`` is given, and
    ``history.jsonl``. Returns the path of the final checkpoint (best if validated, else last).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = _device(cfg.device)
    torch.manual_seed(cfg.seed)
    last, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if last.exists():
        detector, state = load_detector(last, map_location=str(device))
        log(f"resuming from {last} at epoch {state.get('epoch', 0)}")
    else:
        detector = build_detector(cfg.arch, train_data.class_names, cfg.input_size, cfg.pretrained,
                                  train_boxes=_all_boxes(train_data, cfg.input_size))
        state = {}
        detector.to(device)
    meta = detector.meta
    meta.train_data = dataset_fingerprint(train_data)
    recipe = asdict(cfg)
    recipe["augment"] = asdict(cfg.augment)
    meta.recipe = recipe
    if cfg.freeze_backbone:
        for p in detector.model.backbone.body.parameters():
            p.requires_grad_(False)

    data = DetectionDataset(train_data, cfg.input_size, cfg.augment, cfg.seed)
    weights = repeat_factors(train_data) if cfg.rare_class_sampling else np.ones(len(train_data))
    per_epoch = int(round(weights.sum()))
    params = [p for p in detector.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, momentum=cfg.momentum)
    if "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    start_epoch = int(state.get("epoch", 0))
    best = float(state.get("best_map50", -1.0))
    steps_per_epoch = math.ceil(per_epoch / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    it = start_epoch * steps_per_epoch

    for epoch in range(start_epoch, cfg.epochs):
        data.set_epoch(epoch)
        generator = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        sampler = torch.utils.data.WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double), per_epoch,
                                                         replacement=True, generator=generator)
        loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate,
                                             num_workers=0)
        detector.train()
        started, sums = time.time(), {}
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, dynamic_ncols=True)
        for images, targets in bar:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * _lr_factor(cfg, it, total)
            images = [im.to(device) for im in images]
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
            losses = detector(images, targets)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}, iteration {it}: lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
            optimizer.step()
            it += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
            bar.set_postfix(loss=f"{float(loss):.3f}", lr=f"{optimizer.param_groups[0]['lr']:.4f}")
            if cfg.max_iters and it >= cfg.max_iters:
                break
        steps = max(bar.n, 1)
        record = {"epoch": epoch + 1, "seconds": round(time.time() - started, 1),
                  **{k: round(v / steps, 4) for k, v in sums.items()}}
        detector.save(last, epoch=epoch + 1, optimizer=optimizer.state_dict(), best_map50=best)
        if val_data is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
            from bcedge.evaluate import evaluate_detector

            metrics = evaluate_detector(detector, val_data)
            record.update(mAP=metrics["mAP"], mAP50=metrics["mAP50"])
            if metrics["mAP50"] > best:
                best = metrics["mAP50"]
                meta.metrics = {"val": metrics}
                detector.save(best_path, epoch=epoch + 1)
                detector.save(last, epoch=epoch + 1, optimizer=optimizer.state_dict(), best_map50=best)
        log(json.dumps(record))
        with open(out_dir / "history.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if cfg.max_iters and it >= cfg.max_iters:
            break
    return best_path if best_path.exists() else last
