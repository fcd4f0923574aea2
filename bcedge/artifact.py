"""Model metadata: everything the run road needs, travelling inside each artifact.

A checkpoint (``.pt``, key ``bcedge_meta``), an ONNX file (``metadata_props["bcedge"]``) and an engine
file (a header before the serialized engine) all carry the same ``ModelMeta`` as JSON, so the runtime
never asks the build road anything. ``read_meta`` / ``write_meta`` handle every kind, chosen by suffix
from ``KINDS`` (a new kind is one reader, one writer and one line there).

The engine file layout (little endian)::

    b"BCEDGTRT" | uint32 layout version | uint32 header length N | N bytes of JSON | serialized engine

Its JSON header holds the ``ModelMeta`` (key ``meta``) plus what the engine is tied to (TensorRT
version, GPU, precision, batch profile, DLA core, version compatibility); the TensorRT backend checks
those against the machine before deserializing.
"""
from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from bcedge._version import __version__
from bcedge.atomic import atomic_path, atomic_write_bytes

META_KEY = "bcedge"
# The graph's tensor names, the contract between the converters and every backend (ONNX and engines).
INPUT_NAME = "images"
OUTPUT_NAMES = ("boxes", "scores")
SCHEMA_VERSION = 1


class ArtifactError(RuntimeError):
    """An artifact is missing, unreadable, or does not match what the caller needs."""


@dataclass
class ModelMeta:
    """What a trained detector is and how to feed it.

    ``input_size`` is (width, height) of the tensor the model sees: the runtime tiles to it and
    never resizes silently. ``mean``/``std`` apply to RGB pixels scaled to 0..1.
    ``outputs`` names the graph's output convention (see ``bcedge.runtime.decode``).
    """

    arch: str                                   # e.g. "fcos_efficientnet_lite0"
    head: str
    backbone: str
    class_names: list[str]
    input_size: tuple[int, int]                 # (width, height)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    score_thresholds: dict[str, float] = field(default_factory=dict)   # per class name
    default_score_threshold: float = 0.3
    nms_iou: float = 0.5
    max_detections: int = 1000
    outputs: str = "boxes_scores"               # boxes (B,A,4) xyxy px + scores (B,A,C) in 0..1
    max_object_size: float = 0.0                # largest expected object side, px: the tile overlap floor
    stride: int = 32                            # input sides must be multiples of this
    dynamic_input: bool = False                 # graph takes any HxW (multiples of stride); input_size = default tile
    pixel_scale: dict[str, Any] = field(default_factory=dict)  # training scale: rbc_px, range_px, um_per_px (see runtime/scale.py)
    suppression: list[dict[str, Any]] = field(default_factory=list)  # containment rules (see runtime/containment.py)
    tile_cost: dict[str, float] = field(default_factory=dict)  # measured tile latency model (see runtime/tilesize.py)
    anchors: dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"
    train_data: dict[str, Any] = field(default_factory=dict)   # fingerprint, split, counts
    pretrained: dict[str, Any] = field(default_factory=dict)   # weights file and sha256
    recipe: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=lambda: {"bcedge": __version__})
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        self.input_size = tuple(int(v) for v in self.input_size)
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        self.class_names = list(self.class_names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def pad_value(self) -> int:
        """Grey level for tile padding: the normalisation mean, i.e. zero after normalising, as the
        convolutions' own zero padding looks during training."""
        return int(round(sum(self.mean) / 3 * 255))

    def score_threshold(self, class_name: str) -> float:
        return float(self.score_thresholds.get(class_name, self.default_score_threshold))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "metadata") -> "ModelMeta":
        known = {f.name for f in fields(cls)}
        missing = [n for n in ("arch", "head", "backbone", "class_names", "input_size") if n not in data]
        if missing:
            raise ArtifactError(f"{source}: bcedge metadata lacks {', '.join(missing)}")
        schema = int(data.get("schema", SCHEMA_VERSION))
        if schema > SCHEMA_VERSION:
            raise ArtifactError(
                f"{source}: metadata schema {schema} is newer than this bcedge ({__version__}) understands; upgrade bcedge"
            )
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, text: str, source: str = "metadata") -> "ModelMeta":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{source}: bcedge metadata is not valid JSON ({exc})") from exc
        return cls.from_dict(data, source)


