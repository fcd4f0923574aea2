"""``Counter``: the API for capture rigs, the count CLI and the watch service.

    from bcedge import Counter
    counter = Counter.load("default")            # or a .onnx / .engine / .pt artifact
    result = counter.count(frame)                # RGB uint8 (H, W, 3) of any size
    print(result.counts)                         # {"RBC": 212, "WBC": 3, "Platelets": 17}

Any image larger than the model input is cut into overlapping tiles, batched through the backend,
and merged so a cell cut by a tile border is counted once. A ``Counter`` holds no global state;
one instance may be shared by threads (calls into the backend are serialised by a lock, because
TensorRT execution contexts are not thread-safe), or each thread may load its own.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from bcedge.artifact import ModelMeta
from bcedge.backends import Backend, load_backend, preprocess
from bcedge.catalogue import resolve_model
from bcedge.detections import Detections
from bcedge.runtime.decode import class_thresholds, decode
from bcedge.runtime.frames import check_frame, check_size, source_flags
from bcedge.runtime.merge import check_strategy, merge_tiles
from bcedge.runtime.pipeline import run_stages
from bcedge.runtime.sources import ArraySource, ImageSource, iter_tiles, open_image
from bcedge.runtime.tiling import Tile, TileGrid, choose_overlap

@dataclass
class CountResult:
    """Detections of one image (image pixels) and the per-class counts derived from them."""

    detections: Detections
    class_names: list[str]
    image_size: tuple[int, int]
    tiles: int
    timings: dict[str, float] = field(default_factory=dict)
    source: str = ""
    flags: list[str] = field(default_factory=list)  # e.g. "greyscale" (bcedge.runtime.frames)

    @property
    def counts(self) -> dict[str, int]:
        return self.detections.counts(self.class_names)

    @property
    def total(self) -> int:
        return len(self.detections)

    def to_dict(self, image_id: int = 1) -> dict:
        return {
            "image": {"path": self.source, "width": self.image_size[0], "height": self.image_size[1], "tiles": self.tiles},
            "counts": self.counts,
            "total": self.total,
            "detections": self.detections.to_coco(image_id, self.class_names),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "flags": list(self.flags),
        }


class Counter:
    """Counts cells in images of any size with one loaded backend (see module docstring)."""

    def __init__(self, backend: Backend, tile: str | tuple[int, int] = "auto", overlap: int | None = None,
                 batch_size: int = 4, merge: str = "core", nms_backend: str = "auto",
                 grid_offset: tuple[int, int] = (0, 0), max_pixels: int | None = None) -> None:
        self.backend = backend
        self.max_pixels = max_pixels  # pixel budget per image (bcedge.runtime.frames; None: memory / 16 bytes)
        self.meta: ModelMeta = backend.meta
        self.tile = self._tile_size(tile)
        self.overlap = overlap if overlap is not None else self._default_overlap()
        if not 0 <= self.overlap < min(self.tile):
            raise ValueError(f"overlap {self.overlap} px must be between 0 and the tile size {self.tile[0]}x{self.tile[1]}")
        self.batch_size, self.merge, self.nms_backend = batch_size, check_strategy(merge), nms_backend
        self.grid_offset = (int(grid_offset[0]), int(grid_offset[1]))  # shifts the seams; counts must not change
        self.thresholds = class_thresholds(self.meta)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model: str | Path = "default", backend: str = "auto", device: str = "auto", **options) -> "Counter":
        """Load an artifact (``default``, .onnx, .engine, .pt) and wrap it; options go to ``Counter``."""
        runner = load_backend(resolve_model(model), backend=backend, device=device)
        return cls(runner, **options)

    def _tile_size(self, tile: str | tuple[int, int]) -> tuple[int, int]:
        """The model sees exactly its input size, so tiles are that size; ``none`` only checks it."""
        size = tuple(self.meta.input_size)
        if tile in ("auto", "none", None):
            return size
        if tuple(tile) != size:
            raise ValueError(f"tile {tile[0]}x{tile[1]} differs from the model input {size[0]}x{size[1]}; "
                             "export the model at that tile size instead")
        return size

    def _default_overlap(self) -> int:
        """At least the largest cell the model was trained on, so every cell lies whole in some tile."""
        if not self.meta.max_object_size:
            return min(self.tile) // 4  # a model without size statistics: a quarter tile
        return choose_overlap(self.meta.max_object_size, self.tile)

    def plan(self, width: int, height: int) -> TileGrid:
        """The tile grid this counter lays over a ``width x height`` image."""
        return TileGrid.plan(width, height, self.tile[0], self.tile[1], self.overlap, offset=self.grid_offset)

    def warmup(self, iterations: int = 2) -> None:
        """Run the backend on dummy batches, and decode and merge two dummy boxes: numba loads its
        NMS kernels on first use (about 0.5 s), which would otherwise land on the first real image."""
        with self._lock:
            self.backend.warmup(iterations, self.batch_size)
        boxes = np.array([[0, 0, 8, 8], [1, 1, 9, 9]], np.float32)
        scores = np.ones((2, self.meta.num_classes), np.float32)
        dets = decode(boxes, scores, np.zeros_like(self.thresholds), self.meta.nms_iou, 10, self.nms_backend)
        grid = self.plan(*self.tile)
        merge_tiles([(grid[0], dets)], strategy=self.merge, iou=self.meta.nms_iou, nms_backend=self.nms_backend)

    def count(self, frame: np.ndarray, source: str = "frame") -> CountResult:
        """Count one RGB uint8 frame (H, W, 3) of any size (greyscale: counted, flagged)."""
        frame, flags = check_frame(frame, self.max_pixels, source)
        result = self._run(ArraySource(frame, name=source))
        result.flags = flags
        return result

    def count_file(self, path: str | Path) -> CountResult:
        """Count an image file, read by strips so huge smears are never decoded whole."""
        with open_image(path) as src:
            check_size(src.width, src.height, self.max_pixels, src.name)
            result = self._run(src)
            result.flags = source_flags(src)
            return result

    def stream(self, frames: Iterable[np.ndarray]) -> Iterator[CountResult]:
        """Count frames as they come (a camera): one result per frame, in order."""
        for index, frame in enumerate(frames):
            yield self.count(frame, source=f"frame {index}")

    # -- the pipeline ------------------------------------------------------------------------------

    def _batches(self, src: ImageSource, grid: TileGrid) -> Iterator[list[tuple[Tile, np.ndarray]]]:
        batch: list[tuple[Tile, np.ndarray]] = []
        for item in iter_tiles(src, grid, pad_value=self.meta.pad_value):
            batch.append(item)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _prepare(self, batch: list[tuple[Tile, np.ndarray]]):
        """Stack and convert a batch in its own stage: done on the inference thread, it would leave
        the device idle for as long as it takes (9 ms a 640 px tile on one CPU core)."""
        yield [tile for tile, _ in batch], preprocess(np.stack([pixels for _, pixels in batch]))

    def _infer(self, item):
        tiles, tensor = item
        with self._lock:
            boxes, scores = self.backend.infer(tensor)
        yield tiles, boxes, scores

    def _decode(self, item):
        tiles, boxes, scores = item
        out = []
        for tile, b, s in zip(tiles, boxes, scores):
            dets = decode(b, s, self.thresholds, self.meta.nms_iou, self.meta.max_detections, self.nms_backend)
            out.append((tile, dets))
        yield out

    def _run(self, src: ImageSource) -> CountResult:
        started = time.perf_counter()
        grid = self.plan(src.width, src.height)
        per_tile: list[tuple[Tile, Detections]] = []
        for decoded in run_stages(self._batches(src, grid), [self._prepare, self._infer, self._decode]):
            per_tile.extend(decoded)
        merge_started = time.perf_counter()
        detections = merge_tiles(per_tile, strategy=self.merge, iou=self.meta.nms_iou, nms_backend=self.nms_backend)
        done = time.perf_counter()
        timings = {"total_s": done - started, "merge_s": done - merge_started}
        return CountResult(detections, list(self.meta.class_names), (src.width, src.height), len(grid), timings, src.name)
