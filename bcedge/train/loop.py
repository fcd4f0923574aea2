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
from bcedge.train.dataset import DetectionDataset, EpochSampler, collate, sampling_weights
from bcedge.train.ema import ModelEMA


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
    optimizer: str = "sgd"            # or "adamw" (lr ~1e-3 x batch/16)
    workers: int = 0                  # DataLoader worker processes
    ema: float = 0.0                  # decay of an exponential moving average of the weights (0: off); saved weights are the EMA's
    time_budget_s: float | None = None  # the schedule ends (and training stops) when this much time has passed
    train_bn: bool = False            # update BatchNorm statistics even with a pretrained backbone (large batches)
    init_from: str | None = None      # start from this checkpoint's weights (same architecture and classes)
    qat: bool = False                 # INT8-rounded convolutions in the forward pass (bcedge.train.qat)


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


def _lr_factor(cfg: TrainConfig, it: int, total: int, elapsed: float = 0.0) -> float:
    warm = min(1.0, (it + 1) / max(cfg.warmup_iters, 1))
    progress = min(1.0, it / max(total, 1))
    if cfg.time_budget_s:
        progress = max(progress, min(1.0, elapsed / cfg.time_budget_s))
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


def record_pixel_scale(meta, data: Dataset, augment: AugmentConfig) -> None:
    """Write the working scale into the metadata, and the overlap floor in model pixels at that scale."""
    from bcedge.data.cellsize import image_cell_sizes, scale_summary
    from bcedge.models import largest_object

    target = float(augment.target_cell_px)
    sizes = image_cell_sizes(data)
    scaled = [r.boxes * (target / s) for r, s in zip(data.images, sizes) if len(r.boxes) and np.isfinite(s)]
    meta.max_object_size = largest_object(np.concatenate(scaled)) if scaled else meta.max_object_size
    meta.pixel_scale = {"cell_class": "RBC", "cell_px": target,
                        "range_px": [round(target * augment.scale[0], 1), round(target * augment.scale[1], 1)],
                        "um_per_px": None, "training_data": scale_summary(data)}


def _optimizer(cfg: TrainConfig, params: list) -> torch.optim.Optimizer:
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; known: sgd, adamw")


def _resume(cfg: TrainConfig, train_data: Dataset, last: Path, device: torch.device, log) -> tuple[Detector, dict]:
    if not last.exists():
        detector = build_detector(cfg.arch, train_data.class_names, cfg.input_size, cfg.pretrained,
                                  train_boxes=_all_boxes(train_data, cfg.input_size))
        return detector.to(device), {}
    detector, state = load_detector(last, map_location=str(device))
    if "train_model" in state:   # saved weights are the EMA's; training continues from the raw ones
        detector.model.load_state_dict(state["train_model"])
    log(f"resuming from {last} at epoch {state.get('epoch', 0)}")
    return detector, state


