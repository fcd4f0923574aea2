"""ONNX -> TensorRT engine (a bcedge engine file: metadata header + serialized engine).

Two build paths, chosen by ``plan_build`` from the TensorRT version and the ONNX file's precision:

* TensorRT 8.6 / 10.x (JetPack 5 / 6), weakly typed: network from the ONNX parser, builder flags for
  FP16 and INT8; implicit INT8 calibrates with an entropy or min-max calibrator over a calibration set,
  and the calibration cache is reused on rebuild. A Q/DQ ONNX (``bcedge quantize``) builds with the INT8
  flag and no calibrator (explicit quantization).
* TensorRT 11 (and FP16 / Q/DQ ONNX files on 10.x): strongly typed network, precision comes from the
  ONNX. An FP32 ONNX asked for FP16 is converted first with ``onnx2fp16`` (sensitive ops kept FP32);
  INT8 needs a Q/DQ ONNX.

Both use one optimization profile over the batch (MIN, OPT, MAX) and, for a dynamic-input ONNX, over
the input size; a workspace limit and a timing cache. ``--dla N`` (Jetson) puts the layers DLA can run
on DLA core N with GPU fallback, and ``--version-compatible`` (8.6+) builds an engine later TensorRT
versions can run; both are recorded in the engine header. What each TensorRT version allows (network
flags, builder flags, DLA) is in ``trt_rules``. The TensorRT calls are confined to ``_build`` and
``make_calibrator``; the rest is plain logic.
"""
from __future__ import annotations

import hashlib
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from bcedge.artifact import read_onnx_meta, write_engine
from bcedge.atomic import atomic_write_bytes
from bcedge.backends.tensorrt import INPUT, Cuda, import_tensorrt
from bcedge.convert import graph, trt_rules
from bcedge.convert.calibration import CalibrationSet

PRECISIONS = ("fp32", "fp16", "int8")
CALIBRATORS = ("entropy", "minmax")


@dataclass
class EngineOptions:
    precision: str = "fp16"
    batch: tuple[int, int, int] = (1, 4, 8)          # MIN, OPT, MAX of the optimization profile
    workspace_mb: int = 1024
    calib: str | Path | None = None                  # calibration set folder (implicit INT8)
    calib_cache: str | Path | None = None            # default: beside the engine, keyed by model and set
    calibrator: str = "entropy"
    calib_batch: int = 8
    timing_cache: str | Path | None = None           # default: beside the engine
    strongly_typed: bool | None = None               # None: decided by plan_build
    input_sizes: tuple | None = None                 # ((w, h) MIN, OPT, MAX) for a dynamic-input ONNX
    dla_core: int | None = None                      # Jetson: run on this DLA core, GPU fallback
    version_compatible: bool = False                 # TensorRT 8.6+: later TensorRT versions can run it

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose from {', '.join(PRECISIONS)}")
        if self.calibrator not in CALIBRATORS:
            raise ValueError(f"unknown calibrator {self.calibrator!r}; choose from {', '.join(CALIBRATORS)}")
        self.batch = check_batch(self.batch)
        if self.workspace_mb <= 0:
            raise ValueError(f"workspace must be a positive number of MB, got {self.workspace_mb}")
        if self.calib_batch <= 0:
            raise ValueError(f"calibration batch must be positive, got {self.calib_batch}")
        if self.dla_core is not None and int(self.dla_core) < 0:
            raise ValueError(f"DLA core must be 0 or more, got {self.dla_core}")


def check_batch(batch) -> tuple[int, int, int]:
    low, opt, high = (int(v) for v in batch)
    if not 1 <= low <= opt <= high:
        raise ValueError(f"batch profile must satisfy 1 <= MIN <= OPT <= MAX, got {low},{opt},{high}")
    return low, opt, high


def parse_batch(text: str) -> tuple[int, int, int]:
    """"1,4,8" -> (1, 4, 8); "8" -> (1, 8, 8): a fixed maximum with the optimum at it."""
    try:
        values = [int(v) for v in str(text).split(",")]
    except ValueError:
        raise ValueError(f"batch must be MIN,OPT,MAX or MAX (integers), got {text!r}") from None
    if len(values) == 1:
        values = [1, values[0], values[0]]
    if len(values) != 3:
        raise ValueError(f"batch must be MIN,OPT,MAX or MAX, got {text!r}")
    return check_batch(values)


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """"320x320,640x480,1280x960" -> ((320, 320), (640, 480), (1280, 960)): the input-size profile MIN, OPT, MAX."""
    try:
        sizes = tuple(tuple(int(v) for v in part.lower().split("x")) for part in str(text).split(","))
    except ValueError:
        raise ValueError(f"input sizes must be WxH,WxH,WxH (MIN,OPT,MAX), got {text!r}") from None
    if len(sizes) != 3 or any(len(size) != 2 for size in sizes):
        raise ValueError(f"input sizes must be WxH,WxH,WxH (MIN,OPT,MAX), got {text!r}")
    return sizes


