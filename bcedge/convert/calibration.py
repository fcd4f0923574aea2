"""Calibration sets for INT8: representative tiles, stratified so rare classes are present, with a manifest.

A set is a folder:

* ``tiles.npy``: uint8 (N, H, W, 3) RGB tiles cut exactly as the runtime cuts them (``TileGrid``
  geometry and overlap, padding right/bottom with the model's ``pad_value``); ``batches()`` turns them
  into float32 with the runtime's own ``preprocess``, so calibration sees what inference sees
  (normalisation is in the graph).
* ``manifest.json``: sources (path relative to the dataset root and sha256), tile boxes, classes per
  tile, the selection seed and a sha256 of the tile pixels. No timestamps: rebuilding with the same
  data and options gives byte-identical files.

Selection: every tile of every image is a candidate. Half the set is reserved for the classes, rarest
first: each class gets up to ``count / (2 * classes)`` tiles that contain it (a tile contains a box when
the box's centre lies inside it). The rest is drawn uniformly from the remaining candidates, so plain
background is represented too.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from bcedge import __version__
from bcedge.artifact import ModelMeta
from bcedge.data.annotations import Dataset
from bcedge.imageio import read_image
from bcedge.runtime.tiling import TileGrid, choose_overlap

FORMAT = "bcedge-calibration"
VERSION = 1
DEFAULT_COUNT = 500
TILES_FILE, MANIFEST_FILE = "tiles.npy", "manifest.json"
# the grey of the default (ImageNet) normalisation mean: what ModelMeta.pad_value gives for most models
DEFAULT_PAD_VALUE = int(round(sum(ModelMeta.__dataclass_fields__["mean"].default) / 3 * 255))


class CalibrationError(ValueError):
    """A calibration set is missing, incomplete, or does not match the model or its manifest."""


@dataclass(frozen=True)
class TileSpec:
    """How the runtime cuts images for a model: tile size (width, height), overlap, padding grey level."""

    size: tuple[int, int]
    overlap: int = 0
    pad_value: int = DEFAULT_PAD_VALUE

    @classmethod
    def for_model(cls, meta: ModelMeta, overlap: int | None = None) -> "TileSpec":
        """The counter's choices: overlap from the largest trained object (a quarter tile without it)."""
        size = tuple(int(v) for v in meta.input_size)
        if overlap is None:
            overlap = min(size) // 4
            if meta.max_object_size:
                try:
                    overlap = choose_overlap(meta.max_object_size, size)
                except ValueError:
                    pass  # the counter refuses such a model/tile pair; calibration keeps the quarter tile
        return cls(size, overlap, meta.pad_value)


@dataclass(frozen=True)
class Candidate:
    image: int            # index into the dataset
    box: tuple[int, int, int, int]
    pad: tuple[int, int]
    classes: dict[str, int]


def candidate_tiles(data: Dataset, input_size: tuple[int, int], overlap: int) -> list[Candidate]:
    """Every tile of every image, with the boxes (by class) whose centre it holds."""
    tile_w, tile_h = input_size
    out = []
    for index, record in enumerate(data.images):
        width, height = record.width, record.height
        if width <= 0 or height <= 0:
            height, width = read_image(record.image_path).shape[:2]
        grid = TileGrid.plan(width, height, tile_w, tile_h, min(overlap, min(tile_w, tile_h) - 1))
        centres = (record.boxes[:, :2] + record.boxes[:, 2:]) / 2
        labels = np.array(record.labels, dtype=object)
        for tile in grid:
            inside = ((centres[:, 0] >= tile.x0) & (centres[:, 0] < tile.x1) &
                      (centres[:, 1] >= tile.y0) & (centres[:, 1] < tile.y1))
            names, counts = np.unique(labels[inside], return_counts=True) if inside.any() else ([], [])
            out.append(Candidate(index, (tile.x0, tile.y0, tile.x1, tile.y1), (tile.pad_x, tile.pad_y),
                                 {str(n): int(c) for n, c in zip(names, counts)}))
    return out


def select_tiles(candidates: list[Candidate], class_names: list[str], count: int, seed: int = 0) -> list[int]:
    """Indices of ``count`` candidates: rare classes first (see the module docstring), then uniform."""
    if count >= len(candidates):
        return list(range(len(candidates)))
    rng = np.random.default_rng(seed)
    order = [int(i) for i in rng.permutation(len(candidates))]
    chosen: set[int] = set()
    per_class = count // (2 * max(len(class_names), 1))
    holders = {name: [i for i in order if name in candidates[i].classes] for name in class_names}
    for name in sorted(class_names, key=lambda n: (len(holders[n]), n)):
        have = sum(1 for i in chosen if name in candidates[i].classes)
        for i in holders[name]:
            if have >= per_class or len(chosen) >= count:
                break
            if i not in chosen:
                chosen.add(i)
                have += 1
    for i in order:
        if len(chosen) >= count:
            break
        chosen.add(i)
    return sorted(chosen)


