"""The ``core`` merge (see ``merge``) on torch tensors, on the device that holds the detections: a
GPU backend that decodes on its device merges there too, and only the final detections come back.

Same rule and same result as ``merge_tiles(..., MergeParams("core"))``: boxes clipped to the image, a
detection kept only from the tile whose core holds its centre (inner sides widened by ``tolerance``,
at most a quarter of the box's smaller side; compared in float64 as the host does), then class-aware
NMS (``nms.torch_grid``, exact). torch is the caller's: this module never imports it.
"""
from __future__ import annotations

import sys
from typing import Sequence

import numpy as np

from bcedge.detections import Detections
from bcedge.runtime.merge import MergeParams, core_bounds
from bcedge.runtime.nms.torch_grid import nms_tensors
from bcedge.runtime.tiling import Tile


def merge_on_device(boxes, scores, class_ids, tile_ids, tiles: Sequence[Tile], params: MergeParams | None = None):
    """Indices (int64 tensor, on the boxes' device) of the detections the core merge keeps, highest
    score first. ``boxes`` (N, 4) float32 in image pixels, ``scores`` (N,), ``class_ids`` and
    ``tile_ids`` (N,) int64 (``tile_ids[k]`` indexes ``tiles``); all tensors on one device."""
    torch = sys.modules["torch"]
    params = params or MergeParams()
    if params.strategy != "core":
        raise ValueError(f"merge on the device: only the 'core' strategy runs there, not {params.strategy!r}")
    device = boxes.device
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.int64, device=device)
    lo, hi, limits = core_bounds(tiles)
    clipped = clip_to_image(torch, boxes, limits)
    inside = torch.nonzero(in_own_core(torch, clipped, tile_ids, torch.from_numpy(lo).to(device),
                                       torch.from_numpy(hi).to(device), params.tolerance)).squeeze(1)
    kept = nms_tensors(clipped[inside], scores[inside], class_ids[inside], params.iou)
    return inside[kept]


def clip_to_image(torch, boxes, limits: np.ndarray):
    """Boxes clipped to [0, width] x [0, height] (padded tiles can report boxes past the image);
    ``limits`` is ``merge.core_bounds``' (width, height, width, height)."""
    if limits[0] <= 0 or limits[1] <= 0:
        return boxes
    return torch.minimum(boxes.clamp(min=0), torch.from_numpy(limits).to(boxes.device))


def in_own_core(torch, boxes, tile_ids, lo, hi, tolerance: float):
    """Mask of boxes whose centre lies in their tile's core, widened by the tolerance (``merge.in_own_core``)."""
    centres = torch.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1).double()
    smaller = (boxes[:, 2:] - boxes[:, :2]).double().clamp(min=0).amin(1, keepdim=True)
    tol = torch.clamp(smaller / 4, max=float(tolerance))
    return ((centres >= lo[tile_ids] - tol) & (centres < hi[tile_ids] + tol)).all(1)


class DeviceTiles:
    """An image's per-tile detections, left on the device batch by batch and merged there at the end:
    what ``Counter`` collects when its backend decodes on its device (``detect_on_device``)."""

    def __init__(self) -> None:
        self.tiles: list[Tile] = []
        self._parts: list[tuple] = []

    def add(self, tiles: Sequence[Tile], found: tuple) -> None:
        """One batch: ``found`` is (tile index within the batch, boxes in tile pixels, scores, class ids)."""
        torch = sys.modules["torch"]
        index, boxes, scores, class_ids = found
        shift = torch.tensor([[t.x0, t.y0, t.x0, t.y0] for t in tiles], dtype=boxes.dtype, device=boxes.device)
        self._parts.append((boxes + shift[index], scores, class_ids, index + len(self.tiles)))
        self.tiles.extend(tiles)

    def merge(self, params: MergeParams | None = None) -> Detections:
        """The merged detections, brought to the host: the only copy off the device."""
        if not self._parts:
            return Detections.empty()
        torch = sys.modules["torch"]
        boxes, scores, class_ids, tile_ids = (torch.cat(part) for part in zip(*self._parts))
        keep = merge_on_device(boxes, scores, class_ids, tile_ids, self.tiles, params)
        kept = clip_to_image(torch, boxes[keep], core_bounds(self.tiles)[2])
        return Detections(kept.cpu().numpy(), scores[keep].cpu().numpy(), class_ids[keep].cpu().numpy())
