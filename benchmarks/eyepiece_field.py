"""Counts through an eyepiece camera: a round field, black around it, no option given.

    python benchmarks/eyepiece_field.py [--models default] [--bccd]

TXL-PBC val (``--bccd`` adds BCCD val) as an eyepiece camera shows it (``bcedge.data.appearance.round_field``):
- "round field": black outside a circle as wide as each image's longer side (a 4:3 frame loses its corners);
- "eyepiece camera": a circle 0.9 of the longer side across, its edge fading over 6 px, the lamp dimmer towards it.

Each model counts exactly as ``bcedge eval`` runs it (automatic scale, tiles, merge), with the surround filled
(the default, ``bcedge.runtime.field_stop``) and as it is (``--no-surround-fill``), side by side in one run; the
full frames with all their labels are the reference. Its detections are judged against two labellings of the
masked images:
- "centre inside": the whole cell's label when its box's centre is inside the circle (about half of it shows);
- "counting rule": the product's rule at an image edge, where a partial cell counts as one cell (training crops
  keep a box when at least 35% of it shows): the label when 35% of its box is inside, cut to the part inside.
Writes benchmarks/results/eyepiece_field_<machine>.json and .md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import header, log, write_results  # noqa: E402
from appearance import CLASSES, labelled, row  # noqa: E402

from bcedge.bench.machine import describe_machine, machine_slug  # noqa: E402
from bcedge.catalogue import resolve_model  # noqa: E402
from bcedge.data.annotations import Dataset, ImageAnnotation  # noqa: E402
from bcedge.data.appearance import (  # noqa: E402
    inside_round_field,
    round_field,
    vignetted,
    visible_in_round_field,
)
from bcedge.data.multisource import SourceSpec, load_sources  # noqa: E402
from bcedge.evaluate import EVAL_SCORE_FLOOR  # noqa: E402
from bcedge.evaluate.runtime_eval import predict, with_groups  # noqa: E402
from bcedge.runtime.counter import Counter  # noqa: E402


@dataclass(frozen=True)
class Field:
    what: str
    diameter: float      # of the image's longer side
    soft: float = 0.0    # px over which the edge fades
    corner: float = 1.0  # the lamp's brightness where the image's corners are, against its centre (``vignetted``)

    def pixels(self, image):
        return round_field(vignetted(image, self.corner) if self.corner < 1 else image, self.diameter, self.soft)


FIELDS = {"round field": Field("black outside a circle as wide as the image's longer side", 1.0),
          "eyepiece camera": Field("a circle 0.9 of the longer side across, a soft 6 px edge, the lamp at 60% in the "
                                   "corners", 0.9, 6.0, 0.6)}


LABELLINGS = {"centre inside": "the whole cell's label when its box centre is inside the circle",
              "counting rule": ("the label when at least 35% of its box is inside the circle, cut to that part: a "
                                "partial cell counts as one cell, as at the image edge")}


def seen_through(data: Dataset, field: Field, folder: Path) -> dict[str, Dataset]:
    """``data`` through ``field``, written to ``folder`` as PNG, labelled each way of ``LABELLINGS``."""
    folder.mkdir(parents=True, exist_ok=True)
    labelled_as = {name: [] for name in LABELLINGS}
    for record in data.images:
        path = folder / f"{record.image_path.stem}.png"
        cv2.imwrite(str(path), field.pixels(cv2.imread(str(record.image_path))))
        centre = inside_round_field(record.boxes, record.width, record.height, field.diameter)
        visible, cut = visible_in_round_field(record.boxes, record.width, record.height, field.diameter)
        for name, (kept, boxes) in zip(LABELLINGS, ((centre, record.boxes), (visible, cut))):
            labelled_as[name].append(ImageAnnotation(path, record.width, record.height, boxes[kept],
                                                     [label for label, k in zip(record.labels, kept) if k],
                                                     record.source, group=record.group))
    return {name: Dataset(images, list(data.class_names), folder, data.format) for name, images in labelled_as.items()}


def judged(model: Path, labellings: dict[str, Dataset], **options) -> dict[str, dict]:
    """``field_row`` of ``model``'s counts of the images, against each labelling of them (counted once)."""
    counter = Counter.load(model, device="cpu", score_floor=EVAL_SCORE_FLOOR, **options)
    predictions, _ = predict(counter, next(iter(labellings.values())))
    return {name: field_row(with_groups(data, predictions, counter.meta)) for name, data in labellings.items()}


