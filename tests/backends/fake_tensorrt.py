"""A test double of the ``tensorrt`` Python module that enforces each version's API rules, for CI without TensorRT.

It checks how bcedge *calls* TensorRT, never what TensorRT computes: the "plan" it serializes is a
JSON record of the build (flags, profile, device), and nothing here produces a latency, an accuracy
or a detection. The rules, per version, are read from NVIDIA's Python bindings (NVIDIA/TensorRT
``python/src/infer/pyCore.cpp`` and ``include/NvInfer.h`` at tags 8.5.2, v10.3.0, v10.13.3, v11.1)
and documentation:

* which ``NetworkDefinitionCreationFlag`` and ``BuilderFlag`` members exist, with their values (they
  move: ``STRONGLY_TYPED`` is bit 1 in 10.x and bit 0 in 11.x; ``VERSION_COMPATIBLE`` is 13 then 12);
* before 10, the ONNX parser refuses a network created without ``EXPLICIT_BATCH``; from 11 every
  network is strongly typed; the INT8 calibrator API exists up to 10.x only;
* the parser refuses a ``DequantizeLinear`` of a non-INT8 constant ("only activation types allowed
  as input to this layer", onnx/onnx-tensorrt#850) and non-zero zero points;
* ``engine_host_code_allowed`` exists from 8.6; a plan deserializes only on the TensorRT version that
  built it, unless built ``VERSION_COMPATIBLE`` (runtime same major and not older, or 8 -> 10, 10 -> 11)
  and the runtime allows host code;
* DLA: ``DLA_core`` below ``num_DLA_cores``; fixed shapes (MIN = OPT = MAX); releases without DLA
  report no cores.

``install(monkeypatch, version)`` puts a fresh module into ``sys.modules["tensorrt"]``; ``module.calls``
records what was called.
"""
from __future__ import annotations

import enum
import json
import sys
import types
from dataclasses import dataclass, field

import numpy as np

_DEPRECATED_WEAK = ("FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS")


@dataclass(frozen=True)
class Rules:
    network_flags: dict[str, int]
    builder_flags: dict[str, int]
    calibrators: bool = True            # IInt8*Calibrator, config.int8_calibrator, set_calibration_profile
    host_code_switch: bool = True       # Runtime.engine_host_code_allowed (8.6+)
    dla_cores: int = 2                  # what a Jetson AGX Orin reports where the release has DLA
    deprecated: tuple[str, ...] = field(default=())


_FLAGS_8_5 = ["FP16", "INT8", "DEBUG", "GPU_FALLBACK", "STRICT_TYPES", "REFIT", "DISABLE_TIMING_CACHE", "TF32",
              "SPARSE_WEIGHTS", "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
              "DIRECT_IO", "REJECT_EMPTY_ALGORITHMS", "ENABLE_TACTIC_HEURISTIC"]
_FLAGS_10_3 = ["FP16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS",
               "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO",
               "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8",
               "ERROR_ON_TIMING_CACHE_MISS", "BF16", "DISABLE_COMPILATION_CACHE", "STRIP_PLAN", "REFIT_IDENTICAL",
               "WEIGHT_STREAMING", "INT4", "REFIT_INDIVIDUAL"]
_FLAGS_10_13 = _FLAGS_10_3 + ["STRICT_NANS", "MONITOR_MEMORY", "FP4", "EDITABLE_TIMING_CACHE", "DISTRIBUTIVE_INDEPENDENCE"]
_FLAGS_11_1 = {"DEBUG": 2, "GPU_FALLBACK": 3, "REFIT": 4, "DISABLE_TIMING_CACHE": 5, "TF32": 6, "SPARSE_WEIGHTS": 7,
               "SAFETY_SCOPE": 8, "DIRECT_IO": 11, "VERSION_COMPATIBLE": 12, "EXCLUDE_LEAN_RUNTIME": 13,
               "ERROR_ON_TIMING_CACHE_MISS": 15, "DISABLE_COMPILATION_CACHE": 17, "STRIP_PLAN": 18,
               "REFIT_IDENTICAL": 19, "WEIGHT_STREAMING": 20, "REFIT_INDIVIDUAL": 22, "STRICT_NANS": 23,
               "MONITOR_MEMORY": 24, "EDITABLE_TIMING_CACHE": 26, "DISTRIBUTIVE_INDEPENDENCE": 27}

