"""A dataset's class names matched to a model's: the same class under another spelling or a common name.

Datasets name blood cells many ways: ``RBC``, ``rbc``, ``red_blood_cell``, ``Erythrocyte``; ``Platelets``,
``platelet``, ``thrombocyte``; white cells by their type (``neutrophil``, ``lymphocyte``). A user evaluating
the bundled model on their own labels, or training on several datasets, should not have to rename them.
A name matches a model class, in order:

1. the user's explicit mapping (``{"red": "RBC"}``; ``None`` drops that class's boxes);
2. the same name, ignoring case, spaces, ``_`` and ``-``;
3. the same cell under a common name (``SYNONYMS``), or a kind of it (``KINDS``: a neutrophil is a white
   cell to a model without a neutrophil class).

A name that matches nothing is an error naming it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from bcedge.data.annotations import Dataset, ImageAnnotation

SYNONYMS: dict[str, tuple[str, ...]] = {   # a cell's names
    "rbc": ("rbcs", "red blood cell", "red blood cells", "red cell", "red cells", "erythrocyte", "erythrocytes"),
    "wbc": ("wbcs", "white blood cell", "white blood cells", "white cell", "white cells", "leukocyte", "leukocytes",
            "leucocyte", "leucocytes"),
    "platelets": ("platelet", "plt", "plts", "thrombocyte", "thrombocytes"),
}
KINDS: dict[str, tuple[str, ...]] = {   # kinds of a cell, counted as that cell by a model without them
    "wbc": ("neutrophil", "neutrophils", "lymphocyte", "lymphocytes", "monocyte", "monocytes", "eosinophil",
            "eosinophils", "basophil", "basophils"),
}
_CELL = {name: cell for cell, names in SYNONYMS.items() for name in (cell, *names)}
_KIND_OF = {name: cell for cell, names in KINDS.items() for name in names}


def canonical(name: str) -> str:
    """``name`` lower-cased, with runs of spaces, ``_`` and ``-`` as one space."""
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


def class_for(name: str, classes: list[str]) -> str | None:
    """The class of ``classes`` that ``name`` is (same spelling first, then a common name), or None."""
    key = canonical(name)
    same = [c for c in classes if canonical(c) == key]
    cell = _CELL.get(key) or _KIND_OF.get(key)
    if same or cell is None:
        return same[0] if same else None
    alike = [c for c in classes if _CELL.get(canonical(c)) == cell]
    return alike[0] if len(alike) == 1 else None


def match_classes(names: Iterable[str], classes: list[str],
                  explicit: Mapping[str, str | None] | None = None) -> dict[str, str | None]:
    """Each of ``names`` -> the class of ``classes`` it is (None: dropped by ``explicit``); ValueError names
    the ones that match none."""
    explicit = dict(explicit or {})
    for name, target in explicit.items():
        if target is not None and target not in classes:
            raise ValueError(f"class map {name}={target}: {target!r} is not one of the model's classes {classes}")
    matched, unknown = {}, []
    for name in names:
        target = explicit[name] if name in explicit else class_for(name, classes)
        if target is None and name not in explicit:
            unknown.append(name)
        matched[name] = target
    if unknown:
        raise ValueError(f"classes {sorted(unknown)} are not among {classes} under any name known for them; "
                         f"map them with NAME=CLASS (`bcedge eval --class-map`; NAME= leaves their boxes out)")
    return matched


def relabelled(data: Dataset, classes: list[str], explicit: Mapping[str, str | None] | None = None
               ) -> tuple[Dataset, dict[str, str | None]]:
    """``data`` with its labels in ``classes``' spelling (a new Dataset; ``data`` is unchanged), and the names
    that changed (name -> class, None where the boxes were left out)."""
    names = sorted({label for record in data.images for label in record.labels} | set(data.class_names))
    matched = match_classes(names, classes, explicit)
    images = []
    for record in data.images:
        keep = [i for i, label in enumerate(record.labels) if matched[label] is not None]
        images.append(ImageAnnotation(record.image_path, record.width, record.height, record.boxes[keep],
                                      [matched[record.labels[i]] for i in keep], record.source,
                                      [record.masks[i] for i in keep] if record.masks else None, record.group))
    changed = {name: target for name, target in matched.items() if target != name}
    return Dataset(images, list(classes), data.root, data.format, list(data.notes)), changed


def parse_class_map(items: Iterable[str]) -> dict[str, str | None]:
    """``["red=RBC", "difficult="]`` -> ``{"red": "RBC", "difficult": None}``."""
    mapping: dict[str, str | None] = {}
    for item in items:
        name, sep, target = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--class-map {item!r}: expected NAME=CLASS (or NAME= to leave NAME's boxes out)")
        mapping[name.strip()] = target.strip() or None
    return mapping