def field_row(metrics: dict) -> dict:
    """``appearance.row`` and the red cells counted against those labelled, over the split (the count's bias)."""
    red = metrics["count_error"]["RBC"]
    return row(metrics) | {"rbc_counted": red["predicted"], "rbc_labelled": red["truth"]}


def markdown(report: dict) -> str:
    lines = header("Counts through an eyepiece camera: a round field (no option given)", report["machine"],
                   "Each val split masked outside a circle (`bcedge.data.appearance.round_field`) and counted as "
                   "`bcedge eval` runs it, with the surround filled (`bcedge.runtime.field_stop`, the default) and "
                   "not, side by side in one run. The same counts are judged against two labellings of the masked "
                   "images (below). Recall at the model's operating thresholds, at IoU 0.5; red-cell count error: "
                   "median per image; counted / labelled: red cells over the split, at the operating thresholds.")
    for labelling, what in LABELLINGS.items():
        lines += ["", f"### Labels: {labelling} ({what})", "",
                  ("| data | field | model | mAP50 | AP50 RBC | AP50 WBC | AP50 Platelets | recall RBC | recall WBC | "
                   "recall Platelets | RBC count err. | RBC counted / labelled |"), "|---|---|---|" + "---:|" * 9]
        for split, fields in report["splits"].items():
            for field, models in fields.items():
                for model, rows in models.items():
                    r = rows[labelling]
                    ap, recall = r["ap50"], r["recall"]
                    lines.append(f"| {split} | {field} | {model} | {r['mAP50']:.3f} | {ap['RBC']:.3f} | "
                                 f"{ap['WBC']:.3f} | {ap['Platelets']:.3f} | {100 * recall['RBC']:.1f}% | "
                                 f"{100 * recall['WBC']:.1f}% | {100 * recall['Platelets']:.1f}% | "
                                 f"{100 * r['rbc_count_median_rel_error']:.1f}% | "
                                 f"{r['rbc_counted'] / r['rbc_labelled']:.3f} |")
    lines += ["", "Fields:", "- full frame: the images as they are, all labels (the same under both labellings)"]
    lines += [f"- {name}: {field.what}" for name, field in FIELDS.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default"],
                        help="bundled names or artifact paths, each optionally as LABEL=MODEL")
    parser.add_argument("--txl", type=Path, default=ROOT.parent / "shared/data/txl-pbc")
    parser.add_argument("--bccd", type=Path, nargs="?", const=ROOT.parent / "shared/data/bccd", default=None,
                        help="also BCCD val (its labels miss cells: the TXL-PBC figures are the measure)")
    parser.add_argument("--out", default=None, help="results file stem (default eyepiece_field_<machine>)")
    args = parser.parse_args(argv)
    splits = {"TXL-PBC val": load_sources([SourceSpec(args.txl, "val", group_by="size")], CLASSES)}
    if args.bccd:
        splits["BCCD val"] = load_sources([SourceSpec(args.bccd, "val")], CLASSES)
    models = dict(map(labelled, args.models))
    machine = describe_machine()
    report = {"models": {name: str(resolve_model(model)) for name, model in models.items()},
              "fields": {name: vars(field) for name, field in FIELDS.items()}, "machine": machine, "splits": {}}
    with tempfile.TemporaryDirectory(prefix="bcedge-eyepiece-") as work:
        for split, data in splits.items():
            report["splits"][split] = {"full frame": {}}
            for name, model in models.items():
                log(f"{split}, full frame, {name} ...")
                full = judged(resolve_model(model), {"all labels": data})["all labels"]
                report["splits"][split]["full frame"][name] = dict.fromkeys(LABELLINGS, full)
            for index, (field_name, field) in enumerate(FIELDS.items()):
                labellings = seen_through(data, field, Path(work) / f"{split}_{index}")
                results = report["splits"][split][field_name] = {}
                for name, model in models.items():
                    for variant, fill in (("surround filled", True), ("as it is", False)):
                        log(f"{split}, {field_name}, {name}, {variant} ...")
                        results[f"{name}, {variant}"] = judged(resolve_model(model), labellings, fill_surround=fill)
    write_results(args.out or f"eyepiece_field_{machine_slug(machine)}", report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
