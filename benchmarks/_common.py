"""Shared pieces of the runtime benchmarks: cached synthetic smears with their ground truth, the model
to run (``default``, an .onnx file, or a .pt checkpoint exported here at a chosen tile size), matching
detections to ground truth without an N x M IoU matrix, a ground-truth oracle backend, and result files.

Benchmarks import this as ``from _common import ...`` (``python benchmarks/x.py`` puts this folder on
``sys.path``). Nothing here is part of the installed library.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bcedge.artifact import ModelMeta  # noqa: E402
from bcedge.backends.base import Backend  # noqa: E402
from bcedge.bench.machine import describe_machine, machine_line  # noqa: E402
from bcedge.boxes import pairwise_iou  # noqa: E402
from bcedge.detections import Detections  # noqa: E402
from bcedge.runtime.containment import containment  # noqa: E402
from bcedge.runtime.tiling import TileGrid  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
CACHE = Path(os.environ.get("BCEDGE_BENCH_CACHE", "/tmp/bcedge-bench"))


def run_child_json(code: str, args: list[str], what: str) -> dict:
    """Run ``code`` in a fresh Python (this repository importable) and parse the JSON of its last stdout line.

    A fresh process per measurement keeps peak memory (``ru_maxrss``) its own."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_size(text: str) -> tuple[int, int]:
    """``4096x3072`` -> (4096, 3072)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT") from None
    return width, height


# --- smears and their ground truth ---------------------------------------------------------------

@dataclass
class Truth:
    """Ground-truth boxes (xyxy, image pixels) and class ids in the order of ``class_names``."""

    xyxy: np.ndarray
    class_ids: np.ndarray
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.xyxy)

    @property
    def counts(self) -> dict[str, int]:
        return {n: int((self.class_ids == k).sum()) for k, n in enumerate(self.class_names)}

    @property
    def max_side(self) -> float:
        return float((self.xyxy[:, 2:] - self.xyxy[:, :2]).max()) if len(self) else 0.0


def smear(width: int, height: int, seed: int = 0, fmt: str = "png") -> Path:
    """A synthetic smear (default BCCD-like style, no parasites) cached under ``CACHE``; its labels sit beside it."""
    from bcedge.data.synth import generate_smear

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"smear_{width}x{height}_seed{seed}.{fmt}"
    labels = path.with_suffix(".json")
    if not (path.is_file() and labels.is_file()):
        log(f"generating {path.name} ...")
        started = time.perf_counter()
        generate_smear(width, height, seed=seed, out=path)
        log(f"  done in {time.perf_counter() - started:.1f} s")
    return path


def load_truth(image_path: Path, class_names: list[str] | None = None) -> Truth:
    """The COCO labels next to a generated smear, mapped onto the model's class names (default: the labels' own)."""
    coco = json.loads(image_path.with_suffix(".json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    class_names = class_names or [names[i] for i in sorted(names)]
    index = {n: k for k, n in enumerate(class_names)}
    unknown = sorted({names[a["category_id"]] for a in coco["annotations"]} - set(index))
    if unknown:
        raise ValueError(f"{image_path}: classes {unknown} are not among the model's {class_names}")
    boxes = np.array([a["bbox"] for a in coco["annotations"]], np.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    ids = np.array([index[names[a["category_id"]]] for a in coco["annotations"]], np.int64)
    return Truth(boxes, ids, list(class_names))


# --- the model -----------------------------------------------------------------------------------

def resolve_model(spec: str, tile: int = 768, like: str | None = None) -> Path:
    """``default`` (the bundled model), an .onnx file, or a .pt checkpoint exported to ONNX at ``tile`` x ``tile``.

    ``like``: an ONNX model whose operating point (score thresholds, NMS IoU, largest object size) the
    export takes, so a checkpoint exported at another tile size counts exactly like the bundled model.
    """
    from bcedge.artifact import read_onnx_meta
    from bcedge.catalogue import resolve_model as bundled

    path = bundled(spec)
    if path.suffix.lower() not in (".pt", ".pth"):
        return path
    ref = bundled(like) if like else None
    key = f"_like{ref.stem}{int(ref.stat().st_mtime)}" if ref else ""
    out = CACHE / f"{path.stem}_{int(path.stat().st_mtime)}{key}_{tile}x{tile}.onnx"
    if not out.is_file():
        from bcedge.convert.torch2onnx import torch2onnx
        from bcedge.models import load_detector

        log(f"exporting {path} at {tile}x{tile} -> {out}")
        CACHE.mkdir(parents=True, exist_ok=True)
        detector, _ = load_detector(path)
        detector.meta.input_size = (tile, tile)  # fully convolutional: anchors become constants for this size
        if ref is not None:
            point = read_onnx_meta(ref)
            for name in ("score_thresholds", "default_score_threshold", "nms_iou", "max_object_size"):
                setattr(detector.meta, name, getattr(point, name))
        torch2onnx(detector, out)
    return out


# --- matching to ground truth --------------------------------------------------------------------

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


class TileRecorder:
    """Learns which tile each merged detection came from, through ``Counter.add_tile_hook``.

    The hook hands over each tile's detections as the counter decoded them, so ``sources(merged, grid)``
    finds each merged box among the per-tile boxes: the tile index, or -1. A new pass over the image
    (tile 0 again) starts the record afresh. ``close()`` removes the hook.
    """

    def __init__(self, counter) -> None:
        self.per_tile: list[tuple] = []
        self.close = counter.add_tile_hook(self._record)

    def _record(self, tile, dets: Detections) -> None:
        if tile.index == 0:
            self.per_tile = []
        self.per_tile.append((tile, dets))

    def sources(self, merged: Detections, grid: TileGrid) -> np.ndarray:
        if len(self.per_tile) != len(grid):
            raise RuntimeError(f"recorded {len(self.per_tile)} tiles of a {len(grid)}-tile grid")
        where: dict[bytes, int] = {}
        for tile, d in self.per_tile:
            shifted = d.shift(tile.x0, tile.y0).xyxy.astype(np.float32)
            for row in shifted:
                where.setdefault(row.tobytes(), tile.index)
        return np.array([where.get(row.tobytes(), -1) for row in merged.xyxy.astype(np.float32)], np.int64)


def prf(tp: int, fp: int, fn: int) -> dict:
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


# --- a ground-truth oracle backend ---------------------------------------------------------------

class OracleBackend(Backend):
    """A perfect detector built from the ground truth: every cell visible in a tile is reported, clipped
    to the tile. Cells seen whole score 0.9; cells cut by the tile border (at least ``min_visible`` of
    their box inside) are reported too, as partial boxes scoring 0.55-0.85: the hard case for seams,
    since a merge that keeps them counts a cut cell twice.

    It cannot see where a tile lies from its pixels, so it follows the grid given to ``expect``:
    ``Counter`` sends tiles in grid order (strips top to bottom, left to right; one inference at a
    time). ``finish`` checks that exactly the grid's tiles were served.
    """

    name = "oracle"

    def __init__(self, truth: Truth, tile: tuple[int, int], min_visible: float = 0.1) -> None:
        self.truth, self.min_visible = truth, float(min_visible)
        self.meta = ModelMeta(arch="oracle", head="oracle", backbone="oracle", class_names=truth.class_names,
                              input_size=tuple(tile), max_object_size=truth.max_side,
                              default_score_threshold=0.5, nms_iou=0.5, max_detections=100_000)
        self.device, self.precision, self.inference_seconds = "cpu", "exact", []
        self.path = Path("oracle")
        self._tiles: list = []
        self._cursor = 0
        self._areas = np.prod(truth.xyxy[:, 2:] - truth.xyxy[:, :2], axis=1)

    def _load(self) -> ModelMeta:  # pragma: no cover - built from the truth, not a file
        raise NotImplementedError

    def expect(self, grid: TileGrid) -> None:
        self._tiles, self._cursor = list(grid), 0

    def finish(self) -> None:
        if self._cursor != len(self._tiles):
            raise RuntimeError(f"oracle served {self._cursor} tiles of a {len(self._tiles)}-tile grid")

    def _infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._cursor + len(batch) > len(self._tiles):
            raise RuntimeError("oracle: more tiles than the expected grid (call expect() with the counter's grid)")
        tiles = self._tiles[self._cursor:self._cursor + len(batch)]
        self._cursor += len(batch)
        per_tile = [self._visible(t) for t in tiles]
        slots = max(1, max(len(b) for b, _ in per_tile))
        boxes = np.zeros((len(batch), slots, 4), np.float32)
        scores = np.zeros((len(batch), slots, len(self.truth.class_names)), np.float32)
        for i, (b, s) in enumerate(per_tile):
            boxes[i, :len(b)] = b
            scores[i, :len(b)] = s
        return boxes, scores

    def _visible(self, tile) -> tuple[np.ndarray, np.ndarray]:
        gt = self.truth.xyxy
        clipped = np.clip(gt, [tile.x0, tile.y0, tile.x0, tile.y0], [tile.x1, tile.y1, tile.x1, tile.y1])
        area = np.prod(np.clip(clipped[:, 2:] - clipped[:, :2], 0, None), axis=1)
        visible = area / np.maximum(self._areas, 1e-9)
        keep = np.flatnonzero(visible >= self.min_visible)
        whole = visible[keep] >= 1.0 - 1e-6
        score = np.where(whole, 0.9, 0.55 + 0.3 * visible[keep]).astype(np.float32)
        scores = np.zeros((len(keep), len(self.truth.class_names)), np.float32)
        scores[np.arange(len(keep)), self.truth.class_ids[keep]] = score
        return clipped[keep] - np.array([tile.x0, tile.y0, tile.x0, tile.y0], np.float32), scores


# --- result files --------------------------------------------------------------------------------

def write_results(stem: str, report: dict, markdown: str, results: Path = RESULTS) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{stem}.json").write_text(json.dumps(report, indent=2, default=_jsonable) + "\n")
    (results / f"{stem}.md").write_text(markdown)
    log(f"wrote {results / stem}.json and .md")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def machine(note: str = "") -> dict:
    return describe_machine(note)


def header(title: str, desc: dict, extra: str = "") -> list[str]:
    lines = [f"# {title}", "", f"Machine: {machine_line(desc)}; {desc['platform']}, Python {desc['python']}; "
             f"libraries {', '.join(f'{k} {v}' for k, v in desc['libraries'].items())}; load average at start "
             f"{desc['load_average_at_start']}. Date {time.strftime('%Y-%m-%d %H:%M')}."]
    if extra:
        lines += ["", extra]
    return lines + [""]
