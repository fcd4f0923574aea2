"""Reference NMS in vectorised numpy: per class, the classic greedy loop. O(n^2) in the worst case."""
from __future__ import annotations

import numpy as np

from bcedge.runtime.nms._common import areas32, score_order, sort_by_rank


def is_available() -> bool:
    return True


def nms(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: np.float32) -> np.ndarray:
    order = score_order(scores)
    areas = areas32(xyxy)
    x0, y0, x1, y1 = (xyxy[:, k] for k in range(4))
    keep: list[int] = []
    ordered_classes = class_ids[order]
    for cls in np.unique(class_ids):
        idx = order[ordered_classes == cls]
        while idx.size:
            i, rest = idx[0], idx[1:]
            keep.append(int(i))
            w = np.maximum(np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]), np.float32(0))
            h = np.maximum(np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]), np.float32(0))
            inter = w * h
            union = (areas[i] + areas[rest]) - inter
            with np.errstate(divide="ignore", invalid="ignore"):
                suppress = (union > 0) & (inter / union > iou)
            idx = rest[~suppress]
    return sort_by_rank(np.array(keep, dtype=np.int64), scores)