def input_profile(meta, sizes=None, fixed: bool = False) -> tuple[tuple[int, int], ...]:
    """(MIN, OPT, MAX) input sizes (width, height) of the engine's profile.

    A fixed-input ONNX has one size. A dynamic-input one defaults to half to twice its default tile
    (multiples of its stride); ``fixed`` (DLA) pins it to the default tile.
    """
    tile = tuple(meta.input_size)
    if not meta.dynamic_input or fixed:
        if sizes is not None and any(tuple(s) != tile for s in sizes):
            why = "DLA has no dynamic shapes" if fixed and meta.dynamic_input else "this ONNX has a fixed input size"
            raise ValueError(f"--input-sizes: {why}; the engine takes {tile[0]}x{tile[1]}")
        return (tile, tile, tile)
    stride = max(int(meta.stride), 1)

    def snap(value: float) -> int:
        return max(stride, int(round(value / stride)) * stride)

    sizes = sizes or ((snap(tile[0] / 2), snap(tile[1] / 2)), tile, (snap(tile[0] * 2), snap(tile[1] * 2)))
    sizes = tuple((int(w), int(h)) for w, h in sizes)
    if any(w % stride or h % stride for w, h in sizes):
        raise ValueError(f"--input-sizes must be multiples of the model's stride {stride}, got {sizes}")
    if not all(sizes[0][i] <= sizes[1][i] <= sizes[2][i] for i in (0, 1)):
        raise ValueError(f"--input-sizes must satisfy MIN <= OPT <= MAX in width and height, got {sizes}")
    return sizes


@dataclass(frozen=True)
class BuildPlan:
    strongly_typed: bool
    flags: tuple[str, ...] = ()          # trt.BuilderFlag names
    calibrate: bool = False              # implicit INT8 with a calibrator
    convert_fp16: bool = False           # run onnx2fp16 before parsing
    notes: tuple[str, ...] = field(default=())


def plan_build(tensorrt_version: str, onnx_precision: str, options: EngineOptions) -> BuildPlan:
    """Which path builds ``options.precision`` from an ONNX of ``onnx_precision`` on this TensorRT."""
    major = int(str(tensorrt_version).split(".")[0])
    want = options.precision
    typed = options.strongly_typed
    if onnx_precision in ("fp16", "int8"):
        if want != onnx_precision:
            raise ValueError(f"the ONNX file is {onnx_precision}; build it with --precision {onnx_precision} "
                             "(start from the fp32 export for another precision)")
        notes = ("the calibration set is not used: the Q/DQ graph carries its scales",) if options.calib else ()
        # Q/DQ on 8.6 / 10.x: the classic explicit-quantization build (INT8 flag, FP16 for the rest);
        # an FP16 graph on 10.x: strongly typed, so its FP32 islands stay FP32.
        weak_ok = major < 11 and typed is not True and (onnx_precision == "int8" or major < 10 or typed is False)
        if not weak_ok:
            return BuildPlan(True, notes=notes)
        flags = ("INT8", "FP16") if onnx_precision == "int8" else ("FP16",)
        return BuildPlan(False, flags, notes=notes)
    if want == "fp32":
        return BuildPlan(major >= 11 or bool(typed))
    if want == "fp16":
        if major >= 11 or typed:
            return BuildPlan(True, convert_fp16=True, notes=("converted to FP16 with onnx2fp16 (strongly typed build)",))
        return BuildPlan(False, ("FP16",))
    if major >= 11 or typed:
        raise ValueError(f"TensorRT {tensorrt_version} has no implicit INT8 calibration for strongly typed networks: "
                         "quantize first (`bcedge quantize model.onnx --calib DIR`) and build the Q/DQ file")
    if not options.calib and not (options.calib_cache and Path(options.calib_cache).is_file()):
        raise ValueError("implicit INT8 needs a calibration set (--calib DIR) or an existing --calib-cache")
    return BuildPlan(False, ("INT8", "FP16"), calibrate=True)


