"""Matching detections to ground truth without an N x M IoU matrix: P/R/F1, and the duplicates a bad seam
makes (a second match, or a partial box inside a counted cell), told apart by the tile they came from."""
from __future__ import annotations

import numpy as np

from bcedge.boxes import pairwise_iou
from bcedge.detections import Detections
from bcedge.runtime.containment import containment
from bcedge.runtime.tiling import TileGrid
from bcedge.testing.oracle import Truth


def cut_cells(truth: Truth, tiles: TileGrid | np.ndarray, image_w: int = 0, image_h: int = 0) -> np.ndarray:
    """Mask of ground-truth cells that some tile border (not the image border) cuts.

    ``tiles``: a ``TileGrid``, or (T, 4) tile boxes xyxy with the image size (another tiler's slices)."""
    if isinstance(tiles, TileGrid):
        tiles, image_w, image_h = tiles.boxes(), tiles.image_w, tiles.image_h
    tiles = np.asarray(tiles).reshape(-1, 4)
    xs, ys = np.concatenate([tiles[:, 0], tiles[:, 2]]), np.concatenate([tiles[:, 1], tiles[:, 3]])
    x_edges = np.unique(xs[(xs > 0) & (xs < image_w)])
    y_edges = np.unique(ys[(ys > 0) & (ys < image_h)])

    def crossed(lo: np.ndarray, hi: np.ndarray, edges: np.ndarray) -> np.ndarray:
        return np.searchsorted(edges, lo, side="right") < np.searchsorted(edges, hi, side="left")

    b = truth.xyxy
    return crossed(b[:, 0], b[:, 2], x_edges) | crossed(b[:, 1], b[:, 3], y_edges)


def match(dets: Detections, truth: Truth, cut: np.ndarray | None = None, det_tiles: np.ndarray | None = None,
          iou: float = 0.5, fragment_ios: float = 0.8) -> dict:
    """Greedy COCO-style matching per class (best score first, IoU >= ``iou``), plus duplicate checks.

    ``multi_matched``: ground-truth cells with two or more same-class detections at IoU >= ``iou``.
    ``fragments``: unmatched detections lying mostly (intersection over the detection >= ``fragment_ios``)
    inside a matched same-class cell: a partial box of a cell already counted, what a bad seam makes.
    ``duplicated``: cells with two or more such detections (multi-matched or matched plus fragments).
    With ``det_tiles`` (the tile each detection came from) a duplicated cell is a *seam* duplicate when
    its detections come from different tiles, else a *same-tile* one (the detector's own double box).
    With ``cut`` (cells cut by some tile border) fragments are split into cut and uncut cells.
    """
    keys = ("tp", "fp", "fn", "multi_matched", "fragments", "fragments_cut", "fragments_uncut", "duplicated",
            "seam_duplicates", "same_tile_duplicates")
    per_class, total = {}, dict.fromkeys(keys, 0)
    matched_gt = np.zeros(len(truth), bool)
    for k, name in enumerate(truth.class_names):
        gt_idx = np.flatnonzero(truth.class_ids == k)
        gt = truth.xyxy[gt_idx].astype(np.float64)
        mine = dets[dets.class_ids == k]
        order = np.argsort(-mine.scores, kind="stable")
        tiles_of = det_tiles[dets.class_ids == k][order] if det_tiles is not None else None
        boxes = mine.xyxy[order].astype(np.float64)
        by_x0 = np.argsort(gt[:, 0], kind="stable")
        x0_sorted = gt[by_x0, 0]
        widest = float((gt[:, 2] - gt[:, 0]).max()) if len(gt) else 0.0
        taken = np.zeros(len(gt), bool)
        hits = np.zeros(len(gt), np.int64)
        assoc: dict[int, list[int]] = {}   # ground-truth index -> detections (order index) that are on it
        unmatched_inside: list[int] = []  # index into gt of the cell an unmatched detection sits in
        tp = 0
        for d, box in enumerate(boxes):
            lo, hi = np.searchsorted(x0_sorted, [box[0] - widest, box[2]])
            cand = by_x0[lo:hi]
            if len(cand) == 0:
                continue
            ious = pairwise_iou(box[None], gt[cand])[0]
            ios = containment(box[None], gt[cand])[0]  # intersection over the detection
            hits[cand[ious >= iou]] += 1
            for g in cand[ious >= iou]:
                assoc.setdefault(int(g), []).append(d)
            free = np.where(taken[cand], -1.0, ious)
            j = int(np.argmax(free))
            if free[j] >= iou:
                taken[cand[j]] = True
                tp += 1
            elif ios.max() >= fragment_ios:
                g = int(cand[int(np.argmax(ios))])
                unmatched_inside.append(g)
                if ious.max() < iou:
                    assoc.setdefault(g, []).append(d)
        inside = np.array(unmatched_inside, np.int64)
        frag = inside[taken[inside]] if len(inside) else inside
        frag_cut = int(cut[gt_idx[frag]].sum()) if cut is not None and len(frag) else 0
        dup = [ds for g, ds in assoc.items() if taken[g] and len(ds) >= 2]
        seam = sum(len(set(tiles_of[ds].tolist())) >= 2 for ds in dup) if tiles_of is not None else 0
        stats = {"truth": int(len(gt)), "predicted": int(len(mine)), "tp": tp, "fp": int(len(mine) - tp),
                 "fn": int(len(gt) - tp), "multi_matched": int((hits >= 2).sum()), "fragments": int(len(frag)),
                 "fragments_cut": frag_cut, "fragments_uncut": int(len(frag) - frag_cut), "duplicated": len(dup),
                 "seam_duplicates": int(seam), "same_tile_duplicates": int(len(dup) - seam)}
        stats.update(prf(stats["tp"], stats["fp"], stats["fn"]))
        per_class[name] = stats
        for key in total:
            total[key] += stats[key]
        matched_gt[gt_idx[taken]] = True
    total.update(prf(total["tp"], total["fp"], total["fn"]))
    if cut is not None:
        total["cut_cells"] = int(cut.sum())
        total["uncut_cells"] = int((~cut).sum())
    return {"all": total, "per_class": per_class, "matched": matched_gt}


def prf(tp: int, fp: int, fn: int) -> dict:
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}