def read_onnx_meta(path: str | Path) -> ModelMeta:
    """Read the metadata stored in an ONNX file's ``metadata_props`` (weights are not loaded)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such model file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ArtifactError(f"{path}: not a readable ONNX model ({exc})") from exc
    props = {p.key: p.value for p in model.metadata_props}
    if META_KEY not in props:
        raise ArtifactError(f"{path}: ONNX model has no bcedge metadata (was it exported by bcedge?)")
    return ModelMeta.from_json(props[META_KEY], str(path))


def write_onnx_meta(model, meta: ModelMeta) -> None:
    """Store ``meta`` in an in-memory ``onnx.ModelProto``, replacing earlier bcedge metadata."""
    keep = [p for p in model.metadata_props if p.key != META_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    entry = model.metadata_props.add()
    entry.key = META_KEY
    entry.value = meta.to_json()


def _write_onnx(src: Path, meta: ModelMeta, out: Path) -> Path:
    import onnx

    proto = onnx.load(str(src))
    write_onnx_meta(proto, meta)
    with atomic_path(out) as tmp:
        onnx.save(proto, str(tmp))
    return out


# --- checkpoints (.pt): torch is imported only here, lazily ---------------------------------------------
CHECKPOINT_KEY = "bcedge_meta"


def _load_checkpoint(path: Path) -> dict:
    try:
        import torch
    except ImportError as exc:
        raise ArtifactError(f"{path}: reading a checkpoint needs PyTorch (pip install 'bcedge[train]')") from exc
    if not path.is_file():
        raise ArtifactError(f"{path}: no such model file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike
        raise ArtifactError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc
    if not isinstance(state, dict) or CHECKPOINT_KEY not in state:
        raise ArtifactError(f"{path}: checkpoint has no bcedge metadata (was it saved by bcedge?)")
    return state


def read_checkpoint_meta(path: str | Path) -> ModelMeta:
    path = Path(path)
    return ModelMeta.from_json(_load_checkpoint(path)[CHECKPOINT_KEY], str(path))


def _write_checkpoint(src: Path, meta: ModelMeta, out: Path) -> Path:
    import torch

    state = _load_checkpoint(src)
    state[CHECKPOINT_KEY] = meta.to_json()
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    return out


# --- engine files (.engine, .plan): a JSON header before the serialized TensorRT engine -----------------
ENGINE_MAGIC = b"BCEDGTRT"
ENGINE_LAYOUT_VERSION = 1
_ENGINE_PREFIX = struct.Struct("<8sII")


def pack_engine(header: dict, engine: bytes) -> bytes:
    text = json.dumps(header, sort_keys=True).encode("utf-8")
    return _ENGINE_PREFIX.pack(ENGINE_MAGIC, ENGINE_LAYOUT_VERSION, len(text)) + text + bytes(engine)


def write_engine(path: str | Path, header: dict, engine: bytes) -> Path:
    return atomic_write_bytes(path, pack_engine(header, engine))


def _read_engine(path: Path, with_engine: bool) -> tuple[dict, bytes]:
    if not path.is_file():
        raise ArtifactError(f"{path}: no such engine file")
    with open(path, "rb") as handle:
        prefix = handle.read(_ENGINE_PREFIX.size)
        if len(prefix) < _ENGINE_PREFIX.size or prefix[:8] != ENGINE_MAGIC:
            raise ArtifactError(f"{path}: not a bcedge engine (no bcedge header; build it with `bcedge build-engine`)")
        _, layout, length = _ENGINE_PREFIX.unpack(prefix)
        if layout > ENGINE_LAYOUT_VERSION:
            raise ArtifactError(f"{path}: engine file layout {layout} is newer than this bcedge reads; upgrade bcedge")
        text = handle.read(length)
        if len(text) != length:
            raise ArtifactError(f"{path}: truncated engine header ({len(text)} of {length} bytes); rebuild or re-copy it")
        try:
            header = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{path}: engine header is not valid JSON ({exc})") from exc
        engine = handle.read() if with_engine else b""
    if with_engine and not engine:
        raise ArtifactError(f"{path}: the engine file holds a header but no engine (truncated?)")
    return header, engine


def read_engine_header(path: str | Path) -> dict:
    return _read_engine(Path(path), with_engine=False)[0]


def read_engine(path: str | Path) -> tuple[dict, bytes]:
    """(header, serialized engine) of a bcedge engine file."""
    return _read_engine(Path(path), with_engine=True)


def read_engine_meta(path: str | Path) -> ModelMeta:
    header = read_engine_header(path)
    if "meta" not in header:
        raise ArtifactError(f"{path}: engine header has no model metadata")
    return ModelMeta.from_dict(header["meta"], str(path))


def _write_engine_meta(src: Path, meta: ModelMeta, out: Path) -> Path:
    header, engine = read_engine(src)
    return write_engine(out, {**header, "meta": asdict(meta)}, engine)


# --- every kind, by suffix ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArtifactKind:
    name: str
    read: Callable[[Path], ModelMeta]
    write: Callable[[Path, ModelMeta, Path], Path]   # (source, new metadata, output) -> output


_ONNX = ArtifactKind("onnx", read_onnx_meta, _write_onnx)
_CHECKPOINT = ArtifactKind("checkpoint", read_checkpoint_meta, _write_checkpoint)
_ENGINE = ArtifactKind("engine", read_engine_meta, _write_engine_meta)
KINDS: dict[str, ArtifactKind] = {".onnx": _ONNX, ".pt": _CHECKPOINT, ".pth": _CHECKPOINT,
                                  ".engine": _ENGINE, ".plan": _ENGINE}


def artifact_kind(path: str | Path) -> ArtifactKind:
    suffix = Path(path).suffix.lower()
    if suffix not in KINDS:
        raise ArtifactError(f"{path}: not a model artifact (expected {', '.join(KINDS)})")
    return KINDS[suffix]


def read_meta(path: str | Path) -> ModelMeta:
    """The ``ModelMeta`` inside any artifact (checkpoints need PyTorch)."""
    return artifact_kind(path).read(Path(path))


def write_meta(src: str | Path, meta: ModelMeta, out: str | Path) -> Path:
    """Write a copy of the artifact ``src`` to ``out`` (same kind) carrying ``meta`` instead of its own."""
    src, out = Path(src), Path(out)
    kind = artifact_kind(src)
    if artifact_kind(out) is not kind:
        raise ArtifactError(f"{out}: must be the same kind of artifact as {src.name} ({kind.name})")
    out.parent.mkdir(parents=True, exist_ok=True)
    return kind.write(src, meta, out)
