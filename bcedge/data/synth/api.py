"""One call from parameters to an image file and its COCO labels."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bcedge.atomic import atomic_open
from bcedge.data.annotations import ImageAnnotation
from bcedge.data.synth.config import SmearConfig
from bcedge.data.synth.layout import Layout, make_layout
from bcedge.data.synth.render import Progress, StripRenderer
from bcedge.data.synth.sinks import IN_MEMORY_MAX_PIXELS, collect, format_for
from bcedge.data.synth.truth import to_coco


@dataclass
class SmearResult:
    """A generated smear: its COCO labels, where it was written, and its pixels when kept in memory."""

    width: int
    height: int
    seed: int
    coco: dict
    layout: Layout
    image_path: Path | None = None
    labels_path: Path | None = None
    pixels: np.ndarray | None = None  # (H, W, 3) uint8 RGB when generated without ``out``

    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in sorted(self.coco["categories"], key=lambda c: c["id"])]

    @property
    def counts(self) -> dict[str, int]:
        names = {c["id"]: c["name"] for c in self.coco["categories"]}
        out = {name: 0 for name in self.class_names}
        for ann in self.coco["annotations"]:
            out[names[ann["category_id"]]] += 1
        return out

    def boxes_xyxy(self) -> np.ndarray:
        b = np.array([a["bbox"] for a in self.coco["annotations"]], np.float32).reshape(-1, 4)
        b[:, 2:] += b[:, :2]
        return b

    def annotation(self) -> ImageAnnotation:
        """The labels as the project's :class:`ImageAnnotation` (boxes xyxy, masks as COCO polygons)."""
        names = {c["id"]: c["name"] for c in self.coco["categories"]}
        anns = self.coco["annotations"]
        return ImageAnnotation(
            image_path=self.image_path or Path(self.coco["images"][0]["file_name"]),
            width=self.width, height=self.height, boxes=self.boxes_xyxy(),
            labels=[names[a["category_id"]] for a in anns], source=str(self.labels_path or "synthetic smear"),
            masks=[a["segmentation"] for a in anns],
        )


def labels_path_for(image_path: Path) -> Path:
    """``smear.png`` -> ``smear.json``."""
    return Path(image_path).with_suffix(".json")


def generate_smear(
    width: int,
    height: int,
    seed: int = 0,
    out: str | Path | None = None,
    config: SmearConfig | None = None,
    write_options: dict | None = None,
    progress: Progress | None = None,
    **options,
) -> SmearResult:
    """Make a synthetic smear of ``width`` x ``height`` pixels and its exact labels.

    ``options`` override :class:`SmearConfig` fields (``density=0.8, parasites=True, scale=0.5`` ...).
    With ``out`` (suffix .png, .tif/.tiff, .jpg) the image is streamed there strip by strip and the
    COCO labels are written next to it (``smear.png`` -> ``smear.json``); without it the pixels are
    returned in ``SmearResult.pixels`` (up to 8192 x 8192). ``write_options`` go to the image writer
    (PNG: compress_level, filter; TIFF: tile, compression; JPEG: quality).

    Same size, seed and options give the same pixels and labels whatever ``strip_rows`` is; the file
    bytes are identical too for the same ``strip_rows`` (a PNG's IDAT chunks follow the strips).
    """
    width, height = int(width), int(height)
    if width < 1 or height < 1:
        raise ValueError(f"smear size must be at least 1x1, got {width}x{height}")
    config = (config or SmearConfig()).with_options(**options)
    write_options = dict(write_options or {})
    if out is None:
        if width * height > IN_MEMORY_MAX_PIXELS:
            raise ValueError(f"a {width}x{height} smear is too large to return in memory; "
                             "pass out= a .png or .tif path")
        if write_options:
            raise ValueError("write_options need an output file (out=)")
        fmt = None
    else:
        out = Path(out)
        fmt = format_for(out)
        fmt.check(out, width, height, write_options)
        if not out.parent.is_dir():
            raise FileNotFoundError(f"{out}: output folder {out.parent} does not exist")

    layout = make_layout(width, height, seed, config)
    renderer = StripRenderer(layout, progress=progress)
    pixels = None
    if fmt is None:
        pixels = collect(iter(renderer), width, height)
    else:
        fmt.write(out, width, height, iter(renderer), write_options)
    file_name = out.name if out is not None else f"synthetic_smear_{width}x{height}_seed{seed}.png"
    coco = to_coco(layout, renderer.truth_list(), file_name)
    labels_path = None
    if out is not None:
        labels_path = labels_path_for(out)
        _write_json(labels_path, coco)
    return SmearResult(width, height, int(seed), coco, layout, out, labels_path, pixels)


def _write_json(path: Path, data: dict) -> None:
    with atomic_open(path, "w") as f:
        json.dump(data, f, separators=(",", ":"))
