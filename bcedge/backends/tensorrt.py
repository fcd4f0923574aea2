"""TensorRT engines: the runner of bcedge engine files, and the checks that say when an engine cannot run here.

The file format (a JSON header before the serialized engine) lives in ``bcedge.artifact``. The header
says what the engine is tied to: the TensorRT version and GPU it was built with, its precision, batch
and input-size profile, the DLA core (Jetson) and whether it was built version-compatible.
``check_header`` compares that with this machine before TensorRT deserializes anything, and says
plainly to rebuild instead of TensorRT's deserialization error.

Version compatibility (TensorRT docs, "Version Compatibility"; 11.x support matrix): an engine built
with ``BuilderFlag.VERSION_COMPATIBLE`` on TensorRT >= 8.6 runs on the same or a later TensorRT of the
same major, and across majors only 8 -> 9/10 and 10 -> 11; it carries its own lean runtime, so the
runtime must allow engine host code (``engine_host_code_allowed``): load only engines you built.

Inference binds device buffers with ``set_tensor_address`` and runs ``execute_async_v3`` on a CUDA
stream (TensorRT >= 8.5); memory comes from cuda-python (``cuda.bindings.runtime``), so neither torch
nor pycuda is needed. For a dynamic-input engine the input shape is set per batch.
"""
from __future__ import annotations

import numpy as np

from bcedge.artifact import INPUT_NAME, OUTPUT_NAMES, ArtifactError, ModelMeta, read_engine
from bcedge.backends.base import Backend, BackendUnavailable, Package, gpu_reason, register_backend

INPUT, OUTPUTS = INPUT_NAME, OUTPUT_NAMES
INSTALL_TENSORRT = ("pip install tensorrt (the `trt` extra) on a desktop; on a Jetson TensorRT comes with JetPack "
                    "(apt install python3-libnvinfer), not from PyPI")
# (built major, running major) pairs a version-compatible engine crosses (TensorRT docs, see module docstring)
CROSS_MAJOR = {(8, 9), (8, 10), (10, 11)}


def version_tuple(version: str) -> tuple[int, ...]:
    """"10.3.0.26" -> (10, 3, 0, 26); non-numeric parts end it."""
    parts = []
    for part in str(version).split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts) or (0,)


def runs_version_compatible(built: str, running: str) -> bool:
    """Whether a version-compatible engine built with TensorRT ``built`` runs on TensorRT ``running``."""
    b, r = version_tuple(built)[:2], version_tuple(running)[:2]
    if b < (8, 6) or r < b:
        return False
    return r[0] == b[0] or (b[0], r[0]) in CROSS_MAJOR


def check_header(header: dict, source: str, tensorrt_version: str, device: dict) -> list[str]:
    """Raise ArtifactError when the engine cannot run here; return warnings for mismatches that may work.

    Engines are tied to the TensorRT version (unless built version-compatible) and to the GPU's
    compute capability they were built for.
    """
    warnings = []
    built = header.get("tensorrt", "?")
    if built != tensorrt_version:
        if not header.get("version_compatible"):
            raise ArtifactError(f"{source}: built with TensorRT {built}, this machine has TensorRT {tensorrt_version}; "
                                "rebuild the engine here with `bcedge build-engine` from the ONNX file (or build it "
                                "with --version-compatible on TensorRT 8.6+ to run on later TensorRT versions)")
        if not runs_version_compatible(built, tensorrt_version):
            raise ArtifactError(f"{source}: built version-compatible with TensorRT {built}, which TensorRT {tensorrt_version} "
                                "cannot run (such engines run on the same or a later TensorRT of the same major, or "
                                "8.x -> 10.x, 10.x -> 11.x); rebuild the engine here with `bcedge build-engine`")
        warnings.append(f"{source}: built version-compatible with TensorRT {built}, running on {tensorrt_version}")
    want = header.get("device", {})
    if want.get("compute_capability") != device.get("compute_capability"):
        raise ArtifactError(f"{source}: built for {want.get('name', '?')} (compute capability {want.get('compute_capability', '?')}), "
                            f"this GPU is {device.get('name', '?')} (compute capability {device.get('compute_capability', '?')}); "
                            "rebuild the engine on this device")
    if want.get("name") != device.get("name"):
        warnings.append(f"{source}: built on {want.get('name')}, running on {device.get('name')} (same compute capability)")
    return warnings