def cut_tile(image: np.ndarray, candidate: Candidate, spec: TileSpec) -> np.ndarray:
    x0, y0, x1, y1 = candidate.box
    tile = np.full((spec.size[1], spec.size[0], 3), spec.pad_value, dtype=np.uint8)
    tile[:y1 - y0, :x1 - x0] = image[y0:y1, x0:x1]
    return tile


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return Path(os.path.relpath(path, root)).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_scaled_calibration_set(data: Dataset, out: str | Path, cell_px: float, size: tuple[int, int],
                                 count: int = DEFAULT_COUNT, seed: int = 0, pad_value: int = DEFAULT_PAD_VALUE,
                                 jitter: float = 0.0) -> "CalibrationSet":
    """A set for a model with a pixel scale: each image resampled so its median red cell (from its
    labels) is ``cell_px``, as the runtime resamples, then cut into tiles of ``size`` (padded).

    ``jitter``: each image's scale is drawn log-uniformly within that fraction of ``cell_px``. The runtime
    counts an image anywhere within its scale tolerances of the working scale, and min-max ranges
    calibrated at exactly one scale miss what the others give."""
    import cv2

    from bcedge.data.cellsize import image_cell_sizes
    from bcedge.imageops import resample_interpolation

    if not 0 <= jitter < 1:
        raise CalibrationError(f"scale jitter must be a fraction in [0, 1), got {jitter!r}")
    sizes = image_cell_sizes(data)
    rng = np.random.default_rng(seed)
    scaled = []
    for record, cell in zip(data.images, sizes):
        factor = cell_px / cell if np.isfinite(cell) else 1.0
        if jitter:
            factor *= float(np.exp(rng.uniform(-np.log1p(jitter), np.log1p(jitter))))
        width, height = max(1, round(record.width * factor)), max(1, round(record.height * factor))
        boxes = record.boxes * np.float32(factor)
        scaled.append((record, factor, width, height, boxes))
    resized = Dataset([dataclasses.replace(r, width=w, height=h, boxes=b) for r, _, w, h, b in scaled],
                      list(data.class_names), data.root, data.format, list(data.notes))
    factors = [f for _, f, _, _, _ in scaled]

    def load(index: int) -> np.ndarray:
        image = read_image(resized.images[index].image_path)
        record = resized.images[index]
        return cv2.resize(image, (record.width, record.height), interpolation=resample_interpolation(factors[index]))

    return build_calibration_set(resized, out, TileSpec(tuple(size), 0, pad_value), count, seed, loader=load,
                                 extra={"resampled_to_cell_px": cell_px, "scale_jitter": jitter})


def build_calibration_set(data: Dataset, out: str | Path, tiles: TileSpec | ModelMeta, count: int = DEFAULT_COUNT,
                          seed: int = 0, progress: Callable[[int, int], None] | None = None,
                          loader: Callable[[int], np.ndarray] | None = None, extra: dict | None = None) -> "CalibrationSet":
    """Cut, select and save a calibration set for a model (its ``ModelMeta``, or an explicit ``TileSpec``).

    ``loader(i)`` gives image ``i``'s pixels (default: read the file); ``extra`` goes into the manifest."""
    if not len(data):
        raise CalibrationError("the dataset has no images to calibrate on")
    if count <= 0:
        raise CalibrationError(f"count must be positive, got {count}")
    spec = tiles if isinstance(tiles, TileSpec) else TileSpec.for_model(tiles)
    input_size, overlap = spec.size, spec.overlap
    candidates = candidate_tiles(data, input_size, overlap)
    selected = [candidates[i] for i in select_tiles(candidates, list(data.class_names), count, seed)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (TILES_FILE + ".tmp")
    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(selected), input_size[1], input_size[0], 3))
    digest = hashlib.sha256()
    entries, sources, image, image_index = [], {}, None, -1
    for k, cand in enumerate(selected):
        record = data.images[cand.image]
        if cand.image != image_index:
            image, image_index = (loader(cand.image) if loader else read_image(record.image_path)), cand.image
            sources[cand.image] = {"path": _relative(record.image_path, data.root), "sha256": _sha256(record.image_path)}
        array[k] = cut_tile(image, cand, spec)
        digest.update(array[k].tobytes())
        entries.append({"source": cand.image, "box": list(cand.box), "pad": list(cand.pad), "classes": cand.classes})
        if progress:
            progress(k + 1, len(selected))
    array.flush()
    del array
    os.replace(tmp, out / TILES_FILE)
    index_of = {image: i for i, image in enumerate(sorted(sources))}
    for entry in entries:
        entry["source"] = index_of[entry["source"]]
    manifest = {
        "format": FORMAT, "version": VERSION, "bcedge": __version__,
        "input_size": list(input_size), "count": len(selected), "requested": count, "candidates": len(candidates),
        "seed": seed, "overlap": overlap, "pad_value": spec.pad_value,
        "preprocess": "uint8 RGB tiles; bcedge.backends.preprocess -> float32 (B, 3, H, W) in 0..1",
        "dataset": {"root": str(data.root) if data.root else None, "format": data.format, "images": len(data),
                    "class_names": list(data.class_names)},
        "class_tiles": {n: sum(1 for e in entries if n in e["classes"]) for n in data.class_names},
        "class_boxes": {n: sum(e["classes"].get(n, 0) for e in entries) for n in data.class_names},
        "tiles_sha256": digest.hexdigest(),
        **(extra or {}),
        "sources": [sources[i] for i in sorted(sources)],
        "tiles": entries,
    }
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    (out / (MANIFEST_FILE + ".tmp")).write_text(text)
    os.replace(out / (MANIFEST_FILE + ".tmp"), out / MANIFEST_FILE)
    return CalibrationSet.load(out)