def with_targets(plan: BuildPlan, tensorrt_version: str, options: EngineOptions) -> BuildPlan:
    """Add what the target asks for: DLA with GPU fallback, version compatibility (checked per version)."""
    flags, notes = list(plan.flags), list(plan.notes)
    if options.version_compatible:
        trt_rules.check_version_compatible(tensorrt_version)
        flags.append("VERSION_COMPATIBLE")
    if options.dla_core is not None:
        trt_rules.check_dla(tensorrt_version, options.precision)
        flags.append("GPU_FALLBACK")
        notes.append(f"DLA core {options.dla_core} with GPU fallback; fixed shapes (DLA has no dynamic shapes)")
    return BuildPlan(plan.strongly_typed, tuple(flags), plan.calibrate, plan.convert_fp16, tuple(notes))


def check_quantization_target(meta, source: str) -> None:
    """A Q/DQ file made for ONNX Runtime's CPU kernels (unsigned, asymmetric) cannot become an engine."""
    steps = [step for step in meta.recipe.get("convert", []) if step.get("step") == "quantize"]
    if steps and steps[-1].get("target", "tensorrt") != "tensorrt":
        raise ValueError(f"{source}: was quantized for target {steps[-1]['target']!r} (asymmetric activations), which "
                         "TensorRT cannot build; quantize the FP32 export again with --target tensorrt")


def default_cache_paths(onnx_path: Path, out: Path, calib: CalibrationSet | None, options: EngineOptions) -> tuple[Path, Path]:
    """(calibration cache, timing cache): beside the engine; the calibration cache is named after the
    model's and the set's hashes, so a changed model or set never reuses a stale cache."""
    model_hash = hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:12]
    set_hash = calib.manifest["tiles_sha256"][:12] if calib else "noset"
    calib_cache = Path(options.calib_cache) if options.calib_cache else \
        out.with_name(f"{onnx_path.stem}.{model_hash}.{set_hash}.{options.calibrator}.calib")
    timing = Path(options.timing_cache) if options.timing_cache else out.with_name("timing.cache")
    return calib_cache, timing


class CalibrationFeed:
    """The calibrator's logic without TensorRT: full batches from a set into one device buffer, and the cache.

    ``upload(batch) -> device pointer`` copies a float32 batch to the device. TensorRT calls
    ``get_batch`` until it returns None; a last partial batch is dropped (the calibrator's batch size is fixed).
    """

    def __init__(self, calib: CalibrationSet | None, batch_size: int, cache_path: Path,
                 upload: Callable[[np.ndarray], int]) -> None:
        self.batch_size = batch_size
        self.cache_path = Path(cache_path)
        self.upload = upload
        self._batches = iter(calib.batches(batch_size)) if calib is not None else iter(())
        self.served = 0

    def get_batch(self, names: list[str]) -> list[int] | None:
        for batch in self._batches:
            if len(batch) == self.batch_size:
                self.served += 1
                return [int(self.upload(batch))]
        return None

    def read_cache(self) -> bytes | None:
        return self.cache_path.read_bytes() if self.cache_path.is_file() else None

    def write_cache(self, cache) -> None:
        atomic_write_bytes(self.cache_path, bytes(cache))


def make_calibrator(trt, kind: str, feed: CalibrationFeed):
    """A TensorRT IInt8EntropyCalibrator2 / IInt8MinMaxCalibrator delegating to ``feed``."""
    base = {"entropy": trt.IInt8EntropyCalibrator2, "minmax": trt.IInt8MinMaxCalibrator}[kind]

    class Calibrator(base):
        def __init__(self) -> None:
            base.__init__(self)

        def get_batch_size(self) -> int:
            return feed.batch_size

        def get_batch(self, names):
            return feed.get_batch(names)

        def read_calibration_cache(self):
            return feed.read_cache()

        def write_calibration_cache(self, cache) -> None:
            feed.write_cache(cache)

    return Calibrator()


def cuda_upload(cuda: Cuda, nbytes: int) -> Callable[[np.ndarray], int]:
    """An ``upload`` for CalibrationFeed: one device buffer, filled synchronously."""
    pointer, stream = cuda.malloc(nbytes), cuda.stream()

    def upload(batch: np.ndarray) -> int:
        cuda.to_device(pointer, np.ascontiguousarray(batch, dtype=np.float32), stream)
        cuda.sync(stream)
        return pointer

    return upload


