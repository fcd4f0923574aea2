"""What each TensorRT version's builder API allows, in one place, read from NVIDIA's bindings and docs.

Sources: the Python bindings of each release (NVIDIA/TensorRT ``python/src/infer/pyCore.cpp`` at tags
8.5.2, v8.6.1, release/9.0, v10.3.0, v10.13.3, v11.1), the 10.x -> 11.x migration guide, and the
"Version Compatibility" and "DLA" chapters of the developer guide.

* Network creation flags. 8.x: ``EXPLICIT_BATCH`` (bit 0) must be set, or the network is implicit
  batch and the ONNX parser rejects it; there is no strongly typed mode (``STRONGLY_TYPED`` appears in
  9.0). 10.x: networks are always explicit batch (``EXPLICIT_BATCH`` is deprecated and ignored);
  ``STRONGLY_TYPED`` is bit 1. 11.x: ``EXPLICIT_BATCH`` is gone, every network is strongly typed and
  ``STRONGLY_TYPED`` (now bit 0) is deprecated and ignored. So bits are always taken from the enum.
* Builder flags. 11.x removed the weak-typing flags (``FP16``, ``INT8``, ``BF16``, ``FP8``, ``INT4``,
  ``FP4``, ``OBEY/PREFER_PRECISION_CONSTRAINTS``) and the INT8 calibrator API; precision comes from
  the graph (an FP16 ONNX, or Q/DQ nodes for INT8).
* ``VERSION_COMPATIBLE`` exists from 8.6 (engines that later runtimes can run; the runtime needs
  ``engine_host_code_allowed``).
* DLA (Jetson Orin): ``config.default_device_type = DeviceType.DLA``, ``config.DLA_core`` and
  ``BuilderFlag.GPU_FALLBACK``. DLA runs FP16/INT8 layers with static shapes (the profile's MIN = OPT
  = MAX). TensorRT 10.7 was the last 10.x with DLA; 11.0-11.3 have none; 11.4 brings it back for AGX
  Orin on JetPack 7.2.2+. JetPack 5.1.x ships TensorRT 8.5, JetPack 6.0 8.6, JetPack 6.1/6.2 10.3.
"""
from __future__ import annotations

from bcedge.backends.tensorrt import version_tuple

STRONGLY_TYPED_SINCE = (9, 0)
VERSION_COMPATIBLE_SINCE = (8, 6)


def major(version: str) -> int:
    return version_tuple(version)[0]


def network_flags(trt, strongly_typed: bool) -> int:
    """The ``create_network`` flags for this TensorRT (see the module docstring for each version's rule)."""
    version = trt.__version__
    members = trt.NetworkDefinitionCreationFlag
    if major(version) >= 11:
        return 0                                              # strongly typed, always
    if strongly_typed and version_tuple(version)[:2] < STRONGLY_TYPED_SINCE:
        raise ValueError(f"TensorRT {version} has no strongly typed networks (they came in 9.0); build weakly typed")
    flags = (1 << int(members.STRONGLY_TYPED)) if strongly_typed else 0
    if major(version) < 10:
        flags |= 1 << int(members.EXPLICIT_BATCH)             # else implicit batch, which the ONNX parser rejects
    return flags


def builder_flag(trt, name: str):
    """``trt.BuilderFlag.<name>``, or a clear error where this version has no such flag."""
    flag = getattr(trt.BuilderFlag, name, None)
    if flag is None:
        raise RuntimeError(f"TensorRT {trt.__version__} has no BuilderFlag.{name}"
                           + (" (TensorRT 11 builds precision from the graph: an FP16 ONNX, or Q/DQ for INT8)"
                              if name in ("FP16", "INT8") else ""))
    return flag


def check_version_compatible(version: str) -> None:
    if version_tuple(version)[:2] < VERSION_COMPATIBLE_SINCE:
        raise ValueError(f"TensorRT {version} cannot build version-compatible engines (BuilderFlag.VERSION_COMPATIBLE "
                         "came in 8.6); build without --version-compatible and rebuild after upgrading TensorRT")


def dla_supported(version: str) -> bool:
    v = version_tuple(version)[:2]
    return (8, 0) <= v <= (10, 7) or v >= (11, 4)


def check_dla(version: str, precision: str) -> None:
    if not dla_supported(version):
        raise ValueError(f"TensorRT {version} does not support DLA (10.7 was the last 10.x with DLA; 11.0-11.3 have "
                         "none); build for the GPU (no --dla), or use JetPack 6's TensorRT 10.3")
    if precision == "fp32":
        raise ValueError("DLA runs FP16 and INT8 layers only: build with --precision fp16 (or int8) for --dla")
