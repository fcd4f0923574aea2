"""One result type for every backend, merge step, counter, report and the watch service."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np


@dataclass
class Detections:
    """Boxes found in one image (or one tile): numpy arrays, pixels, ``xyxy``.

    ``xyxy`` is (N, 4) float32, ``scores`` (N,) float32, ``class_ids`` (N,) int64 indexing
    ``class_names`` of the model that produced them.
    """

    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        n = len(self.xyxy)
        if len(self.scores) != n or len(self.class_ids) != n:
            raise ValueError(
                f"Detections arrays disagree in length: xyxy {n}, scores {len(self.scores)}, "
                f"class_ids {len(self.class_ids)}"
            )

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    @classmethod
    def concat(cls, parts: Iterable["Detections"]) -> "Detections":
        parts = list(parts)
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.class_ids for p in parts]),
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> "Detections":
        """Select by a boolean mask, an index array or a slice."""
        return Detections(self.xyxy[index], self.scores[index], self.class_ids[index])

    def shift(self, dx: float, dy: float) -> "Detections":
        """Move boxes by (dx, dy): from tile coordinates to image coordinates."""
        offset = np.array([dx, dy, dx, dy], dtype=np.float32)
        return Detections(self.xyxy + offset, self.scores, self.class_ids)

    def scale(self, sx: float, sy: float) -> "Detections":
        factor = np.array([sx, sy, sx, sy], dtype=np.float32)
        return Detections(self.xyxy * factor, self.scores, self.class_ids)

    def clip(self, width: float, height: float) -> "Detections":
        """Boxes clipped to an image of ``width`` x ``height`` (e.g. out of a padded tile)."""
        limit = np.array([width, height, width, height], dtype=np.float32)
        return Detections(np.clip(self.xyxy, 0, limit), self.scores, self.class_ids)

    def centers(self) -> np.ndarray:
        return np.stack(
            [(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, (self.xyxy[:, 1] + self.xyxy[:, 3]) / 2], axis=1
        )

    def areas(self) -> np.ndarray:
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    def counts(self, class_names: Sequence[str]) -> dict[str, int]:
        """Detections per class name, every class present (zero when none was found)."""
        per_id = np.bincount(self.class_ids, minlength=len(class_names)) if len(self) else None
        return {name: int(per_id[i]) if per_id is not None else 0 for i, name in enumerate(class_names)}

    def to_coco(self, image_id: int, class_names: Sequence[str], category_ids: Sequence[int] | None = None) -> list[dict]:
        """COCO-style result entries (``bbox`` as x, y, width, height)."""
        category_ids = list(category_ids) if category_ids is not None else list(range(1, len(class_names) + 1))
        out = []
        for (x0, y0, x1, y1), score, cid in zip(self.xyxy.tolist(), self.scores.tolist(), self.class_ids.tolist()):
            out.append({
                "image_id": image_id,
                "category_id": int(category_ids[cid]),
                "category": class_names[cid],
                "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                "score": round(float(score), 5),
            })
        return out
