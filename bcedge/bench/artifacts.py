"""The artifacts a matrix runs, built once per (architecture, tile size) and cached in a work folder.

Build road (torch, imported only when something has to be built): a weights-only checkpoint (the
trained one when the matrix was given one, else random weights: speed does not depend on them), its
ONNX export, FP16 and INT8 (Q/DQ) conversions, and TensorRT engines when TensorRT is present. Every
step is the library's own (``torch2onnx``, ``onnx2fp16``, ``quantize``, ``onnx2engine``); a step that
fails records its reason, and every cell needing that artifact reports ``export failed: <reason>``.

The cache is keyed by the source checkpoint's path, size and mtime: a checkpoint that training has
since improved is re-exported, and artifacts prebuilt elsewhere (a Jetson without torch) are reused.

Fixed-input models are exported at the cell's tile. A dynamic-input model (``ModelMeta.dynamic_input``)
keeps its own metadata: its graph takes any multiple of its stride, so one export serves every tile.
A scale-aware one (``ModelMeta.pixel_scale``) is calibrated for INT8 on training images resampled to its
working scale, as the runtime resamples them (``scaled_calibration_for``), not on raw tiles.
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bcedge.bench.matrix import is_two_stage
from bcedge.runtime.scale import model_cell_px

CLASS_NAMES = ["RBC", "WBC", "Platelets"]      # BCCD's, for untrained models
SOURCE_FILE = "source.json"
INT8_KINDS = {"tensorrt": "int8", "cpu": "int8-cpu"}    # quantization target -> artifact kind suffix
NOTES_FILE = "notes.json"                        # e.g. a calibration fallback, kept with the cached file
TRAINED_SIZE_FILE = "trained_input_size.json"   # the checkpoint's own input size (accuracy is measured there)


@dataclass
class ArtifactSet:
    """Files by kind ("pt", "onnx:fp32", "engine:fp16"...) and the reasons the missing ones failed."""

    arch: str
    tile: tuple[int, int]
    folder: Path
    checkpoint: Path | None = None            # trained source, or None for random weights
    files: dict[str, Path] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    two_stage: bool = False
    trained_input_size: tuple[int, int] | None = None
    dynamic_input: bool = False               # the graph takes any tile that is a multiple of ``stride``
    stride: int = 32
    cell_px: float | None = None              # scale-aware: its median red cell, model pixels (None: works as is)

    @property
    def trained(self) -> bool:
        return self.checkpoint is not None

    @property
    def scale_aware(self) -> bool:
        return self.cell_px is not None

    def status(self, kind: str) -> str | None:
        """None when the file is there, else ``export failed: <reason>``."""
        if kind in self.files:
            return None
        return f"export failed: {self.failures.get(kind, 'not built')}"

    def describe(self) -> dict:
        return {"arch": self.arch, "tile": list(self.tile), "trained": self.trained,
                "checkpoint": str(self.checkpoint) if self.checkpoint else None, "two_stage": self.two_stage,
                "trained_input_size": list(self.trained_input_size) if self.trained_input_size else None,
                "dynamic_input": self.dynamic_input, "working_scale_cell_px": self.cell_px,
                "files": {k: str(v) for k, v in self.files.items()}, "failures": dict(self.failures),
                "notes": dict(self.notes),
                "build_seconds": dict(self.seconds)}


@dataclass(frozen=True)
class BuildContext:
    calib: Path | None = None                 # calibration set folder at this tile size
    calib_limit: int | None = None
    engine_batch: tuple[int, int, int] = (1, 4, 8)
    calib_error: str = ""                     # why there is no calibration set, if there is none


def _source_key(checkpoint: Path | None) -> dict:
    if checkpoint is None:
        return {"checkpoint": None, "weights": "random (seed 0)"}
    stat = checkpoint.stat()
    return {"checkpoint": str(checkpoint.resolve()), "size": stat.st_size, "mtime": int(stat.st_mtime)}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


# --- builders: kind -> (needs, build(set, context) -> path) ---------------------------------------------
def _build_pt(s: ArtifactSet, ctx: BuildContext) -> Path:
    import torch

    from bcedge.models import build_detector, load_detector

    out = s.folder / "model.pt"
    if s.checkpoint is not None:
        detector, _ = load_detector(s.checkpoint)
        (s.folder / TRAINED_SIZE_FILE).write_text(json.dumps(list(detector.meta.input_size)))
        if tuple(detector.meta.input_size) != tuple(s.tile) and not detector.meta.dynamic_input:
            meta = detector.meta
            meta.input_size = tuple(s.tile)
            moved = build_detector(meta.arch, meta.class_names, s.tile, pretrained=False, meta=meta)
            moved.model.load_state_dict(detector.model.state_dict())
            detector = moved
    else:
        torch.manual_seed(0)
        detector = build_detector(s.arch, CLASS_NAMES, s.tile, pretrained=False)
    detector.save(out)          # weights and metadata only: no optimizer state in the measured size
    return out


def _build_onnx_fp32(s: ArtifactSet, ctx: BuildContext) -> Path:
    from bcedge.convert.torch2onnx import torch2onnx

    return torch2onnx(s.files["pt"], s.folder / "model.onnx")


def _build_onnx_fp16(s: ArtifactSet, ctx: BuildContext) -> Path:
    from bcedge.convert.onnx2fp16 import onnx2fp16

    return onnx2fp16(s.files["onnx:fp32"], s.folder / "model.fp16.onnx")


def _int8_builder(target: str) -> Callable[[ArtifactSet, BuildContext], Path]:
    """Q/DQ INT8 for a quantization target: "tensorrt" (signed, symmetric: ORT GPU EPs and TensorRT) or "cpu"."""
    def build(s: ArtifactSet, ctx: BuildContext) -> Path:
        from bcedge.convert.quantize import QuantOptions, quantize

        if ctx.calib is None:
            raise FileNotFoundError(ctx.calib_error or f"no calibration set for {s.tile[0]}x{s.tile[1]}")
        out = s.folder / FILE_NAMES[f"onnx:{INT8_KINDS[target]}"]
        minmax = QuantOptions(target=target, limit=None if s.trained else ctx.calib_limit, method="minmax")
        if not s.trained:    # speed only: a few tiles, min-max (histograms fail on an untrained net's flat activations)
            return quantize(s.files["onnx:fp32"], ctx.calib, out, minmax)
        try:                 # the library's recommended calibration on the whole set: accuracy is reported
            return quantize(s.files["onnx:fp32"], ctx.calib, out, QuantOptions(target=target))
        except ValueError as exc:
            s.notes[f"onnx:{INT8_KINDS[target]}"] = f"default calibration failed ({_first_line(exc)}); min-max used"
            return quantize(s.files["onnx:fp32"], ctx.calib, out, minmax)

    return build


def engine_input_sizes(meta, tile: tuple[int, int]) -> tuple | None:
    """A dynamic-input engine's (MIN, OPT, MAX) sizes: optimised for the cell's tile, and still taking the
    library's default range (half to twice its default tile), where the accuracy run's frames fall."""
    if not meta.dynamic_input:
        return None
    from bcedge.convert.onnx2engine import input_profile

    low, _, high = input_profile(meta)
    tile = tuple(int(v) for v in tile)
    return (tuple(map(min, low, tile)), tile, tuple(map(max, high, tile)))


def _engine_builder(precision: str) -> Callable[[ArtifactSet, BuildContext], Path]:
    def build(s: ArtifactSet, ctx: BuildContext) -> Path:
        from bcedge.artifact import read_meta
        from bcedge.convert.onnx2engine import EngineOptions, onnx2engine

        source = s.files[f"onnx:{precision}"]
        options = EngineOptions(precision=precision, batch=ctx.engine_batch,
                                input_sizes=engine_input_sizes(read_meta(source), s.tile))
        return onnx2engine(source, s.folder / f"model.{precision}.engine", options)

    return build


BUILDERS: dict[str, tuple[tuple[str, ...], Callable[[ArtifactSet, BuildContext], Path]]] = {
    "pt": ((), _build_pt),
    "onnx:fp32": (("pt",), _build_onnx_fp32),
    "onnx:fp16": (("onnx:fp32",), _build_onnx_fp16),
    "onnx:int8": (("onnx:fp32",), _int8_builder("tensorrt")),
    "onnx:int8-cpu": (("onnx:fp32",), _int8_builder("cpu")),
    **{f"engine:{p}": ((f"onnx:{p}",), _engine_builder(p)) for p in ("fp32", "fp16", "int8")},
}
FILE_NAMES = {"pt": "model.pt", "onnx:fp32": "model.onnx", "onnx:fp16": "model.fp16.onnx",
              "onnx:int8": "model.int8.onnx", "onnx:int8-cpu": "model.int8-cpu.onnx",
              **{f"engine:{p}": f"model.{p}.engine" for p in ("fp32", "fp16", "int8")}}


def prepare(arch: str, tile: tuple[int, int], work: str | Path, kinds: set[str], checkpoint: str | Path | None = None,
            context: BuildContext = BuildContext(), log: Callable[[str], None] = print) -> ArtifactSet:
    """Build (or reuse) the ``kinds`` of artifacts for ``arch`` at ``tile``; failures are recorded, not raised."""
    checkpoint = Path(checkpoint) if checkpoint else None
    folder = Path(work) / f"{arch}_{tile[0]}x{tile[1]}"
    s = ArtifactSet(arch, tuple(tile), folder, checkpoint)
    try:
        s.two_stage = is_two_stage(arch)
    except ValueError as exc:
        s.failures = {kind: _first_line(exc) for kind in kinds}
        return s
    folder.mkdir(parents=True, exist_ok=True)
    key = _source_key(checkpoint)
    source = folder / SOURCE_FILE
    stale = not source.is_file() or json.loads(source.read_text()) != key
    if stale:
        for name in (*FILE_NAMES.values(), TRAINED_SIZE_FILE, NOTES_FILE):
            (folder / name).unlink(missing_ok=True)
        source.write_text(json.dumps(key))

    def ensure(kind: str) -> bool:
        """The file of ``kind`` exists (found or built), building only the prerequisites it lacks."""
        if kind in s.files or kind in s.failures:
            return kind in s.files
        path = folder / FILE_NAMES[kind]
        if path.is_file():            # built earlier, or prebuilt elsewhere (no torch needed to reuse it)
            s.files[kind] = path
            return True
        for need in BUILDERS[kind][0]:
            if not ensure(need):
                s.failures[kind] = s.failures[need]
                return False
        log(f"  building {arch} {tile[0]}x{tile[1]} {kind}")
        started = time.perf_counter()
        error_file = folder / f"{FILE_NAMES[kind]}.error.txt"
        error_file.unlink(missing_ok=True)
        s.notes.pop(kind, None)
        try:
            s.files[kind] = BUILDERS[kind][1](s, context)
        except Exception as exc:  # noqa: BLE001 - any failure becomes the cell's status, with its reason
            s.failures[kind] = _first_line(exc)
            log(f"  {kind} failed: {s.failures[kind]}")
            error_file.write_text(traceback.format_exc())
        s.seconds[kind] = round(time.perf_counter() - started, 1)
        return kind in s.files

    notes_file = folder / NOTES_FILE
    if notes_file.is_file():
        s.notes = json.loads(notes_file.read_text())
    for kind in sorted(kinds):
        ensure(kind)
    notes_file.write_text(json.dumps(s.notes))
    if (folder / TRAINED_SIZE_FILE).is_file():
        s.trained_input_size = tuple(json.loads((folder / TRAINED_SIZE_FILE).read_text()))
    _read_model_kind(s)
    return s


def _read_model_kind(s: ArtifactSet) -> None:
    """Input kind and working scale from the built files' metadata (ONNX first: no torch needed)."""
    from bcedge.artifact import ArtifactError, read_meta

    for kind in sorted(s.files, key=lambda k: (k == "pt", k)):
        try:
            meta = read_meta(s.files[kind])
        except (ArtifactError, ImportError, ValueError):
            continue
        s.dynamic_input, s.stride = bool(meta.dynamic_input), int(meta.stride or 32)
        s.cell_px = model_cell_px(meta)
        return