def check_dla(header: dict, source: str, cores_here: int) -> int | None:
    """The DLA core an engine was built for, checked against the cores this device has (None: GPU only)."""
    core = header.get("dla_core")
    if core is None:
        return None
    if int(core) >= cores_here:
        raise ArtifactError(f"{source}: built for DLA core {core}, this device has {cores_here} DLA core(s); "
                            "rebuild with `bcedge build-engine --dla N` for one it has, or without --dla for the GPU")
    return int(core)


# --- CUDA memory through cuda-python ------------------------------------------------------------------
class Cuda:
    """The few CUDA runtime calls inference and calibration need (cuda-python's ``cuda.bindings.runtime``)."""

    def __init__(self) -> None:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            try:
                from cuda import cudart  # cuda-python < 12.6
            except ImportError as exc:
                raise BackendUnavailable("TensorRT inference needs cuda-python (pip install cuda-python)") from exc
        self.rt = cudart

    def call(self, result):
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            name = self.rt.cudaGetErrorName(err)[1]
            raise RuntimeError(f"CUDA error {name.decode() if isinstance(name, bytes) else name}")
        return values[0] if len(values) == 1 else values

    def device(self, index: int = 0) -> dict:
        props = self.call(self.rt.cudaGetDeviceProperties(index))
        name = props.name.decode(errors="replace").rstrip("\x00") if isinstance(props.name, bytes) else str(props.name)
        return {"name": name, "compute_capability": f"{props.major}.{props.minor}"}

    def malloc(self, nbytes: int) -> int:
        return int(self.call(self.rt.cudaMalloc(max(int(nbytes), 1))))

    def free(self, pointer: int) -> None:
        self.call(self.rt.cudaFree(pointer))

    def stream(self):
        return self.call(self.rt.cudaStreamCreate())

    def to_device(self, pointer: int, array: np.ndarray, stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self.call(self.rt.cudaMemcpyAsync(pointer, array.ctypes.data, array.nbytes, kind, stream))

    def to_host(self, array: np.ndarray, pointer: int, stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self.call(self.rt.cudaMemcpyAsync(array.ctypes.data, pointer, array.nbytes, kind, stream))

    def sync(self, stream) -> None:
        self.call(self.rt.cudaStreamSynchronize(stream))


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailable(f"TensorRT is not installed here ({INSTALL_TENSORRT})") from exc
    return trt


def device_index(device: str) -> int:
    """"auto", "cuda", "tensorrt" -> 0; "cuda:1" -> 1; anything else is an error (engines run on GPUs)."""
    if device in ("auto", "cuda", "tensorrt"):
        return 0
    head, _, index = str(device).partition(":")
    if head in ("cuda", "tensorrt") and index.isdigit():
        return int(index)
    raise ValueError(f"the tensorrt backend runs on a CUDA device (cuda, cuda:N), not {device!r}")


def split_batches(count: int, min_batch: int, max_batch: int) -> list[tuple[int, int, int]]:
    """(start, stop, padded size) chunks covering ``count`` images within the engine's batch profile."""
    chunks = []
    for start in range(0, count, max_batch):
        stop = min(start + max_batch, count)
        chunks.append((start, stop, max(stop - start, min_batch)))
    return chunks


# --- the runner -----------------------------------------------------------------------------------------
@register_backend("tensorrt")
class TensorRTBackend(Backend):
    suffixes = (".engine", ".plan")
    devices = ("cuda", "tensorrt")
    precisions = ("fp32", "fp16", "int8")
    packages = (Package("tensorrt", INSTALL_TENSORRT), Package("cuda", "pip install cuda-python (the `gpu` extra)"))
    artifact = "engine"

    @classmethod
    def unavailable_reason(cls, device: str) -> str | None:
        return super().unavailable_reason(device) or gpu_reason()

    def _load(self) -> ModelMeta:
        trt = import_tensorrt()
        header, blob = read_engine(self.path)
        if "meta" not in header:
            raise ArtifactError(f"{self.path}: engine header has no model metadata")
        meta = ModelMeta.from_dict(header["meta"], str(self.path))
        self.cuda = Cuda()
        index = device_index(self.device)
        try:
            here = self.cuda.device(index)
        except RuntimeError as exc:   # no driver, no such device: say so rather than fall anywhere else
            raise BackendUnavailable(f"{self.path.name} on --device {self.device}: no usable CUDA device {index} ({exc}); "
                                     "check the NVIDIA driver (nvidia-smi) and CUDA_VISIBLE_DEVICES") from exc
        self.warnings = check_header(header, str(self.path), trt.__version__, here)
        self.cuda.call(self.cuda.rt.cudaSetDevice(index))
        self.logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(self.logger)
        if header.get("version_compatible"):
            runtime.engine_host_code_allowed = True   # the engine carries its own lean runtime (host code)
        self.dla_core = check_dla(header, str(self.path), int(getattr(runtime, "num_DLA_cores", 0)))
        if self.dla_core is not None:
            runtime.DLA_core = self.dla_core
        self.engine = runtime.deserialize_cuda_engine(blob)
        if self.engine is None:
            raise ArtifactError(f"{self.path}: TensorRT could not deserialize the engine (see its log above); "
                                "rebuild it here with `bcedge build-engine`")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        if sorted(names) != sorted((INPUT, *OUTPUTS)):
            raise ArtifactError(f"{self.path}: engine tensors are {names}, expected {INPUT}, {', '.join(OUTPUTS)}")
        low, _, high = self.engine.get_tensor_profile_shape(INPUT, 0)
        self.batch_range = (int(low[0]), int(high[0]))
        self.size_range = ((int(low[3]), int(low[2])), (int(high[3]), int(high[2])))   # (width, height) min, max
        self.dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self.stream = self.cuda.stream()
        self.buffers: dict[str, tuple[int, int]] = {}   # name -> (device pointer, bytes)
        self.device = f"cuda:{index}"
        self.precision = header.get("precision", meta.precision)
        return meta

    def check_batch(self, batch: np.ndarray) -> None:
        super().check_batch(batch)
        (min_w, min_h), (max_w, max_h) = self.size_range
        height, width = batch.shape[2:]
        if not (min_w <= width <= max_w and min_h <= height <= max_h):
            raise ValueError(f"{self.path.name}: the engine takes {min_w}x{min_h} to {max_w}x{max_h} inputs, got "
                             f"{width}x{height}; rebuild it with `bcedge build-engine --input-sizes` covering that size")

    def _buffer(self, name: str, nbytes: int) -> int:
        """One device buffer per tensor, sized for the largest batch seen so far."""
        have = self.buffers.get(name)
        if have is None or have[1] < nbytes:
            if have is not None:
                self.cuda.free(have[0])
            self.buffers[name] = (self.cuda.malloc(nbytes), nbytes)
        return self.buffers[name][0]

    def _infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = {name: [] for name in OUTPUTS}
        for start, stop, size in split_batches(len(batch), *self.batch_range):
            chunk = batch[start:stop]
            if size > len(chunk):  # below the profile's minimum: pad with copies of the last image
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], size - len(chunk), axis=0)])
            chunk = np.ascontiguousarray(chunk, dtype=self.dtypes[INPUT])
            self.context.set_input_shape(INPUT, chunk.shape)
            pointer = self._buffer(INPUT, chunk.nbytes)
            self.cuda.to_device(pointer, chunk, self.stream)
            self.context.set_tensor_address(INPUT, pointer)
            hosts = {}
            for name in OUTPUTS:
                hosts[name] = np.empty(tuple(self.context.get_tensor_shape(name)), dtype=self.dtypes[name])
                self.context.set_tensor_address(name, self._buffer(name, hosts[name].nbytes))
            if not self.context.execute_async_v3(int(self.stream)):
                raise RuntimeError(f"{self.path.name}: TensorRT execution failed (see its log above)")
            for name in OUTPUTS:
                self.cuda.to_host(hosts[name], self.buffers[name][0], self.stream)
            self.cuda.sync(self.stream)
            for name in OUTPUTS:
                out[name].append(hosts[name][:stop - start].astype(np.float32, copy=False))
        return np.concatenate(out["boxes"]), np.concatenate(out["scores"])

    def describe(self) -> str:
        dla = f", DLA core {self.dla_core} with GPU fallback" if self.dla_core is not None else ""
        return f"tensorrt on {self.device}{dla} ({self.precision}){self._choice_note()}"

    def close(self) -> None:
        for pointer, _ in getattr(self, "buffers", {}).values():
            self.cuda.free(pointer)
        self.buffers = {}
        if getattr(self, "stream", None) is not None:
            self.cuda.call(self.cuda.rt.cudaStreamDestroy(self.stream))
            self.stream = None
