"""torch datasets over ``bcedge.data.Dataset``: images fitted to the model's input size, labels 1..C."""
from __future__ import annotations

import numpy as np
import torch

from bcedge.data.annotations import Dataset
from bcedge.imageio import read_image
from bcedge.imageops import fit_to_size
from bcedge.train.augment import AugmentConfig, augment


class DetectionDataset(torch.utils.data.Dataset):
    """Yields (uint8 image tensor 3xHxW, target dict) for torchvision detectors (the loop scales to 0..1).

    With ``augment`` set, each access draws a new random augmentation; otherwise images are
    cropped/padded from the top-left to the input size (for BCCD at 640x480: unchanged).
    """

    def __init__(self, data: Dataset, input_size: tuple[int, int], augment_cfg: AugmentConfig | None = None,
                 seed: int = 0) -> None:
        self.data, self.input_size, self.augment_cfg = data, tuple(input_size), augment_cfg
        self.class_to_label = {name: i + 1 for i, name in enumerate(data.class_names)}
        self.seed, self.epoch = seed, 0
        self.base_scales = np.ones(len(data), np.float32)
        if augment_cfg is not None and augment_cfg.target_cell_px:
            from bcedge.data.cellsize import image_cell_sizes

            sizes = image_cell_sizes(data)
            self.base_scales = np.where(np.isfinite(sizes), augment_cfg.target_cell_px / sizes, 1.0).astype(np.float32)

    def __len__(self) -> int:
        return len(self.data)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        record = self.data.images[index]
        image = read_image(record.image_path)
        labels = np.array([self.class_to_label[n] for n in record.labels], dtype=np.int64)
        boxes = record.boxes.astype(np.float32)
        if self.augment_cfg is None:
            return fit_to_size(image, boxes, labels, self.input_size, None, min_visible=0.35)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return augment(image, boxes, labels, self.input_size, self.augment_cfg, rng, float(self.base_scales[index]))

    def __getitem__(self, index):
        if isinstance(index, tuple):   # (epoch, index) from EpochSampler: persistent workers learn the epoch
            self.epoch, index = index
        image, boxes, labels = self.sample(index)
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)   # uint8: 4x less to pass between processes
        return tensor, {"boxes": torch.from_numpy(boxes.reshape(-1, 4)), "labels": torch.from_numpy(labels)}


def repeat_factors(data: Dataset, threshold: float = 0.5) -> np.ndarray:
    """LVIS repeat-factor sampling: images holding a rare class are drawn more often.

    r(c) = max(1, sqrt(t / f(c))) with f(c) the fraction of images containing class c; an image's factor
    is the largest over its classes. With BCCD's WBC/platelets this mostly lifts platelet-rich images.
    """
    present = [set(r.labels) for r in data.images]
    freq = {c: sum(c in p for p in present) / max(len(present), 1) for c in data.class_names}
    class_factor = {c: max(1.0, float(np.sqrt(threshold / f))) if f > 0 else 1.0 for c, f in freq.items()}
    return np.array([max((class_factor[c] for c in p), default=1.0) for p in present])


def sampling_weights(data: Dataset, rare_classes: bool = True) -> np.ndarray:
    """Per-image draw weights: every source group an equal share (when there are several), times
    the repeat factor of the image's rarest class."""
    from bcedge.data.multisource import group_weights

    weights = repeat_factors(data) if rare_classes else np.ones(len(data))
    per_group = group_weights(data)
    return weights * np.array([per_group[r.group] for r in data.images])


class EpochSampler(torch.utils.data.Sampler):
    """Weighted draws with replacement for epochs ``start..epochs-1``, yielding ``(epoch, index)``.

    One sampler for the whole run lets one DataLoader keep its worker processes (restarting 14
    workers every epoch costs seconds when an epoch takes a few); the epoch travels with the index
    so each draw's augmentation stays reproducible."""

    def __init__(self, weights: np.ndarray, per_epoch: int, start: int, epochs: int, seed: int = 0) -> None:
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        self.per_epoch, self.start, self.epochs, self.seed = per_epoch, start, epochs, seed

    def __iter__(self):
        for epoch in range(self.start, self.epochs):
            generator = torch.Generator().manual_seed(self.seed * 1000 + epoch)
            for index in torch.multinomial(self.weights, self.per_epoch, replacement=True, generator=generator).tolist():
                yield epoch, index

    def __len__(self) -> int:
        return max(0, self.epochs - self.start) * self.per_epoch


def collate(batch):
    return tuple(zip(*batch))
