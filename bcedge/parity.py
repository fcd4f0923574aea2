"""Run any set of backends on the same inputs and compare them, with stated tolerances.

    report = compare({"torch": load_backend("m.pt"), "ort": load_backend("m.onnx")}, batches)
    print(report.format()); assert report.ok

The first runner is the reference. Two levels are compared for every other runner:

* raw outputs before NMS: boxes within ``box_atol + box_rtol * |reference|`` px element-wise (numpy
  ``isclose``), scores within ``score_atol``. Rows are compared position by position; a row that
  differs may match a reference row elsewhere (two-stage heads order their rows by scores, so near-equal
  scores may swap rows between runtimes): it then counts as *reordered* and is compared with that row;
* final detections, decoded exactly as the runtime decodes (score thresholds + class-aware NMS): each
  detection must have a partner of the same class with IoU >= ``match_iou`` and a score within
  ``det_score_atol``. Two kinds of detection may appear on one side only; they are counted as
  *borderline*, not as mismatches: one whose score lies within ``det_score_atol`` of its class
  threshold, and an NMS tie: the other side kept instead an overlapping box of the same class (IoU
  above the NMS IoU, score within ``det_score_atol``) that this side's raw outputs also hold, so
  near-equal scores made NMS suppress a different one of the two.

Default tolerances depend on the lower precision of the pair (``TOLERANCES``). No torch import here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Iterable, Mapping, Protocol, Sequence

import numpy as np

from bcedge.artifact import ModelMeta
from bcedge.boxes import pairwise_iou
from bcedge.detections import Detections
from bcedge.runtime.decode import class_thresholds, decode


class Runner(Protocol):
    meta: ModelMeta

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ...


@dataclass(frozen=True)
class Tolerance:
    box_rtol: float = 1e-3        # raw boxes, relative to the reference value
    box_atol: float = 1e-2        # raw boxes, px (floor for coordinates near 0)
    score_atol: float = 1e-4      # raw scores
    match_iou: float = 0.99       # detections: same class and at least this IoU
    det_score_atol: float = 1e-3  # detections: score difference of a matched pair
    min_raw_fraction: float = 1.0   # share of raw elements that must be within tolerance
    min_matched: float = 1.0      # share of non-borderline detections that must match


TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(),
    # FP16 backbones move boxes by up to ~1 px at 640 px and can flip NMS between near-equal neighbours.
    "fp16": Tolerance(box_rtol=1e-2, box_atol=1.0, score_atol=1e-2, match_iou=0.8, det_score_atol=2e-2,
                      min_raw_fraction=0.999, min_matched=0.95),
    # INT8 is judged by accuracy (mAP) on real data; parity only guards against a broken graph.
    "int8": Tolerance(box_rtol=5e-2, box_atol=8.0, score_atol=0.15, match_iou=0.7, det_score_atol=0.15,
                      min_raw_fraction=0.95, min_matched=0.85),
}
PRECISION_ORDER = ("fp32", "fp16", "int8")


def tolerance_for(*precisions: str) -> Tolerance:
    """The tolerance of the least precise of ``precisions`` (unknown ones count as int8)."""
    rank = max(PRECISION_ORDER.index(p) if p in PRECISION_ORDER else len(PRECISION_ORDER) - 1 for p in precisions)
    return TOLERANCES[PRECISION_ORDER[rank]]


@dataclass
class PairResult:
    """How one runner compares with the reference over all inputs."""

    reference: str
    other: str
    tolerance: Tolerance
    box_max_abs: float = 0.0
    box_max_rel: float = 0.0
    box_outside: int = 0
    score_max_abs: float = 0.0
    score_outside: int = 0
    raw_elements: int = 0
    reordered: int = 0                       # rows found at another position (two-stage heads)
    detections: tuple[int, int] = (0, 0)     # reference, other
    matched: int = 0
    borderline: int = 0
    mismatched: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def raw_ok(self) -> bool:
        if not self.raw_elements:
            return False
        inside = 1 - (self.box_outside + self.score_outside) / self.raw_elements
        return inside >= self.tolerance.min_raw_fraction

    @property
    def detections_ok(self) -> bool:
        decided = self.matched + self.mismatched
        return decided == 0 or self.matched / decided >= self.tolerance.min_matched

    @property
    def ok(self) -> bool:
        return self.raw_ok and self.detections_ok and not self.problems

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(raw_ok=self.raw_ok, detections_ok=self.detections_ok, ok=self.ok)
        return out


@dataclass
class ParityReport:
    runners: list[str]
    images: int
    pairs: list[PairResult]

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.pairs)

    def to_dict(self) -> dict:
        return {"runners": self.runners, "images": self.images, "ok": self.ok, "pairs": [p.to_dict() for p in self.pairs]}

    def format(self) -> str:
        lines = [f"parity over {self.images} images, reference {self.runners[0]}"]
        for p in self.pairs:
            t = p.tolerance
            lines.append(
                f"  {p.other}: {'OK' if p.ok else 'FAIL'}\n"
                f"    raw boxes  max |d| {p.box_max_abs:.3g} px, max rel {p.box_max_rel:.3g}, outside {p.box_outside}"
                f" (tol {t.box_atol:g} px + {t.box_rtol:g} rel)\n"
                f"    raw scores max |d| {p.score_max_abs:.3g}, outside {p.score_outside} (tol {t.score_atol:g})"
                f"{f', {p.reordered} rows matched at another position' if p.reordered else ''}\n"
                f"    detections {p.detections[0]} vs {p.detections[1]}: matched {p.matched}, borderline {p.borderline},"
                f" mismatched {p.mismatched} (IoU >= {t.match_iou:g}, |d score| <= {t.det_score_atol:g})")
            lines.extend(f"    problem: {msg}" for msg in p.problems)
        return "\n".join(lines)


def runner_name(runner, fallback: str) -> str:
    describe = getattr(runner, "describe", None)
    return describe() if callable(describe) else fallback


def compare(runners: Mapping[str, Runner] | Sequence[Runner], batches: Iterable[np.ndarray],
            tolerance: Tolerance | None = None, score_floor: float | None = None) -> ParityReport:
    """Run every runner on every batch (float32 (B, 3, H, W) in 0..1) and compare each with the first.

    ``tolerance`` None picks ``TOLERANCES`` by the pair's precisions. ``score_floor`` decodes with one
    threshold for all classes instead of the model's tuned ones (useful for untrained models).
    """
    if not isinstance(runners, Mapping):
        runners = {f"{i}: {runner_name(r, type(r).__name__)}": r for i, r in enumerate(runners)}
    names = list(runners)
    if len(names) < 2:
        raise ValueError("parity needs at least two runners to compare")
    reference = runners[names[0]]
    _check_same_model(runners)
    pairs = {name: PairResult(names[0], name, tolerance or tolerance_for(reference.meta.precision, runners[name].meta.precision))
             for name in names[1:]}
    meta = reference.meta
    thresholds = class_thresholds(meta, score_floor)
    images = 0
    for batch in batches:
        ref_boxes, ref_scores = reference.infer(batch)
        ref_dets = [decode(b, s, thresholds, meta.nms_iou, meta.max_detections, "numpy") for b, s in zip(ref_boxes, ref_scores)]
        images += len(batch)
        for name in names[1:]:
            boxes, scores = runners[name].infer(batch)
            pair = pairs[name]
            if boxes.shape != ref_boxes.shape or scores.shape != ref_scores.shape:
                pair.problems.append(f"output shapes differ: boxes {boxes.shape} vs {ref_boxes.shape}, "
                                     f"scores {scores.shape} vs {ref_scores.shape}")
                continue
            _compare_raw(pair, ref_boxes, ref_scores, boxes, scores)
            for k, (ref_det, b, s) in enumerate(zip(ref_dets, boxes, scores)):
                other_det = decode(b, s, thresholds, meta.nms_iou, meta.max_detections, "numpy")
                _compare_detections(pair, (ref_det, ref_boxes[k], ref_scores[k]), (other_det, b, s), thresholds,
                                    meta.nms_iou)
    return ParityReport(names, images, list(pairs.values()))


def _check_same_model(runners: Mapping[str, Runner]) -> None:
    """The models compared take the same classes and input (a graph that takes any size takes the reference's)."""
    first_name, first = next(iter(runners.items()))
    for name, runner in runners.items():
        a, b = first.meta, runner.meta
        differences = []
        if list(a.class_names) != list(b.class_names):
            differences.append(f"classes {list(b.class_names)} vs {list(a.class_names)}")
        if tuple(a.input_size) != tuple(b.input_size) and not b.dynamic_input:
            differences.append(f"input {tuple(b.input_size)} vs {tuple(a.input_size)}")
        if differences:
            raise ValueError(f"{name} is not the same model as {first_name}: {'; '.join(differences)}")


def _compare_raw(pair: PairResult, ref_boxes, ref_scores, boxes, scores) -> None:
    for ref_b, ref_s, b, s in zip(ref_boxes, ref_scores, boxes, scores):
        ref_b, ref_s = ref_b.astype(np.float64), ref_s.astype(np.float64)
        b, s = b.astype(np.float64), s.astype(np.float64)
        partner = np.arange(len(b))
        bad = np.flatnonzero(~_rows_close(pair.tolerance, ref_b, ref_s, b, s))
        if bad.size:  # two-stage heads order rows by data-dependent scores: look for the row elsewhere
            found = _find_rows(pair.tolerance, ref_b, ref_s, b[bad], s[bad])
            partner[bad[found >= 0]] = found[found >= 0]
            pair.reordered += int(np.count_nonzero(found >= 0))
        _add_raw_errors(pair, ref_b[partner], ref_s[partner], b, s)
    if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
        pair.problems.append("non-finite values (NaN or inf) in the outputs")


def _rows_close(t: Tolerance, ref_b, ref_s, b, s) -> np.ndarray:
    """Element-wise tolerance, row by row (broadcasts: (R, 4) vs (R, 4), or (F, 1, 4) vs (1, R, 4))."""
    box_ok = np.abs(b - ref_b) <= t.box_atol + t.box_rtol * np.abs(ref_b)
    return box_ok.all(-1) & (np.abs(s - ref_s) <= t.score_atol).all(-1)


def _find_rows(t: Tolerance, ref_b, ref_s, b, s, chunk: int = 256) -> np.ndarray:
    """For each row of (b, s), the index of a reference row within tolerance, or -1."""
    found = np.full(len(b), -1, dtype=np.int64)
    for start in range(0, len(b), chunk):
        close = _rows_close(t, ref_b[None], ref_s[None], b[start:start + chunk, None], s[start:start + chunk, None])
        hit = close.any(1)
        found[start:start + chunk][hit] = close[hit].argmax(1)
    return found


def _add_raw_errors(pair: PairResult, ref_b, ref_s, b, s) -> None:
    t = pair.tolerance
    box_diff, score_diff = np.abs(b - ref_b), np.abs(s - ref_s)
    pair.box_max_abs = max(pair.box_max_abs, float(box_diff.max(initial=0.0)))
    pair.box_max_rel = max(pair.box_max_rel, float((box_diff / np.maximum(np.abs(ref_b), 1.0)).max(initial=0.0)))
    pair.box_outside += int(np.count_nonzero(box_diff > t.box_atol + t.box_rtol * np.abs(ref_b)))
    pair.score_max_abs = max(pair.score_max_abs, float(score_diff.max(initial=0.0)))
    pair.score_outside += int(np.count_nonzero(score_diff > t.score_atol))
    pair.raw_elements += box_diff.size + score_diff.size


def _compare_detections(pair: PairResult, ref_side: tuple, other_side: tuple, thresholds: np.ndarray,
                        nms_iou: float) -> None:
    """Each side is (detections, raw boxes (A, 4), raw scores (A, C)) of one image."""
    t = pair.tolerance
    ref, other = ref_side[0], other_side[0]
    pair.detections = (pair.detections[0] + len(ref), pair.detections[1] + len(other))
    used = np.zeros(len(other), dtype=bool)
    iou = pairwise_iou(ref.xyxy, other.xyxy)
    same_class = ref.class_ids[:, None] == other.class_ids[None, :]
    close_score = np.abs(ref.scores[:, None] - other.scores[None, :]) <= t.det_score_atol
    tie = same_class & close_score & (iou > nms_iou)   # NMS may have kept either of the two
    for i in np.argsort(-ref.scores, kind="stable"):
        candidates = np.flatnonzero(same_class[i] & ~used & (iou[i] >= t.match_iou))
        if candidates.size:
            j = candidates[np.argmax(iou[i, candidates])]
            used[j] = True
            if close_score[i, j]:
                pair.matched += 1
            else:
                pair.mismatched += 1
        elif _near_threshold(ref.scores[i], ref.class_ids[i], thresholds, t) or \
                any(_raw_holds(ref_side, other, j, t) for j in np.flatnonzero(tie[i])):
            pair.borderline += 1
        else:
            pair.mismatched += 1
    for j in np.flatnonzero(~used):
        if _near_threshold(other.scores[j], other.class_ids[j], thresholds, t) or \
                any(_raw_holds(other_side, ref, i, t) for i in np.flatnonzero(tie[:, j])):
            pair.borderline += 1
        else:
            pair.mismatched += 1


def _raw_holds(side: tuple, dets: Detections, index: int, t: Tolerance) -> bool:
    """Whether this side's raw outputs hold detection ``index`` of the other side (before its NMS)."""
    _, boxes, scores = side
    c = int(dets.class_ids[index])
    near = np.abs(scores[:, c] - dets.scores[index]) <= t.det_score_atol
    if not near.any():
        return False
    return bool((pairwise_iou(dets.xyxy[index:index + 1], boxes[near])[0] >= t.match_iou).any())


def _near_threshold(score, class_id, thresholds: np.ndarray, t: Tolerance) -> bool:
    return float(score) < float(thresholds[int(class_id)]) + t.det_score_atol


def random_batches(meta: ModelMeta, images: int = 4, batch_size: int = 2, seed: int = 0) -> list[np.ndarray]:
    """Reproducible inputs: smooth random colour fields with blobs, float32 (B, 3, H, W) in 0..1.

    Blobs give a detector something object-like, so that untrained and trained models alike produce
    a spread of scores rather than one flat value.
    """
    width, height = meta.input_size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for _ in range(images):
        image = np.empty((3, height, width), np.float32)
        image[:] = rng.uniform(0.5, 0.9, (3, 1, 1))
        for _ in range(int(rng.integers(3, 12))):
            cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(4, max(6.0, min(width, height) / 5))
            mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
            image[:, mask] = rng.uniform(0.1, 0.7, (3, 1))
        image += rng.normal(0, 0.02, image.shape).astype(np.float32)
        out.append(np.clip(image, 0, 1))
    return [np.stack(out[i:i + batch_size]) for i in range(0, len(out), batch_size)]


def tile_batches(tiles: np.ndarray, batch_size: int = 4) -> list[np.ndarray]:
    """uint8 tiles (N, H, W, 3) -> preprocessed batches, exactly as the runtime feeds a backend."""
    from bcedge.backends.base import preprocess

    return [preprocess(tiles[i:i + batch_size]) for i in range(0, len(tiles), batch_size)]


def with_tolerance(base: Tolerance, **changes) -> Tolerance:
    """A copy of ``base`` with some fields changed (for the CLI's --box-rtol and friends)."""
    return replace(base, **{k: v for k, v in changes.items() if v is not None})