def onnx2engine(onnx_path: str | Path, out: str | Path, options: EngineOptions | None = None) -> Path:
    """Build a bcedge engine from a bcedge ONNX file; returns the path written."""
    options = options or EngineOptions()
    onnx_path, out = Path(onnx_path), Path(out)
    meta = read_onnx_meta(onnx_path)
    check_quantization_target(meta, str(onnx_path))
    if meta.precision == "int8":  # what TensorRT's parser would refuse, said before TensorRT is even loaded
        from bcedge.convert.qdq_check import check_tensorrt_qdq

        check_tensorrt_qdq(onnx_path)
    trt = import_tensorrt()
    plan = with_targets(plan_build(trt.__version__, meta.precision, options), trt.__version__, options)
    batch = (options.batch[1],) * 3 if options.dla_core is not None else options.batch
    sizes = input_profile(meta, options.input_sizes, fixed=options.dla_core is not None)
    calib = None
    if plan.calibrate and options.calib:
        calib = CalibrationSet.load(options.calib)
        calib.check_model(meta.input_size, str(onnx_path))
    calib_cache, timing_cache = default_cache_paths(onnx_path, out, calib, options)
    with tempfile.TemporaryDirectory(prefix="bcedge-engine-") as tmp:
        source = onnx_path
        if plan.convert_fp16:
            from bcedge.convert.onnx2fp16 import onnx2fp16

            source = onnx2fp16(onnx_path, Path(tmp) / "model.fp16.onnx")
        cuda = Cuda()
        feed = None
        if plan.calibrate:
            width, height = meta.input_size
            upload = cuda_upload(cuda, options.calib_batch * 3 * height * width * 4) if calib else (lambda b: 0)
            feed = CalibrationFeed(calib, options.calib_batch, calib_cache, upload)
        engine = _build(trt, source, ShapeProfile(batch, sizes), plan, options, timing_cache, feed)
    meta.precision = options.precision
    graph.record_step(meta, "onnx2engine", tensorrt=trt.__version__, strongly_typed=plan.strongly_typed,
                      flags=list(plan.flags), batch=list(batch), workspace_mb=options.workspace_mb,
                      dla_core=options.dla_core)
    header = {"meta": asdict(meta), "tensorrt": trt.__version__, "device": cuda.device(),
              "precision": options.precision, "batch": list(batch), "input_sizes": [list(s) for s in sizes],
              "strongly_typed": plan.strongly_typed, "flags": list(plan.flags), "notes": list(plan.notes),
              "dla_core": options.dla_core, "gpu_fallback": options.dla_core is not None,
              "version_compatible": options.version_compatible,
              "onnx_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
              "calibration": ({"cache": calib_cache.name, "calibrator": options.calibrator,
                               "set_sha256": calib.manifest["tiles_sha256"] if calib else None} if plan.calibrate else None)}
    return write_engine(out, header, engine)


@dataclass(frozen=True)
class ShapeProfile:
    batch: tuple[int, int, int]                       # MIN, OPT, MAX
    sizes: tuple[tuple[int, int], ...]                # (width, height) MIN, OPT, MAX

    def shapes(self) -> list[tuple[int, int, int, int]]:
        return [(b, 3, h, w) for b, (w, h) in zip(self.batch, self.sizes)]


def _build(trt, onnx_path: Path, profile_shape: ShapeProfile, plan: BuildPlan, options: EngineOptions,
           timing_cache: Path, feed: CalibrationFeed | None) -> bytes:
    """The TensorRT part: parse, configure, build, keep the timing cache."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(trt_rules.network_flags(trt, plan.strongly_typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path}: TensorRT's ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    for flag in plan.flags:
        config.set_flag(trt_rules.builder_flag(trt, flag))
    if options.dla_core is not None:
        cores = int(builder.num_DLA_cores)
        if options.dla_core >= cores:
            raise ValueError(f"--dla {options.dla_core}: this device has {cores} DLA core(s)"
                             + (" (DLA is on Jetson AGX/NX Orin and Xavier)" if cores == 0 else ""))
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(options.dla_core)
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT, *profile_shape.shapes())
    config.add_optimization_profile(profile)
    if feed is not None:  # calibration runs at the calibrator's fixed batch size, on the default tile
        (width, height) = profile_shape.sizes[1]
        calib_profile = builder.create_optimization_profile()
        calib_profile.set_shape(INPUT, *[(feed.batch_size, 3, height, width)] * 3)
        config.set_calibration_profile(calib_profile)
        config.int8_calibrator = make_calibrator(trt, options.calibrator, feed)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=True)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"{onnx_path}: TensorRT could not build the engine (see its log above)")
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)