def train(cfg: TrainConfig, train_data: Dataset, out_dir: str | Path, val_data: Dataset | None = None,
          log=print) -> Path:
    """Train ``cfg.arch`` on ``train_data``; resumes from ``out_dir/last.pt`` when present.

    Writes ``last.pt`` every epoch, ``best.pt`` (best val mAP50) when ``val_data`` is given, and
    ``history.jsonl``. Returns the path of the final checkpoint (best if validated, else last).
    With ``cfg.ema`` the saved weights are the moving average (``last.pt`` also keeps the raw ones).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = _device(cfg.device)
    torch.manual_seed(cfg.seed)
    last, best_path = out_dir / "last.pt", out_dir / "best.pt"
    detector, state = _resume(cfg, train_data, last, device, log)
    if cfg.init_from and not state:
        start, _ = load_detector(cfg.init_from, map_location=str(device))
        if start.meta.class_names != detector.meta.class_names or start.meta.arch != detector.meta.arch:
            raise ValueError(f"--init-from {cfg.init_from}: a {start.meta.arch} for {start.meta.class_names}, "
                             f"this run trains a {detector.meta.arch} for {detector.meta.class_names}")
        detector.model.load_state_dict(start.model.state_dict())
        log(f"starting from the weights of {cfg.init_from}")
    if cfg.qat:
        from bcedge.train.qat import fake_quantize_convs

        log(f"quantization-aware: {fake_quantize_convs(detector.model)} convolutions see INT8-rounded inputs and weights")
    meta = detector.meta
    meta.train_data = dataset_fingerprint(train_data)
    recipe = asdict(cfg)
    recipe["augment"] = asdict(cfg.augment)
    meta.recipe = recipe
    if cfg.augment.target_cell_px:
        record_pixel_scale(meta, train_data, cfg.augment)
    if cfg.train_bn:
        detector.frozen_bn = False
    if cfg.freeze_backbone:
        for p in detector.model.backbone.body.parameters():
            p.requires_grad_(False)

    data = DetectionDataset(train_data, cfg.input_size, cfg.augment, cfg.seed)
    weights = sampling_weights(train_data, cfg.rare_class_sampling)
    params = [p for p in detector.parameters() if p.requires_grad]
    optimizer = _optimizer(cfg, params)
    if "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    ema = ModelEMA(detector, cfg.ema, updates=int(state.get("ema_updates", 0))) if cfg.ema else None
    start_epoch = int(state.get("epoch", 0))
    best = float(state.get("best_map50", -1.0))
    steps_per_epoch = max(1, math.ceil(weights.sum() / cfg.batch_size))
    per_epoch = steps_per_epoch * cfg.batch_size   # whole batches, so epochs never share one
    total = cfg.epochs * steps_per_epoch
    it = start_epoch * steps_per_epoch
    elapsed_before, run_started = float(state.get("elapsed_s", 0.0)), time.time()
    elapsed = lambda: elapsed_before + time.time() - run_started  # noqa: E731
    out_of_time = lambda: bool(cfg.time_budget_s) and elapsed() >= cfg.time_budget_s  # noqa: E731

    def save(path: Path, **extra) -> None:
        if ema is None:
            detector.save(path, **extra)
            return
        ema.module.meta = meta
        ema.module.save(path, train_model=detector.model.state_dict(), ema_updates=ema.updates, **extra)

    sampler = EpochSampler(weights, per_epoch, start_epoch, cfg.epochs, cfg.seed)
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate,
                                         num_workers=cfg.workers, pin_memory=device.type == "cuda")
    batches = iter(loader)
    for epoch in range(start_epoch, cfg.epochs):
        if out_of_time():
            break
        detector.train()
        started, sums, steps = time.time(), {}, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, dynamic_ncols=True)
        for _ in bar:
            images, targets = next(batches)
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * _lr_factor(cfg, it, total, elapsed())
            images = [im.to(device, non_blocking=True).float().div_(255) for im in images]
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
            losses = detector(images, targets)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}, iteration {it}: lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
            optimizer.step()
            if ema is not None:
                ema.update(detector)
            it += 1
            steps += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", lr=f"{optimizer.param_groups[0]['lr']:.4f}")
            if (cfg.max_iters and it >= cfg.max_iters) or out_of_time():
                break
        steps = max(steps, 1)
        record = {"epoch": epoch + 1, "seconds": round(time.time() - started, 1), "lr": optimizer.param_groups[0]["lr"],
                  **{k: round(v / steps, 4) for k, v in sums.items()}}
        save(last, epoch=epoch + 1, optimizer=optimizer.state_dict(), best_map50=best, elapsed_s=elapsed())
        if val_data is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs or out_of_time()):
            from bcedge.evaluate import evaluate_detector

            metrics = evaluate_detector(ema.module if ema is not None else detector, val_data)
            record.update(mAP=metrics["mAP"], mAP50=metrics["mAP50"])
            if metrics["mAP50"] > best:
                best = metrics["mAP50"]
                meta.metrics = {"val": metrics}
                save(best_path, epoch=epoch + 1)
                save(last, epoch=epoch + 1, optimizer=optimizer.state_dict(), best_map50=best, elapsed_s=elapsed())
        log(json.dumps(record))
        with open(out_dir / "history.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if cfg.max_iters and it >= cfg.max_iters:
            break
    return best_path if best_path.exists() else last