VERSIONS: dict[str, Rules] = {
    "8.5.2": Rules({"EXPLICIT_BATCH": 0, "EXPLICIT_PRECISION": 1}, {n: i for i, n in enumerate(_FLAGS_8_5)},
                   host_code_switch=False),                                          # JetPack 5.1.x
    "10.3.0": Rules({"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1},
                    {n: i for i, n in enumerate(_FLAGS_10_3)}, deprecated=("EXPLICIT_BATCH",)),   # JetPack 6.1/6.2
    "10.13.3": Rules({"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1, "PREFER_JIT_PYTHON_PLUGINS": 2,
                      "PREFER_AOT_PYTHON_PLUGINS": 3}, {n: i for i, n in enumerate(_FLAGS_10_13)}, dla_cores=0,
                     deprecated=("EXPLICIT_BATCH",) + _DEPRECATED_WEAK),            # desktop 10.x, no DLA after 10.7
    "11.1.0": Rules({"STRONGLY_TYPED": 0, "PREFER_JIT_PYTHON_PLUGINS": 1, "PREFER_AOT_PYTHON_PLUGINS": 2},
                    _FLAGS_11_1, calibrators=False, dla_cores=0, deprecated=("STRONGLY_TYPED",)),
}


def _major(version: str) -> int:
    return int(version.split(".")[0])


def _runs(built: str, running: str) -> bool:
    b, r = tuple(int(v) for v in built.split(".")[:2]), tuple(int(v) for v in running.split(".")[:2])
    return b >= (8, 6) and r >= b and (r[0] == b[0] or (b[0], r[0]) in {(8, 9), (8, 10), (10, 11)})


def make(version: str, dla_cores: int | None = None) -> types.ModuleType:
    """A fresh fake ``tensorrt`` module for ``version`` (one of ``VERSIONS``)."""
    rules = VERSIONS[version]
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.calls = []
    trt.warnings = []
    cores = rules.dla_cores if dla_cores is None else dla_cores
    trt.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", rules.network_flags)
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", rules.builder_flags)
    trt.MemoryPoolType = enum.IntEnum("MemoryPoolType", {"WORKSPACE": 0})
    trt.DeviceType = enum.IntEnum("DeviceType", {"GPU": 0, "DLA": 1})
    trt.DataType = enum.IntEnum("DataType", {"FLOAT": 0, "HALF": 1, "INT8": 2})
    trt.nptype = lambda dtype: {0: np.float32, 1: np.float16, 2: np.int8}[int(dtype)]

    def call(name, **details):
        trt.calls.append((name, details))

    class Logger:
        WARNING = 2

        def __init__(self, severity=2):
            self.severity = severity

    class Network:
        def __init__(self, flags: int):
            known = 0
            for member in trt.NetworkDefinitionCreationFlag:
                known |= 1 << int(member)
                if flags & (1 << int(member)) and member.name in rules.deprecated:
                    trt.warnings.append(f"NetworkDefinitionCreationFlag.{member.name} is deprecated")
            if flags & ~known:
                raise TypeError(f"create_network: flag bits {flags & ~known:#x} are not NetworkDefinitionCreationFlags "
                                f"of TensorRT {version}")
            names = {m.name for m in trt.NetworkDefinitionCreationFlag if flags & (1 << int(m))}
            self.explicit_batch = _major(version) >= 10 or "EXPLICIT_BATCH" in names
            self.strongly_typed = _major(version) >= 11 or "STRONGLY_TYPED" in names
            self.inputs: dict[str, list[int]] = {}
            self.parsed = False

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.errors = network, []

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, index):
            return self.errors[index]

        def parse_from_file(self, path) -> bool:
            import onnx
            from onnx import numpy_helper

            call("parse", path=str(path))
            if not self.network.explicit_batch:
                self.errors.append("the ONNX parser requires an explicit batch network (create_network without "
                                   "NetworkDefinitionCreationFlag.EXPLICIT_BATCH makes an implicit batch one)")
                return False
            model = onnx.load(str(path))
            consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
            for node in model.graph.node:
                if node.op_type == "DequantizeLinear" and node.input[0] in consts and consts[node.input[0]].dtype != np.int8:
                    self.errors.append(f"{node.name}: only activation types allowed as input to this layer.")
                if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2 \
                        and node.input[2] in consts and np.any(consts[node.input[2]]):
                    self.errors.append(f"{node.name}: Assertion failed: zero point must be zero")
            for value in model.graph.input:
                dims = [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]
                self.network.inputs[value.name] = dims
            self.network.parsed = not self.errors
            return not self.errors

    class OptimizationProfile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, low, opt, high):
            if not all(a <= b <= c for a, b, c in zip(low, opt, high)):
                raise ValueError(f"profile for {name}: MIN <= OPT <= MAX fails for {low}, {opt}, {high}")
            self.shapes[name] = (tuple(low), tuple(opt), tuple(high))

    class TimingCache:
        def __init__(self, data=b""):
            self.data = bytes(data) or b"fake-timing-cache"

        def serialize(self):
            return self.data

    class Config:
        def __init__(self):
            self.flags, self.profiles, self.pool = set(), [], {}
            self.default_device_type, self.DLA_core = trt.DeviceType.GPU, -1
            self.cache = None

        def set_memory_pool_limit(self, pool, size):
            self.pool[pool] = size

        def set_flag(self, flag):
            if not isinstance(flag, trt.BuilderFlag):
                raise TypeError(f"set_flag: {flag!r} is not a BuilderFlag of TensorRT {version}")
            if flag.name in rules.deprecated:
                trt.warnings.append(f"BuilderFlag.{flag.name} is deprecated")
            self.flags.add(flag.name)
            call("set_flag", flag=flag.name)

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, data):
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

    if rules.calibrators:
        class _Calibrator:
            def __init__(self):
                pass

        trt.IInt8EntropyCalibrator2 = type("IInt8EntropyCalibrator2", (_Calibrator,), {})
        trt.IInt8MinMaxCalibrator = type("IInt8MinMaxCalibrator", (_Calibrator,), {})
        Config.int8_calibrator = None
        Config.set_calibration_profile = lambda self, profile: setattr(self, "calibration_profile", profile)

    class Builder:
        num_DLA_cores = cores

        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags=0):
            call("create_network", flags=int(flags))
            return Network(int(flags))

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return OptimizationProfile()

        def build_serialized_network(self, network, config):
            if not network.parsed:
                raise RuntimeError("build_serialized_network: the network was never parsed")
            if not config.profiles:
                raise RuntimeError("build_serialized_network: dynamic inputs need an optimization profile")
            shapes = config.profiles[0].shapes
            dla = config.default_device_type == trt.DeviceType.DLA
            if dla and not 0 <= config.DLA_core < cores:
                raise RuntimeError(f"DLA core {config.DLA_core} does not exist ({cores} cores)")
            if dla and any(low != high for low, _, high in shapes.values()):
                raise RuntimeError("DLA does not support dynamic shapes: the profile's MIN, OPT and MAX must be equal")
            record = {"version": version, "flags": sorted(config.flags), "strongly_typed": network.strongly_typed,
                      "shapes": {k: [list(s) for s in v] for k, v in shapes.items()},
                      "dla_core": config.DLA_core if dla else None,
                      "calibrator": type(getattr(config, "int8_calibrator", None)).__name__}
            call("build", **record)
            return b"FAKE-TRT-PLAN " + json.dumps(record).encode()

    class Engine:
        def __init__(self, record):
            self.record = record
            self.num_io_tensors = 3

        def create_execution_context(self):
            return types.SimpleNamespace()

        def get_tensor_name(self, index):
            return ("images", "boxes", "scores")[index]

        def get_tensor_profile_shape(self, name, profile):
            return self.record["shapes"][name]

        def get_tensor_dtype(self, name):
            return trt.DataType.FLOAT

    class Runtime:
        __slots__ = ("logger", "DLA_core", "_host_code") + (("engine_host_code_allowed",) if rules.host_code_switch else ())
        num_DLA_cores = cores

        def __init__(self, logger):
            self.logger, self.DLA_core = logger, -1
            if rules.host_code_switch:
                self.engine_host_code_allowed = False

        def deserialize_cuda_engine(self, blob):
            if not bytes(blob).startswith(b"FAKE-TRT-PLAN "):
                return None
            record = json.loads(bytes(blob)[len(b"FAKE-TRT-PLAN "):])
            compatible = "VERSION_COMPATIBLE" in record["flags"] and _runs(record["version"], version) \
                and getattr(self, "engine_host_code_allowed", False)
            if record["version"] != version and not compatible:
                trt.warnings.append(f"plan built with TensorRT {record['version']} cannot run on {version}")
                return None
            if record["dla_core"] is not None and self.DLA_core != record["dla_core"]:
                trt.warnings.append(f"the plan needs DLA core {record['dla_core']}, the runtime is set to {self.DLA_core}")
                return None
            call("deserialize", built=record["version"], dla_core=self.DLA_core)
            return Engine(record)

    trt.Logger, trt.Builder, trt.OnnxParser, trt.Runtime = Logger, Builder, OnnxParser, Runtime
    return trt


def install(monkeypatch, version: str, dla_cores: int | None = None) -> types.ModuleType:
    """Put a fake ``tensorrt`` of ``version`` into ``sys.modules`` for this test."""
    trt = make(version, dla_cores)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt
