"""The benchmark matrix: profiles (which cells a machine kind runs), the cells, and their status.

A cell is one (architecture, backend on a device, precision, batch size, tile size). Its status is
one of

* ``ok``: measured;
* ``export failed: <reason>``: the artifact it needs could not be built (e.g. a head without an ONNX graph);
* ``unsupported here: <reason>``: this machine or backend cannot run it (no GPU, no TensorRT, the torch
  backend runs FP32 checkpoints only...);
* ``failed: <reason>``: it was built and started but did not finish (crash, timeout, error).

Profiles are data, registered by name: ``quick`` (tests), ``cpu`` (this machine kind, whole matrix in
well under 20 minutes on 2 cores), ``gpu`` and ``jetson``.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field, replace

from bcedge.backends import backend_class
from bcedge.bench.timing import TimingPolicy
from bcedge.registry import Registry

OK = "ok"
EXPORT_FAILED = "export failed"
UNSUPPORTED = "unsupported here"
FAILED = "failed"
PRECISIONS = ("fp32", "fp16", "int8")
TWO_STAGE_HEADS = ("faster_rcnn",)   # fallback when the zoo (torch) is not importable to ask
LITE0 = "efficientnet_lite0"


@dataclass(frozen=True)
class Cell:
    arch: str
    backend: str          # registered backend name: torch, onnxruntime, tensorrt
    device: str           # cpu, cuda, or an ONNX Runtime provider name (tensorrt)
    precision: str
    batch: int
    tile: tuple[int, int]

    @property
    def runner(self) -> str:
        return f"{self.backend}:{self.device}"

    @property
    def key(self) -> str:
        return f"{self.arch}/{self.runner}/{self.precision}/b{self.batch}/{self.tile[0]}x{self.tile[1]}"

    def to_dict(self) -> dict:
        return {**asdict(self), "tile": list(self.tile)}


@dataclass(frozen=True)
class Profile:
    """Which cells to run and how long to time them."""

    name: str
    archs: tuple[str, ...]
    runners: tuple[str, ...]                  # "backend:device"
    precisions: tuple[str, ...] = PRECISIONS
    batches: tuple[int, ...] = (1, 4)
    tiles: tuple[tuple[int, int], ...] = ((640, 480),)
    timing: TimingPolicy = TimingPolicy()
    smear: tuple[int, int] = (1920, 1440)     # the whole-smear image for the end-to-end time
    e2e_runs: int = 2
    smear_overlap: int = 232                  # px, every cell alike so tile counts match: the BCCD model's own
                                              # (99.5th percentile of box sides + 2 px); capped at half the tile
    accuracy_split: str = "val"
    calib_count: int = 64                     # tiles when a calibration set has to be built here
    untrained_calib_limit: int = 16           # untrained models: ranges only shape speed, not accuracy
    cell_timeout_s: float = 600.0
    power: bool = False                       # read tegrastats / jtop while timing (Jetson)
    description: str = ""

    def cells(self) -> list[Cell]:
        """Every cell, in run order: per architecture and tile, runner, precision, then batch size."""
        out = []
        for arch, tile, runner, precision, batch in itertools.product(self.archs, self.tiles, self.runners,
                                                                       self.precisions, self.batches):
            backend, _, device = runner.partition(":")
            out.append(Cell(arch, backend, device or "cpu", precision, int(batch), (int(tile[0]), int(tile[1]))))
        return out

    def with_options(self, **changes) -> "Profile":
        """A copy with some fields replaced (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        data = asdict(self)
        data["timing"] = self.timing.to_dict()
        return data


_CPU_ARCHS = tuple(f"{head}_{LITE0}" for head in ("fcos", "fcos_lite", "retinanet", "ssdlite", "faster_rcnn")) + (
    "fcos_mobilenet_v3_large", "fcos_resnet50")   # fcos_lite: the bundled default's head, dynamic input, scale-aware
_GPU_RUNNERS = ("torch:cuda", "onnxruntime:cuda", "onnxruntime:tensorrt", "tensorrt:cuda")

PROFILES: Registry[Profile] = Registry("benchmark profile")


def register_profile(profile: Profile) -> Profile:
    return PROFILES.add(profile.name, profile)


register_profile(Profile(
    "quick", archs=(f"fcos_{LITE0}",), runners=("onnxruntime:cpu",), precisions=("fp32",), batches=(1, 2),
    tiles=((320, 256),), timing=TimingPolicy(warmup=1, min_iterations=3, min_time_s=0.0, max_time_s=10.0),
    smear=(640, 512), e2e_runs=1, calib_count=8, untrained_calib_limit=4, cell_timeout_s=300.0,
    description="smoke test: one small model, one backend, a few iterations"))
register_profile(Profile(
    "cpu", archs=_CPU_ARCHS, runners=("torch:cpu", "onnxruntime:cpu"),
    timing=TimingPolicy(warmup=2, min_iterations=5, min_time_s=1.5, max_iterations=200, max_time_s=6.0),
    smear=(1280, 960), e2e_runs=1,
    description="every head on EfficientNet-Lite0 (FCOS-Lite at its own working scale) plus FCOS on MobileNetV3-Large "
                "and ResNet-50; torch eager and ONNX Runtime CPU; FP32/FP16/INT8; batch 1 and 4; 640x480 tiles"))
register_profile(Profile(
    "gpu", archs=_CPU_ARCHS, runners=_GPU_RUNNERS + ("onnxruntime:cpu",), batches=(1, 4, 8),
    tiles=((640, 480), (1024, 768)),
    timing=TimingPolicy(warmup=10, warmup_s=1.0, min_iterations=50, min_time_s=3.0, max_iterations=2000, max_time_s=20.0),
    smear=(8192, 8192), e2e_runs=3, calib_count=128,
    description="CUDA machine: torch eager, ONNX Runtime CUDA/TensorRT EPs, TensorRT engines; batch 1/4/8"))
register_profile(Profile(
    "jetson", archs=(f"fcos_lite_{LITE0}", f"fcos_{LITE0}", f"ssdlite_{LITE0}", f"faster_rcnn_{LITE0}", "fcos_mobilenet_v3_large"),
    runners=("tensorrt:cuda", "onnxruntime:cuda", "onnxruntime:cpu"), batches=(1, 4),
    timing=TimingPolicy(warmup=10, warmup_s=2.0, min_iterations=30, min_time_s=5.0, max_iterations=2000, max_time_s=30.0),
    smear=(4096, 3072), e2e_runs=3, power=True, calib_count=128,
    description="Jetson: TensorRT engines and ONNX Runtime; power mode recorded, tegrastats/jtop read while timing"))


def get_profile(name: str) -> Profile:
    return PROFILES.lookup(name)


# --- what this machine can run: asked of the backend classes (bcedge.backends) ------------------------------
def runner_reason(backend: str, device: str) -> str | None:
    """Why ``backend`` on ``device`` cannot run on this machine, or None when it can."""
    try:
        cls = backend_class(backend)
    except ValueError:
        return f"unknown backend {backend!r}"
    return cls.unavailable_reason(device)


def artifact_kind(cell: Cell) -> str | None:
    """The artifact a cell runs ("pt", "onnx:fp16", "engine:int8"), or None when its backend cannot take it."""
    return backend_class(cell.backend).artifact_kind(cell.precision, cell.device)


def precheck(cell: Cell, reasons: dict[str, str | None] | None = None) -> str | None:
    """A status for a cell that cannot run here (``unsupported here: ...``) or None."""
    try:
        cls = backend_class(cell.backend)
    except ValueError:
        return f"{UNSUPPORTED}: unknown backend {cell.backend!r}"
    if cls.artifact_kind(cell.precision, cell.device) is None:
        return f"{UNSUPPORTED}: {cls.precision_reason(cell.precision, cell.device)}"
    reason = reasons[cell.runner] if reasons is not None and cell.runner in reasons else runner_reason(cell.backend, cell.device)
    return f"{UNSUPPORTED}: {reason}" if reason else None


def status_kind(status: str) -> str:
    """"export failed: no ONNX graph" -> "export failed"."""
    return status.split(":", 1)[0].strip()


@dataclass
class CellResult:
    """A cell and what was measured; ``data`` holds the measurements (see ``bcedge.bench.cell``)."""

    cell: Cell
    status: str
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**self.cell.to_dict(), "key": self.cell.key, "status": self.status, **self.data}


def is_two_stage(arch: str) -> bool:
    """From the zoo when torch is importable (its head registry), else from the known two-stage heads."""
    try:
        from bcedge.models import HEADS, split_arch  # noqa: F401  (needs torch)
    except ImportError:
        return arch.startswith(TWO_STAGE_HEADS)
    head, _ = split_arch(arch)
    return HEADS[head].two_stage
