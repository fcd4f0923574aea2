"""Checking a dataset before it is trusted, with every problem named by file and object.

Policies: ``keep`` reports only; ``drop`` (default) repairs the dataset IN PLACE and reports what it
did; ``fail`` raises DatasetError listing the errors (warnings do not fail). The report is always
returned, and a one-line summary is logged, so nothing is dropped silently.

What ``drop`` does, per problem kind:
- missing_image, unreadable_image, size_mismatch (image size differs from the annotation's):
  the image is dropped, since its boxes cannot be trusted or used.
- converted_image (greyscale, RGBA, 16-bit): warning only; ``read_image`` converts at load.
- inconsistent_label ('rbc' next to 'RBC'): renamed to the canonical spelling (the expected class
  list's, else the most used one).
- unknown_label (empty, or not in the expected classes / ``class_names``): box dropped.
- zero_area (zero, negative or non-finite width or height): box dropped.
- out_of_bounds: an overshoot of at most max(2 px, 1 % of the side) is clipped (warning, ``clipped``);
  more means wrong coordinates and the box is dropped.
- duplicate_box (IoU > 0.95, same label): later copies dropped.
- conflicting_labels (IoU > 0.95, different labels): every box of the group is dropped, since neither
  label can be trusted and a wrong class teaches more harm than one unlabelled cell.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from bcedge.boxes import pairwise_iou
from bcedge.data.annotations import Dataset, ImageAnnotation
from bcedge.data.formats import DatasetError
from bcedge.imageio import ImageReadError, read_image_with_note

log = logging.getLogger("bcedge.data")

POLICIES = ("keep", "drop", "fail")
DUPLICATE_IOU = 0.95
CLIP_PX, CLIP_FRACTION = 2.0, 0.01
WARNINGS = {"converted_image"}


@dataclass
class Problem:
    """One problem: ``file`` names the annotation file (entry), ``index`` the box (None: the whole image)."""

    kind: str
    file: str
    detail: str
    index: int | None = None
    image: str = ""
    action: str = ""  # what the policy did: "dropped box", "dropped image", "clipped", "renamed ...", "" (kept)
    severity: str = ""  # "error" (fails policy "fail") or "warning"; by default from the kind

    def __post_init__(self) -> None:
        self.severity = self.severity or ("warning" if self.kind in WARNINGS else "error")

    def __str__(self) -> str:
        where = self.file if self.index is None else f"{self.file}: box {self.index}"
        return f"{where}: {self.kind}: {self.detail}" + (f" [{self.action}]" if self.action else "")


@dataclass
class ValidationReport:
    dataset: Dataset
    policy: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def by_kind(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.problems))

    def summary(self) -> str:
        if not self.problems:
            return f"{len(self.dataset)} images: no problems found"
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.by_kind().items()))
        actions = Counter(p.action for p in self.problems if p.action)
        done = ", ".join(f"{action}: {n}" for action, n in sorted(actions.items())) or "nothing changed"
        return f"{_plural(len(self.problems), 'problem')} ({kinds}); policy {self.policy}: {done}"

    def format(self, limit: int | None = 20) -> str:
        return "\n".join([self.summary(), self.details(limit)]) if self.problems else self.summary()

    def details(self, limit: int | None = 20) -> str:
        """One indented line per problem, at most ``limit`` of them."""
        lines = [f"  {p}" for p in self.problems[:limit]]
        if limit is not None and len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"policy": self.policy, "count": len(self.problems), "by_kind": self.by_kind(),
                "problems": [asdict(p) for p in self.problems]}


def validate(
    dataset: Dataset, policy: str = "drop", check_images: bool = True, classes: list[str] | None = None
) -> ValidationReport:
    """Check every image and box of ``dataset``; see the module docstring for what each policy does.

    ``classes`` is the expected class list (labels outside it are unknown); ``check_images`` decodes
    each image to find missing, unreadable, resized, greyscale or RGBA files.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown validation policy {policy!r}; use one of {', '.join(POLICIES)}")
    repair = policy == "drop"
    expected = list(classes) if classes is not None else list(dataset.class_names)
    canonical = _canonical_labels(dataset, expected)
    problems: list[Problem] = []
    kept = []
    for record in dataset.images:
        found = _check_image(record) if check_images else []
        problems += found
        if repair and any(p.severity == "error" for p in found):
            for p in found:
                p.action = "dropped image" if p.severity == "error" else p.action
            continue
        problems += _check_boxes(record, canonical, set(expected), repair)
        kept.append(record)
    if repair:
        dataset.images = kept
        dataset.class_names = [c for c in expected if c == canonical.get(c, c)]
    report = ValidationReport(dataset, policy, problems)
    if repair and problems:  # "keep" callers hold the report; "fail" raises below
        log.warning("%s: %s", dataset.root or "dataset", report.summary())
    if policy == "fail" and report.errors:
        errors = report.errors
        lines = [f"  {p}" for p in errors[:50]] + ([f"  ... and {len(errors) - 50} more"] if len(errors) > 50 else [])
        raise DatasetError(f"{dataset.root or 'dataset'}: {_plural(len(errors), 'problem')}\n" + "\n".join(lines))
    return report


