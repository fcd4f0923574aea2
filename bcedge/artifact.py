"""Model metadata: everything the run road needs, travelling inside each artifact.

A checkpoint (``.pt``), an ONNX file (``metadata_props["bcedge"]``) and an engine file (a header)
all carry the same ``ModelMeta`` as JSON, so the runtime never asks the build road anything.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from bcedge._version import __version__

META_KEY = "bcedge"
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