def scale_aware_meta(checkpoint: Path | None):
    """The metadata of a scale-aware checkpoint (``ModelMeta.pixel_scale``), or None: no checkpoint, a model
    that counts images as they are, or a checkpoint this machine cannot read (no torch)."""
    if checkpoint is None:
        return None
    from bcedge.artifact import ArtifactError, read_meta

    try:
        meta = read_meta(checkpoint)
    except (ArtifactError, ImportError):
        return None
    return meta if model_cell_px(meta) is not None else None


def calibration_for(tile: tuple[int, int], candidates: list[Path], data: Path | None, split: str, work: Path,
                    count: int) -> tuple[Path | None, str]:
    """A calibration set at ``tile``: an existing one from ``candidates``, else built from ``data``'s ``split``.

    Returns (folder, "") or (None, reason).
    """
    from bcedge.convert.calibration import CalibrationError, CalibrationSet, TileSpec, build_calibration_set

    for folder in candidates:
        try:
            if CalibrationSet.load(folder).input_size == tuple(tile):
                return folder, ""
        except CalibrationError:
            continue
    if data is None or not Path(data).exists():
        return None, f"no calibration set for {tile[0]}x{tile[1]} and no dataset to build one from"
    return _built_once(work / f"calib_{tile[0]}x{tile[1]}_{count}", data, split, "a calibration set",
                       lambda dataset, out: build_calibration_set(dataset, out, TileSpec(tuple(tile)), count=count))