def _check_image(record: ImageAnnotation) -> list[Problem]:
    where, name = record.source or str(record.image_path), str(record.image_path)
    try:
        pixels, note = read_image_with_note(record.image_path)
    except ImageReadError as exc:
        kind = "missing_image" if not record.image_path.is_file() else "unreadable_image"
        return [Problem(kind, where, str(exc), image=name)]
    problems = []
    height, width = pixels.shape[:2]
    if (width, height) != (record.width, record.height):
        detail = f"{name} is {width}x{height} but annotated as {record.width}x{record.height}"
        problems.append(Problem("size_mismatch", where, detail, image=name))
    if note:
        problems.append(Problem("converted_image", where, f"{name}: {note} (converted at load)", image=name))
    return problems


def _canonical_labels(dataset: Dataset, expected: list[str]) -> dict[str, str]:
    """Map each label spelling to its canonical one: expected spelling, else the most used variant."""
    counts = Counter(label for record in dataset.images for label in record.labels)
    groups: dict[str, list[str]] = {}
    for label in list(expected) + sorted(counts, key=lambda s: (-counts[s], s)):
        variants = groups.setdefault(_key(label), [])
        if label not in variants:
            variants.append(label)
    return {label: variants[0] for variants in groups.values() for label in variants}


def _key(label: str) -> str:
    return " ".join(label.replace("_", " ").split()).casefold()


def _check_boxes(record: ImageAnnotation, canonical: dict[str, str], expected: set[str], repair: bool) -> list[Problem]:
    where, name = record.source or str(record.image_path), str(record.image_path)
    problems, keep = [], np.ones(len(record.boxes), dtype=bool)
    boxes, labels = record.boxes.copy(), list(record.labels)

    def report(kind: str, index: int, detail: str, action: str, severity: str = "") -> None:
        problems.append(Problem(kind, where, f"({labels[index] or 'no label'}) {_fmt(record.boxes[index])} {detail}",
                                int(index), name, action if repair else "", severity))

    for i, label in enumerate(record.labels):
        target = canonical.get(label, label)
        if target != label and target in expected:
            why = f"label {label!r} differs from class {target!r} only in spelling"
            report("inconsistent_label", i, why, f"renamed to {target!r}")
            labels[i] = target
        elif label not in expected:
            why = f"label {label!r} is not a known class ({', '.join(sorted(expected))})" if label else "has an empty label"
            report("unknown_label", i, why, "dropped box")
            keep[i] = False
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    for i in np.flatnonzero(~((widths > 0) & (heights > 0))):  # also catches NaN
        if keep[i]:
            report("zero_area", i, _degenerate(widths[i], heights[i]), "dropped box")
            keep[i] = False
    if record.width > 0 and record.height > 0:
        _check_bounds(record, boxes, keep, report)
    _check_duplicates(boxes, labels, keep, report)
    if repair:
        record.boxes, record.labels = boxes[keep], [label for label, k in zip(labels, keep) if k]
        if record.masks is not None:
            record.masks = [m for m, k in zip(record.masks, keep) if k]
    return problems


def _check_bounds(record: ImageAnnotation, boxes: np.ndarray, keep: np.ndarray, report) -> None:
    limits = np.array([record.width, record.height, record.width, record.height], dtype=np.float32)
    sides = ("left", "top", "right", "bottom")
    for i in np.flatnonzero(keep):
        over = np.concatenate([-boxes[i, :2], boxes[i, 2:] - limits[2:]])
        if not np.any(over > 0):
            continue
        detail = ", ".join(f"{over[k]:g} px beyond the {sides[k]} edge" for k in range(4) if over[k] > 0)
        detail += f" of the {record.width}x{record.height} image"
        tolerance = np.maximum(CLIP_PX, CLIP_FRACTION * limits)
        clipped = np.clip(boxes[i], 0, limits)
        if np.all(over <= tolerance) and clipped[2] > clipped[0] and clipped[3] > clipped[1]:
            report("out_of_bounds", i, detail + " (small overshoot)", "clipped", "warning")
            boxes[i] = clipped
        else:
            report("out_of_bounds", i, detail, "dropped box")
            keep[i] = False


def _check_duplicates(boxes: np.ndarray, labels: list[str], keep: np.ndarray, report) -> None:
    index = np.flatnonzero(keep)
    if len(index) < 2:
        return
    iou = pairwise_iou(boxes[index], boxes[index])
    conflicting = set()
    for a, b in zip(*np.nonzero(np.triu(iou > DUPLICATE_IOU, k=1))):
        i, j = index[a], index[b]
        if labels[i] == labels[j]:
            if keep[j] and j not in conflicting:
                report("duplicate_box", j, f"repeats box {i} (IoU {iou[a, b]:.2f})", "dropped box")
                keep[j] = False
        else:
            why = f"is box {i} ({labels[i]}) again with another label (IoU {iou[a, b]:.2f})"
            report("conflicting_labels", j, why, "dropped both")
            conflicting.update((i, j))
    keep[list(conflicting)] = False


def _degenerate(width: float, height: float) -> str:
    if not (np.isfinite(width) and np.isfinite(height)):
        return "has coordinates that are not finite numbers"
    if width == 0 and height == 0:
        return "has zero width and height"
    sides = (("width", width), ("height", height))
    parts = [f"{'zero' if v == 0 else 'negative'} {what} ({v:g})" for what, v in sides if v <= 0]
    return "has " + " and ".join(parts)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _fmt(box: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box.tolist()) + "]"
