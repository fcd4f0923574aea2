"""Anchor sizes and aspect ratios derived from a dataset's box statistics (no torch needed)."""
from __future__ import annotations

import numpy as np

# BCCD at 640x480: platelets ~40 px, RBC ~100 px, WBC ~190 px (used when no statistics are given).
DEFAULT_SIZE_RANGE = (24.0, 260.0)
DEFAULT_ASPECT_RATIOS = (0.5, 1.0, 2.0)


def anchor_config(boxes: np.ndarray | None = None, levels: int = 5) -> dict:
    """Sizes (one base size per pyramid level, geometric from small to large objects) and aspect ratios.

    ``boxes`` is (N, 4) xyxy in model-input pixels. The 1st and 99th percentile of sqrt(area) span the
    levels; aspect ratios (height / width) are the 10th, 50th and 90th percentiles, always including 1.
    """
    lo, hi = DEFAULT_SIZE_RANGE
    ratios = DEFAULT_ASPECT_RATIOS
    if boxes is not None and len(boxes) >= 10:
        wh = np.clip(boxes[:, 2:] - boxes[:, :2], 1e-3, None)
        side = np.sqrt(wh[:, 0] * wh[:, 1])
        lo, hi = (float(v) for v in np.percentile(side, [1, 99]))
        lo, hi = max(lo, 8.0), max(hi, lo * 2)
        q = np.percentile(wh[:, 1] / wh[:, 0], [10, 50, 90])
        ratios = tuple(sorted({round(float(v), 2) for v in (q[0], 1.0, q[2])}))
    sizes = [round(lo * (hi / lo) ** (i / max(levels - 1, 1)), 1) for i in range(levels)]
    return {"sizes": sizes, "aspect_ratios": list(ratios), "size_range": [round(lo, 1), round(hi, 1)]}


def per_level_scales(size: float, scales_per_level: int = 3) -> tuple[float, ...]:
    """RetinaNet-style octave scales around one base size: s, s*2^(1/3), s*2^(2/3)."""
    return tuple(round(size * 2 ** (k / scales_per_level), 1) for k in range(scales_per_level))
