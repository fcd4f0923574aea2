"""Training the scale-guess network (``bcedge.models.scale_prior``) on annotated smears.

Each sample emulates another microscope: an image resampled by a random factor (its median red cell
from ``MIN_CELL_PX`` to ``MAX_CELL_PX`` user pixels, the image at least ``MIN_SIDE`` px across), its
central-square view cut at a random place, sometimes mirrored out to a larger image (a large frame with
small cells, which the training images, all under 640 px, never show), with stain, lamp, camera, blur
and noise jitter; the target is the log of its red cells' diameter in the thumbnail the runtime would
make of it (``bcedge.runtime.scale_prior.thumbnail``). The factor is drawn whatever the source, so the
network has to read cell size, not recognise the microscope.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from bcedge.data.annotations import Dataset
from bcedge.data.cellsize import image_cell_sizes
from bcedge.imageio import read_image
from bcedge.models.scale_prior import ScalePriorNet
from bcedge.runtime.scale_prior import MAX_CROP, THUMB, thumbnail, to_blob
from bcedge.train.augment import AugmentConfig, jitter_colour
from bcedge.train.dataset import sampling_weights

MIN_CELL_PX, MAX_CELL_PX = 14.0, 600.0   # red cells of the emulated images, their own pixels
MIN_SIDE = 160                          # the emulated image's shorter side at least


@dataclass
class PriorConfig:
    steps: int = 3000
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    minutes: float | None = None        # a time budget: the cosine decay ends on it
    mirror: float = 0.3                 # probability of mirroring a small view out to a larger image
    noise: float = 0.2                  # probability of sensor noise (sigma 2-15 grey levels)
    blur: float = 0.2                   # probability of a defocus blur
    colour: AugmentConfig = field(default_factory=lambda: AugmentConfig(
        hue=12.0, saturation=0.4, channel_gain=0.15, brightness=0.25, contrast=0.25, greyscale=0.1))
    seed: int = 0
    save_every: int = 500               # steps between resumable checkpoints


def emulated_view(image: np.ndarray, cell_px: float, rng: np.random.Generator, cfg: PriorConfig,
                  factor: float | None = None) -> tuple[np.ndarray, float]:
    """A thumbnail of ``image`` as a microscope ``factor`` times its magnification would give it (drawn when
    None), and the log of its red cells' diameter in thumbnail pixels."""
    h, w = image.shape[:2]
    if factor is None:
        low = max(MIN_CELL_PX / cell_px, MIN_SIDE / min(h, w))
        high = max(low, MAX_CELL_PX / cell_px)
        factor = float(np.exp(rng.uniform(math.log(low), math.log(high))))
    side = min(min(h, w) * factor, MAX_CROP)           # the runtime's central square, emulated pixels
    source_side = min(h, w, max(1, round(side / factor)))
    x0, y0 = rng.integers(0, w - source_side + 1), rng.integers(0, h - source_side + 1)
    view, cell, view_px = image[y0:y0 + source_side, x0:x0 + source_side], cell_px, factor   # emulated px per view px
    if factor < 1:   # the other camera's own, coarser pixels
        side_px = max(8, round(source_side * factor))
        view = cv2.resize(np.ascontiguousarray(view), (side_px, side_px), interpolation=cv2.INTER_AREA)
        cell, view_px = cell_px * side_px / source_side, 1.0
    if side < MAX_CROP and rng.random() < cfg.mirror:   # a larger image of the same smear
        grown = round(rng.uniform(side, min(MAX_CROP, 3 * side)) / view_px)
        extra = max(0, grown - view.shape[0])
        before = int(rng.integers(0, extra + 1))
        view = np.pad(view, ((before, extra - before), (before, extra - before), (0, 0)), mode="symmetric")
    view = np.rot90(view, int(rng.integers(4)))
    if rng.random() < 0.5:
        view = view[:, ::-1]
    thumb, per_px = thumbnail(np.ascontiguousarray(view))
    thumb = jitter_colour(thumb, cfg.colour, rng)
    if rng.random() < cfg.blur:
        thumb = cv2.GaussianBlur(thumb, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < cfg.noise:
        thumb = np.clip(thumb + rng.normal(0, rng.uniform(2, 15), thumb.shape), 0, 255).astype(np.uint8)
    return thumb, math.log(cell * per_px)


class ViewSampler:
    """Random emulated views of a dataset's images, sources drawn in balance (``sampling_weights``)."""

    def __init__(self, data: Dataset, cfg: PriorConfig) -> None:
        self.images = [read_image(r.image_path) for r in data.images]
        self.cell_px = image_cell_sizes(data)
        usable = np.isfinite(self.cell_px)
        weights = sampling_weights(data, rare_classes=False) * usable
        self.p = weights / weights.sum()
        self.cfg = cfg

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        picks = rng.choice(len(self.images), size=size, p=self.p)
        views = [emulated_view(self.images[i], float(self.cell_px[i]), rng, self.cfg) for i in picks]
        return np.stack([v for v, _ in views]), np.array([t for _, t in views], np.float32)


def train_prior(data: Dataset, cfg: PriorConfig, out_dir: str | Path, log=print, resume: bool = False) -> ScalePriorNet:
    """Train on ``data``, saving ``checkpoint.pt`` every ``cfg.save_every`` steps and at the end, and
    ``history.jsonl``, under ``out_dir``; ``resume`` goes on from the checkpoint there (weights, optimiser, step,
    time spent, sampling state), so a cut-off run ends as it would have."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    sampler = ViewSampler(data, cfg)
    net = ScalePriorNet()
    optimiser = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    first_step, spent_s = 0, 0.0
    if resume:
        state = torch.load(out / "checkpoint.pt", weights_only=False)
        net.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        rng.bit_generator.state = state["rng"]
        first_step, spent_s = state["step"], state["spent_s"]
        log(f"resumed at step {first_step} ({spent_s / 60:.1f} min spent)")
    started, losses, step = time.time() - spent_s, [], first_step

    def save() -> None:
        torch.save({"model": net.state_dict(), "optimiser": optimiser.state_dict(), "rng": rng.bit_generator.state,
                    "step": step, "spent_s": time.time() - started, "config": {"thumb": THUMB}}, out / "checkpoint.pt")

    with open(out / "history.jsonl", "a" if resume else "w") as history:
        while step < cfg.steps:
            done = (time.time() - started) / (cfg.minutes * 60) if cfg.minutes else step / cfg.steps
            if done >= 1:
                break
            for group in optimiser.param_groups:
                group["lr"] = cfg.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * done))
            thumbs, targets = sampler.batch(rng, cfg.batch_size)
            predicted = net(torch.from_numpy(to_blob(thumbs))).squeeze(1)
            loss = torch.nn.functional.smooth_l1_loss(predicted, torch.from_numpy(targets), beta=0.1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
            step += 1
            if step % 50 == 0:
                row = {"step": step, "loss": round(float(np.mean(losses[-50:])), 4),
                       "minutes": round((time.time() - started) / 60, 2)}
                history.write(json.dumps(row) + "\n")
                history.flush()
                log(json.dumps(row))
            if step % cfg.save_every == 0:
                save()
    save()
    return net.eval()


def export_prior(net: ScalePriorNet, path: str | Path) -> Path:
    """The network as a fixed-size ONNX graph for OpenCV's DNN module (BatchNorm folded by the exporter)."""
    path = Path(path)
    dummy = torch.zeros(1, 3, THUMB, THUMB)
    torch.onnx.export(net.eval(), dummy, str(path), input_names=["thumbnail"], output_names=["log_cell_px"],
                      opset_version=13, dynamo=False, do_constant_folding=True)
    return path