def _built_once(out: Path, data: Path, split: str, what: str, build) -> tuple[Path | None, str]:
    """``out`` when a calibration set is already there, else ``build(dataset, out)`` from ``data``'s ``split``.
    Returns (folder, "") or (None, reason)."""
    from bcedge.convert.calibration import CalibrationError, CalibrationSet
    from bcedge.data import load_dataset

    try:
        CalibrationSet.load(out)
        return out, ""
    except CalibrationError:
        pass
    try:
        build(load_dataset(data, split), out)
    except (CalibrationError, OSError, ValueError) as exc:
        return None, f"could not build {what} from {data} ({split}): {_first_line(exc)}"
    return out, ""


SCALED_CALIB_COUNT = 500    # as calibration/build_bccd.py asks: every BCCD training frame (205), like the 640x480 set


def scaled_calibration_for(cell_px: float, size: tuple[int, int], data: Path | None, split: str, work: Path,
                           pad_value: int, count: int = SCALED_CALIB_COUNT) -> tuple[Path | None, str]:
    """A calibration set for a scale-aware model: ``split``'s images resampled so their median red cell is
    ``cell_px`` (as the runtime resamples), cut into ``size`` tiles (its trained input). Returns (folder, "") or
    (None, reason)."""
    from bcedge.convert.calibration import build_scaled_calibration_set

    if data is None or not Path(data).exists():
        return None, f"no dataset to build a calibration set at {cell_px:g} px red cells from"
    return _built_once(work / f"calib_scaled_{cell_px:g}px_{size[0]}x{size[1]}_{count}", data, split,
                       "a scaled calibration set", lambda dataset, out: build_scaled_calibration_set(
                           dataset, out, cell_px, tuple(size), count=count, pad_value=pad_value))
