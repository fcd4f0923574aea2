"""ONNX Runtime: CPU everywhere; CUDA and TensorRT execution providers from the onnxruntime-gpu build.

The CPU build (``onnxruntime``, the ``cpu`` extra) and the GPU build (``onnxruntime-gpu``, the ``gpu``
extra) install the same ``onnxruntime`` module: with both installed, whichever was written last wins
and the CUDA provider may be gone. So a device asked for by name is never downgraded: a missing or
failing provider raises ``BackendUnavailable`` saying which package or library is missing, and ``auto``
says in ``describe()`` what it chose and why.

The TensorRT execution provider gets its precision from the ONNX file (FP16 flags for FP16 files,
INT8 for Q/DQ files, or ``precision="fp16"`` for an FP32 file) and keeps its engines and timing
cache on disk (``engine_cache``, default ``~/.cache/bcedge/ort-tensorrt``), so it builds once, not at
every start.
"""
from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import numpy as np

from bcedge.artifact import INPUT_NAME, OUTPUT_NAMES, ModelMeta, read_onnx_meta
from bcedge.backends.base import (Backend, BackendUnavailable, Package, device_head, gpu_reason, missing_package,
                                  register_backend)

# device name -> execution providers to ask for, best first
PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
BUILDS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino", "onnxruntime-qnn")
_INSTALL_GPU = ("install the GPU build alone: pip uninstall -y onnxruntime && pip install 'bcedge[gpu]' "
                "(on a Jetson: the onnxruntime-gpu wheel for your JetPack from NVIDIA's Jetson index, not PyPI)")
_PROVIDER_HINT = {
    "cuda": _INSTALL_GPU + "; it also needs the CUDA 12 runtime and cuDNN 9 libraries and an NVIDIA driver",
    "tensorrt": _INSTALL_GPU + "; the TensorRT provider also needs TensorRT's libraries "
                               "(pip install tensorrt on a desktop; JetPack provides them on a Jetson)",
}


def installed_builds() -> list[str]:
    """Which ONNX Runtime distributions pip has installed (they all provide the ``onnxruntime`` module)."""
    found = []
    for name in BUILDS:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


def conflict_reason(builds: list[str]) -> str | None:
    """Two builds share one module: the CPU build's files may hide the GPU providers."""
    if len(builds) < 2:
        return None
    return (f"{' and '.join(builds)} are both installed; they share the `onnxruntime` module, so the GPU providers "
            f"can disappear. Keep one: pip uninstall -y {' '.join(builds)} && pip install onnxruntime-gpu")


def provider_reason(device: str, available: list[str], builds: list[str]) -> str | None:
    """Why ``device`` (cpu, cuda, cuda:N, tensorrt) has no provider in this ONNX Runtime, or None."""
    head = device_head(device)
    if head not in PROVIDERS:
        return f"onnxruntime has no device {device!r} (devices: {', '.join(PROVIDERS)})"
    wanted = PROVIDERS[head][0]
    if wanted in available:
        return None
    return conflict_reason(builds) or (f"onnxruntime here ({', '.join(builds) or 'unknown build'}) has no {wanted} "
                                       f"(has {', '.join(available)}): {_PROVIDER_HINT.get(head, '')}")


def cache_dir(options: dict) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bcedge" / "ort-tensorrt"
    return Path(options.get("engine_cache") or base)