class CalibrationSet:
    """A saved calibration set: its manifest and its tiles (memory-mapped)."""

    def __init__(self, root: Path, manifest: dict, tiles: np.ndarray) -> None:
        self.root, self.manifest, self.tiles = root, manifest, tiles

    @classmethod
    def load(cls, root: str | Path, verify: bool = False) -> "CalibrationSet":
        root = Path(root)
        manifest_path, tiles_path = root / MANIFEST_FILE, root / TILES_FILE
        for path in (manifest_path, tiles_path):
            if not path.is_file():
                raise CalibrationError(f"{path}: missing; build the set with `bcedge calib build`")
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise CalibrationError(f"{manifest_path}: not valid JSON ({exc})") from exc
        if manifest.get("format") != FORMAT:
            raise CalibrationError(f"{manifest_path}: not a bcedge calibration manifest")
        try:
            tiles = np.load(tiles_path, mmap_mode="r")
        except ValueError as exc:
            raise CalibrationError(f"{tiles_path}: not a readable tile array ({exc})") from exc
        width, height = manifest["input_size"]
        if tiles.dtype != np.uint8 or tiles.shape != (manifest["count"], height, width, 3):
            raise CalibrationError(f"{tiles_path}: holds {tiles.dtype} {tiles.shape}, the manifest says "
                                   f"uint8 ({manifest['count']}, {height}, {width}, 3); rebuild the set")
        found = cls(root, manifest, tiles)
        if verify:
            found.verify()
        return found

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.manifest["input_size"])

    def __len__(self) -> int:
        return len(self.tiles)

    def verify(self) -> None:
        """Recompute the tile hash; raise naming the file when it differs from the manifest."""
        digest = hashlib.sha256()
        for tile in self.tiles:
            digest.update(np.ascontiguousarray(tile).tobytes())
        if digest.hexdigest() != self.manifest["tiles_sha256"]:
            raise CalibrationError(f"{self.root / TILES_FILE}: pixels do not match the manifest's sha256; rebuild the set")

    def check_model(self, input_size: tuple[int, int], source: str = "model") -> None:
        if tuple(input_size) != self.input_size:
            raise CalibrationError(f"{self.root}: tiles are {self.input_size[0]}x{self.input_size[1]} but {source} "
                                   f"takes {input_size[0]}x{input_size[1]}; build a set for this input size")

    def batches(self, batch_size: int = 8, limit: int | None = None, start: int = 0) -> Iterator[np.ndarray]:
        """Preprocessed float32 batches (B, 3, H, W) of tiles ``start`` to ``limit``, the last one possibly smaller."""
        from bcedge.backends.base import preprocess

        if batch_size <= 0:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        total = len(self) if limit is None else min(limit, len(self))
        for first in range(start, total, batch_size):
            yield preprocess(np.asarray(self.tiles[first:min(first + batch_size, total)]))

    def summary(self) -> str:
        m = self.manifest
        classes = ", ".join(f"{n} {m['class_tiles'][n]} tiles/{m['class_boxes'][n]} boxes" for n in m["class_tiles"])
        return (f"{self.root}: {m['count']} tiles {m['input_size'][0]}x{m['input_size'][1]} from {len(m['sources'])} images "
                f"(requested {m['requested']}, {m['candidates']} candidates, seed {m['seed']}); {classes}; "
                f"sha256 {m['tiles_sha256'][:12]}")

