"""``Counter``: the API for capture rigs, the count CLI and the watch service.

    from bcedge import Counter
    counter = Counter.load("default")            # or a .onnx / .engine / .pt artifact
    result = counter.count(frame)                # RGB uint8 (H, W, 3) of any size
    print(result.counts)                         # {"RBC": 212, "WBC": 3, "Platelets": 17}

Each image is first brought to the model's working scale (``bcedge.runtime.scale``: given, or
estimated from the image), then cut into overlapping tiles, batched through the backend, and merged
so a cell cut by a tile border is counted once; boxes come back in the image's own pixels. A ``Counter`` holds no global state;
one instance may be shared by threads (calls into the backend are serialised by a lock, because
TensorRT execution contexts are not thread-safe), or each thread may load its own.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from bcedge.artifact import ModelMeta
from bcedge.backends import Backend, load_backend, preprocess
from bcedge.catalogue import resolve_model
from bcedge.detections import Detections
from bcedge.runtime import scale as scaling
from bcedge.runtime.containment import rules_from_meta, suppress_contained
from bcedge.runtime.corrections import corrected
from bcedge.runtime.decode import PRE_NMS_TOPK, class_thresholds, decode
from bcedge.runtime.denoise import smoothed_if_noisy
from bcedge.runtime.device_merge import DeviceTiles
from bcedge.runtime.frames import check_frame, check_size, decode_cap, source_flags
from bcedge.runtime.merge import MergeParams, check_strategy, merge_tiles
from bcedge.runtime.pipeline import batched, run_inline, run_stages
from bcedge.runtime.resample import CropSource, ResampledSource, central_window
from bcedge.runtime.scale_prior import central_square, shared_prior
from bcedge.runtime.sources import ArraySource, ImageSource, iter_tiles, open_image
from bcedge.runtime.tilesize import MAX_SIDE, TileCost, choose_tile
from bcedge.runtime.tiling import Tile, TileGrid, choose_overlap, size_from_text

TileHook = Callable[[Tile, Detections], None]   # (tile, its decoded detections in tile pixels)
# where an auto scale's first guess came from (also said in a fallback's note)
HISTORY_GUESS = "the scale of the last images counted"
THUMBNAIL_GUESS = "the scale its thumbnail suggests"
TRAINING_GUESS = "the training images' typical scale"

BATCH_PIXELS = 4 * 640 * 512                      # pixels per inference batch at most (memory; see batch_for)


class FirstGuess(NamedTuple):
    """An image's first guess of its scale (a factor), where it came from, the seconds it took, and whether the image
    is a rig's first (an unsure first pass then looks at other scales)."""

    factor: float
    where: str
    seconds: float
    new_rig: bool


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
    scale: scaling.Scale | None = None               # how the image was brought to the model's scale
    tile: tuple[int, int] | None = None              # tile size, model pixels

    @property
    def counts(self) -> dict[str, int]:
        return self.detections.counts(self.class_names)

    @property
    def total(self) -> int:
        return len(self.detections)

    def to_dict(self, image_id: int = 1) -> dict:
        return {
            "image": {"path": self.source, "width": self.image_size[0], "height": self.image_size[1], "tiles": self.tiles,
                      "tile": f"{self.tile[0]}x{self.tile[1]}" if self.tile else None},
            "scale": self.scale.to_dict() if self.scale else None,
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
                 grid_offset: tuple[int, int] = (0, 0), max_pixels: int | None = None,
                 cell_size: float | str | None = "auto", um_per_px: float | None = None,
                 score_floor: float | None = None, max_tile: int = MAX_SIDE, device_decode: bool = False,
                 denoise: bool = True, scale_prior: bool = True, even_light: bool = True,
                 fill_surround: bool = True) -> None:
        self.backend = backend
        self.max_pixels = max_pixels  # pixel budget per image (bcedge.runtime.frames; None: memory / 16 bytes)
        self.meta: ModelMeta = backend.meta
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        scaling.check_scale_options(cell_size, um_per_px)
        self.cell_size, self.um_per_px = cell_size, um_per_px
        self.denoise = denoise   # smooth a noisy camera's images (``runtime.denoise``)
        self.even_light = even_light   # even out an unevenly lit field (``runtime.illumination``)
        self.fill_surround = fill_surround   # fill an eyepiece's dark surround (``runtime.field_stop``)
        # a first image's first guess of its scale from a thumbnail (``runtime.scale_prior``), not the training scale
        self.scale_prior = shared_prior() if scale_prior and scaling.model_cell_px(self.meta) else None
        self.max_tile, self.tile_cost = int(max_tile), TileCost.from_meta(self.meta.tile_cost)
        self.tile = self._tile_size(tile)   # None: chosen per image (dynamic-input models)
        self.overlap = overlap if overlap is not None else self._default_overlap()
        smallest = min(self.tile) if self.tile else self.max_tile
        if not 0 <= self.overlap < smallest:
            raise ValueError(f"overlap {self.overlap} px must be between 0 and the tile size ({smallest} px)")
        self.batch_size, self.merge, self.nms_backend = batch_size, check_strategy(merge), nms_backend
        self.grid_offset = (int(grid_offset[0]), int(grid_offset[1]))  # shifts the seams; counts must not change
        self.thresholds = class_thresholds(self.meta, score_floor)   # score_floor: evaluation sees every box
        self.rules = rules_from_meta(self.meta.suppression, self.meta.class_names)
        self.operating_thresholds = class_thresholds(self.meta)   # what counts, also under a score floor
        # device_decode: a backend that can (torch) decodes and suppresses on its device, and with the core merge
        # the tiles are merged there too, so only final detections come back (``runtime.device_merge``). Off by
        # default: on an H200 decoding there was 1.24x faster in FP16 but 0.56x in FP32 (gpu_check).
        self._device_decode = bool(getattr(backend, "decodes_on_device", False)) and device_decode
        # a backend that converts uint8 tiles on its device (torch) gets them as they are
        self._uint8_tiles = self._device_decode or bool(getattr(backend, "takes_uint8_tiles", False))
        self._history = scaling.History()   # the last measured scales (their median is the next guess), last frame size
        self._lock = threading.Lock()
        self._tile_hooks: list[TileHook] = []

    @classmethod
    def load(cls, model: str | Path = "default", backend: str = "auto", device: str = "auto", **options) -> Counter:
        """Load an artifact (``default``, .onnx, .engine, .pt) and wrap it; options go to ``Counter``.
        The backend learns the largest batch and tile this counter will feed it (ONNX Runtime's TensorRT
        provider builds its one engine for that range)."""
        tile = options.get("tile")
        sides = tuple(tile) if isinstance(tile, (tuple, list)) else ()
        limits = {"max_batch": int(options.get("batch_size", 4)),
                  "max_tile": max((*sides, int(options.get("max_tile", MAX_SIDE))))}
        runner = load_backend(resolve_model(model), backend=backend, device=device, **limits)
        return cls(runner, **options)

    def _tile_size(self, tile: str | tuple[int, int]) -> tuple[int, int] | None:
        """A fixed-input model sees exactly its input size, so tiles are that size. A dynamic-input
        model takes any multiple of its stride: ``auto`` chooses per image (``runtime.tilesize``). ``tile`` may be
        (w, h) or "WxH", as the CLI takes it."""
        size = tuple(self.meta.input_size)
        if isinstance(tile, str) and tile != "auto":
            try:
                tile = size_from_text(tile)
            except ValueError:
                raise ValueError(f"tile {tile!r}: expected 'auto', WIDTHxHEIGHT (e.g. 512x512) "
                                 "or (width, height)") from None
        if self.meta.dynamic_input:
            if tile in ("auto", None):
                return None
            if any(v <= 0 or v % self.meta.stride for v in tile):
                raise ValueError(f"tile {tile[0]}x{tile[1]}: sides must be positive multiples of {self.meta.stride}")
            return tuple(int(v) for v in tile)
        if tile in ("auto", None):
            return size
        if tuple(tile) != size:
            raise ValueError(f"tile {tile[0]}x{tile[1]} differs from the model input {size[0]}x{size[1]}; "
                             "export the model at that tile size instead")
        return size

    def _default_overlap(self) -> int:
        """At least the largest cell the model was trained on, so every cell lies whole in some tile."""
        tile = self.tile or (self.max_tile, self.max_tile)
        if not self.meta.max_object_size:
            return min(tile) // 4  # a model without size statistics: a quarter tile
        return choose_overlap(self.meta.max_object_size, tile)

    def plan(self, width: int, height: int) -> TileGrid:
        """The tile grid this counter lays over a ``width x height`` image (model pixels)."""
        tile_w, tile_h = self.tile or choose_tile(width, height, self.overlap, self.meta.stride, self.tile_cost,
                                                  self.max_tile)
        single = width <= tile_w and height <= tile_h and self.grid_offset == (0, 0)   # no seams, no overlap
        return TileGrid.plan(width, height, tile_w, tile_h, 0 if single else self.overlap, offset=self.grid_offset)

    @property
    def merge_params(self) -> MergeParams:
        """How this counter merges tile detections (its strategy, the model's NMS IoU, its NMS backend)."""
        return MergeParams(self.merge, iou=self.meta.nms_iou, nms_backend=self.nms_backend)

    def add_tile_hook(self, hook: TileHook) -> Callable[[], None]:
        """Call ``hook(tile, detections)`` for each tile once decoded (tile pixels, before the merge), in grid
        order, on the calling thread; an image counted in two passes (scale estimation) shows both. For
        benchmarks and tools that look inside the tiling. Returns a function that removes the hook."""
        self._tile_hooks.append(hook)
        return lambda: self._tile_hooks.remove(hook)

    def warmup(self, iterations: int = 2) -> None:
        """Run the backend on dummy batches, and decode and merge two dummy boxes: numba loads its
        NMS kernels on first use (about 0.5 s), which would otherwise land on the first real image."""
        with self._lock:
            self.backend.warmup(iterations, self.batch_size)
        boxes = np.array([[0, 0, 8, 8], [1, 1, 9, 9]], np.float32)
        scores = np.ones((2, self.meta.num_classes), np.float32)
        dets = decode(boxes, scores, np.zeros_like(self.thresholds), self.meta.nms_iou, 10, self.nms_backend)
        grid = self.plan(*(self.tile or tuple(self.meta.input_size)))
        merge_tiles([(grid[0], dets)], self.merge_params)

    def count(self, frame: np.ndarray, source: str = "frame") -> CountResult:
        """Count one RGB uint8 frame (H, W, 3) of any size (greyscale: counted, flagged)."""
        frame, flags = check_frame(frame, self.max_pixels, source)
        result = self._run(ArraySource(frame, name=source))
        result.flags = list(dict.fromkeys(flags + result.flags))   # greyscale may be seen twice
        return result

    def count_file(self, path: str | Path) -> CountResult:
        """Count an image file, read by strips so huge smears are never decoded whole."""
        with open_image(path, decode_cap(self.max_pixels)) as src:
            check_size(src.width, src.height, self.max_pixels, src.name)
            result = self._run(src)
            result.flags = list(dict.fromkeys(source_flags(src) + result.flags))
            return result

    def stream(self, frames: Iterable[np.ndarray] | str | int | Path, policy: str = "all",
               **options) -> Iterator[CountResult]:
        """Count frames as they come: ``frames`` is an iterable of RGB arrays, or a source (a video file,
        camera index or /dev/videoN, rtsp/http URL, GStreamer pipeline, folder or glob of images).
        ``policy``: ``all``, ``latest`` (drop stale frames) or ``every:N``. Yields ``FrameResult``s in
        order (frame index, timestamps, latency); reading, counting and the caller overlap on threads
        started once. See ``bcedge.runtime.live_stream``."""
        from bcedge.runtime.live_stream import stream

        return stream(self, frames, policy=policy, **options)

    # -- the pipeline ------------------------------------------------------------------------------

    def batch_for(self, grid: TileGrid) -> int:
        """Tiles per batch: ``batch_size``, fewer for large tiles so a batch holds at most ``BATCH_PIXELS``
        (a 20k x 20k scan in 1024 px tiles peaked at 1.9 GB with batches of 4, 1.0 GB with 1, and ran faster)."""
        return max(1, min(self.batch_size, BATCH_PIXELS // (grid.tile_w * grid.tile_h)))

    @property
    def tile_stages(self) -> list:
        """The per-batch stages (prepare, infer, decode) that turn a batch of ``(tile, pixels)`` into
        ``(tile, detections)`` in tile pixels: what a caller that cuts tiles itself (a cluster worker
        counting one band of a slide) runs to get exactly this counter's detections."""
        return [self._prepare, self._infer, self._decode]

    @property
    def scale_history(self) -> scaling.History:
        """The last measured scales (unsnapped factors, oldest first: their median is the next image's first guess)
        and the frame size of the last image measured."""
        return self._history

    @scale_history.setter
    def scale_history(self, history: scaling.History | tuple[float, ...]) -> None:
        """A ``History``, or bare factors (a history without a frame size: the next image reads its thumbnail)."""
        if not isinstance(history, scaling.History):
            history = scaling.History(tuple(history))
        factors = tuple(float(v) for v in history.factors)[-scaling.HISTORY_LENGTH:]
        self._history = scaling.History(factors, history.frame if factors else None)

    def _batches(self, src: ImageSource, grid: TileGrid) -> Iterator[list[tuple[Tile, np.ndarray]]]:
        return batched(iter_tiles(src, grid, pad_value=self.meta.pad_value), self.batch_for(grid))

    def _prepare(self, batch: list[tuple[Tile, np.ndarray]]):
        """Stack and convert a batch in its own stage: done on the inference thread, it would leave
        the device idle for as long as it takes (9 ms a 640 px tile on one CPU core). A backend that
        converts on its device (torch) takes the uint8 tiles as they are."""
        pixels = np.stack([pixels for _, pixels in batch])
        yield [tile for tile, _ in batch], pixels if self._uint8_tiles else preprocess(pixels)

    def _infer(self, item):
        tiles, tensor = item
        with self._lock:
            if self._device_decode:
                yield tiles, self.backend.infer_detections(tensor, self.thresholds, self.meta.nms_iou,
                                                           self.meta.max_detections, PRE_NMS_TOPK), None
                return
            boxes, scores = self.backend.infer_tiles(tensor) if self._uint8_tiles else self.backend.infer(tensor)
        yield tiles, boxes, scores

    def _infer_on_device(self, item):
        tiles, tensor = item
        with self._lock:
            yield tiles, self.backend.detect_on_device(tensor, self.thresholds, self.meta.nms_iou,
                                                       self.meta.max_detections, PRE_NMS_TOPK)

    def _decode(self, item):
        tiles, boxes, scores = item
        if scores is None:   # decoded on the device already: boxes holds the detections
            yield list(zip(tiles, boxes))
            return
        out = []
        for tile, b, s in zip(tiles, boxes, scores):
            dets = decode(b, s, self.thresholds, self.meta.nms_iou, self.meta.max_detections, self.nms_backend)
            out.append((tile, dets))
        yield out

    def _run(self, src: ImageSource) -> CountResult:
        """Count ``src`` at the scale the options give, or estimate it (see ``bcedge.runtime.scale``)."""
        started = time.perf_counter()
        src, flags = corrected(src, self.even_light, self.fill_surround)
        fixed = scaling.given_scale(self.meta, self.cell_size, self.um_per_px, (src.width, src.height), src.name)
        result = self._at_scale(src, fixed) if fixed else self._auto_scale(src)
        result.timings["total_s"] = time.perf_counter() - started
        result.flags = flags + result.flags
        return result

    def _auto_scale(self, src: ImageSource) -> CountResult:
        """First pass at a guess (other scales too if it is unsure), then the estimate; a second pass only where
        the guess was off."""
        target = scaling.model_cell_px(self.meta)
        history = self._history
        guess, where, guess_s, new_rig = self._first_guess(src, target, history)
        first_factor = scaling.snap(guess)
        passes = {first_factor: self._probe(src, first_factor)}   # factor -> (result, region counted)
        probes = [(first_factor, self._measure(*passes[first_factor], target))]
        first = probes[0][1]
        confirmed = where == THUMBNAIL_GUESS and scaling.confirms(first, guess)
        if confirmed and first.factor is None:   # a sparse field whose few whole red cells measure the thumbnail's guess
            first = replace(first, factor=first.sparse_factor)
            probes[0] = (first_factor, first)
        # a rig's first image, a sparse field at the thumbnail's scale: counted there (other scales would not show
        # more whole cells; a rig's later images fall back to its measured scale instead)
        sparse = new_rig and where == THUMBNAIL_GUESS and first.sparse
        if new_rig and not (first.trusted or confirmed or sparse):
            # a rig's first image, unsure at the guessed scale: a microscope far from it finds nothing there, or
            # cell parts; look at other scales (the rig's next images start from what this one measured)
            steps = scaling.THUMBNAIL_LADDER_STEPS if where == THUMBNAIL_GUESS else scaling.LADDER_STEPS
            for factor in scaling.ladder(first_factor, steps):
                passes[factor] = self._probe(src, factor)
                probes.append((factor, self._measure(*passes[factor], target)))
        estimate_s = guess_s + sum(result.timings["total_s"] for result, _ in passes.values())
        probe_factor, found = scaling.chosen_probe(probes)
        measured, cells = found.factor, found.cells
        if measured is None:   # too few whole red cells to measure
            fallback, where = self._unmeasured_scale(guess if sparse else None, history, target)
            tried = f" at {len(probes)} scales" if len(probes) > 1 else ""
            chosen = scaling.Scale(scaling.snap(fallback), "fallback", cell_px=target / fallback, cells=cells,
                                   note=f"{cells} whole red cells found{tried} (at least {scaling.MIN_CELLS} needed): "
                                        f"counted at {where}")
            probe_factor = chosen.factor if chosen.factor in passes else first_factor
        else:
            chosen = scaling.Scale(scaling.snap(measured), "auto", cell_px=target / measured, cells=cells)
        probe, region = passes[probe_factor]
        # the pass that measured is the count when it saw the whole image at (nearly) the chosen scale
        keep = region is src and (chosen.factor == probe_factor
                                  or chosen.method == "auto" and scaling.close_enough(measured, probe_factor))
        chosen.passes = len(probes)
        if keep:
            chosen.factor, result = probe_factor, probe
            estimate_s -= probe.timings["total_s"]
        else:
            result = self._at_scale(src, chosen)
            chosen.passes += 1
            refined = self._measure(result, src, target)
            if probe_factor != first_factor and refined.factor is not None:
                measured = refined.factor   # measured near the working scale: a better guess for the next image
            off = refined.factor is not None and not scaling.close_enough(refined.factor, chosen.factor)
            if chosen.method == "auto" and off:
                measured = refined.factor
                chosen = scaling.Scale(scaling.snap(measured), "auto", cell_px=target / measured, cells=refined.cells,
                                       passes=chosen.passes + 1)
                estimate_s += result.timings["total_s"]
                result = self._at_scale(src, chosen)
        result.scale = chosen
        result.timings["estimate_s"] = estimate_s
        if chosen.method == "auto":   # the measurement, not the snapped factor: the next image's guess
            self._history = history.after(measured, (src.width, src.height))
        return result

    def _first_guess(self, src: ImageSource, target: float, history: scaling.History) -> FirstGuess:
        """Where an image's auto scale starts.

        An image of the last one's frame size starts from the last images' scale. Another frame size may be
        another rig's: it starts from what the scale network reads from its thumbnail (when the counter has the
        network) if that is further from the last images' scale than the reading's own error (``REUSE_TOLERANCE``:
        within it, the measured scale is the better guess), and is a new rig's first image if it is far from it
        (``scaling.same_rig``). Without the network, a first image starts from the training images' typical scale.
        """
        if history and (history.frame == (src.width, src.height) or self.scale_prior is None):
            return FirstGuess(history.guess, HISTORY_GUESS, 0.0, False)
        if self.scale_prior is None:
            return FirstGuess(*self._training_guess(target), 0.0, True)
        thumbnail, seconds = self._thumbnail_guess(src, target)
        if history and scaling.close_enough(thumbnail, history.guess):   # within the guess's own error: the measured
            return FirstGuess(history.guess, HISTORY_GUESS, seconds, False)
        return FirstGuess(thumbnail, THUMBNAIL_GUESS, seconds, not (history and scaling.same_rig(thumbnail, history.guess)))

    def _thumbnail_guess(self, src: ImageSource, target: float) -> tuple[float, float]:
        """The factor the scale network reads from ``src``'s thumbnail, and the seconds it took. The guess only says
        where to look first: an image whose scale cannot be measured is not counted at it. Reading the central
        square is not timed as the guess's: for most files it is the decode the first pass would otherwise do."""
        square = central_square(src)
        started = time.perf_counter()
        factor = scaling.clamp(target / self.scale_prior.cell_px_in(square))
        return factor, time.perf_counter() - started

    def _unmeasured_scale(self, sparse_guess: float | None, history: scaling.History,
                          target: float) -> tuple[float, str]:
        """Where an image whose scale could not be measured is counted, and why: a sparse field at the thumbnail's
        guess it was seen at (``sparse_guess``: the detector was sure of the red cells it found there), else the
        last images' scale, else the training images' typical scale (not a thumbnail's reading on its own)."""
        if sparse_guess is not None:
            return sparse_guess, f"{THUMBNAIL_GUESS}, where the detector was sure of the red cells it found"
        return (history.guess, HISTORY_GUESS) if history else self._training_guess(target)

    def _training_guess(self, target: float) -> tuple[float, str]:
        """The factor that brings the training images' median red cell to the model's scale."""
        typical = scaling.training_median_px(self.meta)
        return scaling.clamp(target / typical if typical else 1.0), TRAINING_GUESS

    def _measure(self, result: CountResult, region: ImageSource, target: float) -> scaling.Measurement:
        """The scale a pass over ``region`` gives (``result``'s detections are in ``region``'s pixels)."""
        return scaling.estimate_from(result.detections, self.meta.class_names, (region.width, region.height), target)

    def _probe(self, src: ImageSource, factor: float) -> tuple[CountResult, ImageSource]:
        """A pass at ``factor`` over ``src``, or over its central crop of ``PROBE_SIDE`` model pixels when larger."""
        side = int(scaling.PROBE_SIDE / factor)
        whole = src.width <= side and src.height <= side
        region = src if whole else CropSource(src, *central_window(src.width, src.height, side))
        return self._at_scale(region, scaling.Scale(factor, "auto")), region

    def _at_scale(self, src: ImageSource, scale: scaling.Scale) -> CountResult:
        """Resample to the model's scale, tile, infer, merge; detections back in ``src``'s pixels."""
        started = time.perf_counter()
        view = src if scale.factor == 1.0 else ResampledSource(src, scale.factor)
        view, flags = smoothed_if_noisy(view) if self.denoise else (view, [])
        grid = self.plan(view.width, view.height)
        run = run_inline if len(grid) <= self.batch_for(grid) else run_stages   # one batch: nothing to overlap
        if self._device_decode and self.merge == "core" and not self._tile_hooks:
            # detections stay on the device until merged there: only the final ones come back
            on_device = DeviceTiles()
            for tiles, found in run(self._batches(view, grid), [self._prepare, self._infer_on_device]):
                on_device.add(tiles, found)
            merge_started = time.perf_counter()
            detections = on_device.merge(self.merge_params)
        else:
            per_tile: list[tuple[Tile, Detections]] = []
            for decoded in run(self._batches(view, grid), self.tile_stages):
                per_tile.extend(decoded)
                for tile, dets in decoded if self._tile_hooks else ():
                    for hook in self._tile_hooks:
                        hook(tile, dets)
            merge_started = time.perf_counter()
            detections = merge_tiles(per_tile, self.merge_params)
        if scale.factor != 1.0:
            detections = detections.scale(1 / scale.factor, 1 / scale.factor).clip(src.width, src.height)
        detections = suppress_contained(detections, self.meta.class_names, self.rules, self.operating_thresholds)
        done = time.perf_counter()
        timings = {"total_s": done - started, "merge_s": done - merge_started}
        return CountResult(detections, list(self.meta.class_names), (src.width, src.height), len(grid), timings,
                           src.name, flags=flags, scale=scale, tile=(grid.tile_w, grid.tile_h))