def tensorrt_provider_options(file_precision: str, precision: str | None, cache: Path, device_id: int,
                              profile: dict[str, str] | None = None) -> dict:
    """Options for ONNX Runtime's TensorRT provider (names from its documentation, ``trt_*``).

    FP16 kernels for FP16 and Q/DQ files (and an FP32 file asked for ``fp16``); INT8 for Q/DQ files
    (explicit quantization: the scales come from the graph, no calibration table); engine and timing
    caches on disk so a restart reuses the built engine; ``profile`` (``tensorrt_profile``) the shape
    range of the one engine, so tiles of other sizes and short batches do not trigger a rebuild.
    """
    return {"device_id": device_id,
            "trt_fp16_enable": file_precision in ("fp16", "int8") or precision == "fp16",
            "trt_int8_enable": file_precision == "int8",
            "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache), **(profile or {})}


PROFILE_BATCH = (1, 4, 8)      # MIN, OPT, MAX batch of the TensorRT provider's engine (the counter batches 4)
PROFILE_MAX_SIDE = 1024        # the counter's largest automatic tile (runtime.tilesize.MAX_SIDE; backends may not
                               # import the runtime, and Counter.load passes its own max_tile)


def tensorrt_profile(meta: ModelMeta, input_name: str, max_batch: int = PROFILE_BATCH[2],
                     max_side: int = PROFILE_MAX_SIDE) -> dict[str, str]:
    """The provider's explicit optimization profile (``trt_profile_{min,opt,max}_shapes``, "name:BxCxHxW").

    Without one, ONNX Runtime builds an engine for the first shape it sees and rebuilds whenever a
    batch or a tile falls outside it. A fixed-input model spans only the batch; a dynamic-input one
    spans one stride to ``max_side`` in each side, tuned for its default tile.
    """
    width, height = meta.input_size
    low, opt, high = (1, 1), (height, width), (height, width)
    if meta.dynamic_input:
        stride = max(int(meta.stride), 1)
        side = max(stride, max_side // stride * stride, height, width)
        low, high = (stride, stride), (side, side)
    batches = (PROFILE_BATCH[0], min(PROFILE_BATCH[1], max_batch), max(max_batch, 1))
    shapes = [(b, 3, h, w) for b, (h, w) in zip(batches, (low if meta.dynamic_input else opt, opt, high))]
    return {f"trt_profile_{name}_shapes": f"{input_name}:{'x'.join(map(str, shape))}"
            for name, shape in zip(("min", "opt", "max"), shapes)}


def _device_id(device: str) -> int:
    _, _, index = str(device).partition(":")
    if index and not index.isdigit():
        raise ValueError(f"onnxruntime backend: bad device {device!r}; use cpu, cuda, cuda:N or tensorrt")
    return int(index or 0)


@register_backend("onnxruntime")
class OnnxRuntimeBackend(Backend):
    suffixes = (".onnx",)
    devices = tuple(PROVIDERS)
    precisions = ("fp32", "fp16", "int8")
    packages = (Package("onnxruntime", "pip install 'bcedge[cpu]', or 'bcedge[gpu]' on an NVIDIA GPU; not both"),)

    @classmethod
    def unavailable_reason(cls, device: str) -> str | None:
        if (reason := super().unavailable_reason(device)) is not None or device in ("cpu", "auto"):
            return reason
        import onnxruntime

        builds = installed_builds()
        return provider_reason(device, onnxruntime.get_available_providers(), builds) or gpu_reason()

    @classmethod
    def artifact_kind(cls, precision: str, device: str) -> str | None:
        # ONNX Runtime's CPU kernels are fastest with unsigned asymmetric activations (the "cpu" quantization
        # target); the GPU providers take the TensorRT-compatible signed symmetric Q/DQ file
        if precision == "int8" and device == "cpu":
            return "onnx:int8-cpu"
        return super().artifact_kind(precision, device)

    def _load(self) -> ModelMeta:
        if (missing := missing_package(self.packages)) is not None:
            raise BackendUnavailable(missing)
        import onnxruntime as ort

        meta = read_onnx_meta(self.path)
        available, builds = ort.get_available_providers(), installed_builds()
        device = self._resolve(self.device, available, builds)
        if (reason := provider_reason(device, available, builds)) is not None:
            raise BackendUnavailable(f"{self.path.name} on --device {device}: {reason}")
        names = PROVIDERS[device_head(device)]
        wanted = [(name, self._provider_options(name, device, meta)) for name in names if name in available]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if meta.dynamic_input:  # memory patterns plan for one input shape; with tiles of many sizes they only
            options.enable_mem_pattern = False  # add arena blocks (1024x1024 tile: 480 MB peak, 312 without; same speed)
        threads = self.options.get("threads") or int(os.environ.get("BCEDGE_THREADS", "0"))
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.path), options, providers=[n for n, _ in wanted],
                                            provider_options=[o for _, o in wanted])
        self.provider = self.session.get_providers()[0]
        if self.provider != names[0]:  # ONNX Runtime logs a warning and falls back; we refuse instead
            raise BackendUnavailable(f"{self.path.name}: ONNX Runtime could not start {names[0]} and fell back to "
                                     f"{self.provider} (its warning above names the missing library: CUDA runtime, "
                                     f"cuDNN or TensorRT); {_PROVIDER_HINT.get(device_head(device), '')}")
        self.device = device
        self.input_name = self.session.get_inputs()[0].name
        self.input_type = np.float16 if "float16" in self.session.get_inputs()[0].type else np.float32
        return meta

    def _resolve(self, device: str, available: list[str], builds: list[str]) -> str:
        """``auto``: CUDA when this ONNX Runtime has it and a GPU is present, else the CPU, saying why."""
        if device != "auto":
            return device
        reason = provider_reason("cuda", available, builds) or gpu_reason()
        self.choice = "CUDAExecutionProvider available" if reason is None else f"CPU, because {reason}"
        return "cuda" if reason is None else "cpu"

    def _provider_options(self, provider: str, device: str, meta: ModelMeta) -> dict:
        if provider == "CUDAExecutionProvider":
            return {"device_id": _device_id(device)}
        if provider == "TensorrtExecutionProvider":
            cache = cache_dir(self.options)
            cache.mkdir(parents=True, exist_ok=True)
            profile = tensorrt_profile(meta, INPUT_NAME, int(self.options.get("max_batch") or PROFILE_BATCH[2]),
                                       int(self.options.get("max_tile") or PROFILE_MAX_SIDE))
            return tensorrt_provider_options(meta.precision, self.options.get("precision"), cache, _device_id(device),
                                             profile)
        return {}

    def _infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = self.session.run(list(OUTPUT_NAMES), {self.input_name: batch.astype(self.input_type, copy=False)})
        return boxes.astype(np.float32, copy=False), scores.astype(np.float32, copy=False)

    def describe(self) -> str:
        return f"onnxruntime {self.provider} ({self.precision}){self._choice_note()}"
