"""NMS through torchvision, only when the caller has already imported torch (never imported here)."""
from __future__ import annotations

import importlib.util
import sys

import numpy as np

from bcedge.runtime.nms._common import score_order, sort_by_rank


def is_available() -> bool:
    return "torch" in sys.modules and importlib.util.find_spec("torchvision") is not None


def is_gpu() -> bool:
    return is_available() and bool(sys.modules["torch"].cuda.is_available())


def nms(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: np.float32) -> np.ndarray:
    torch = sys.modules["torch"]
    from torchvision.ops import nms as tv_nms

    device = "cuda" if torch.cuda.is_available() else "cpu"
    # Feed boxes already in (score desc, index asc) order so torchvision's sort keeps our tie order.
    order = score_order(scores)
    keep: list[np.ndarray] = []
    ordered_cls = class_ids[order]
    for cls in np.unique(class_ids):  # per class, not the coordinate-offset trick: no float rounding drift
        idx = order[ordered_cls == cls]
        boxes = torch.from_numpy(xyxy[idx]).to(device)
        kept = tv_nms(boxes, torch.from_numpy(scores[idx]).to(device), float(iou))
        keep.append(idx[kept.cpu().numpy()])
    return sort_by_rank(np.concatenate(keep) if keep else np.zeros(0, np.int64), scores)
