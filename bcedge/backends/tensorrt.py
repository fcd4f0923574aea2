"""TensorRT engines: the bcedge engine file (a metadata header + the serialized engine) and its runner.

File layout (little endian)::

    b"BCEDGTRT" | uint32 layout version | uint32 header length N | N bytes of JSON | serialized engine

The JSON holds the model's ``ModelMeta`` plus what the engine is tied to: the TensorRT version and the
GPU (name, compute capability) it was built on, its precision and batch profile. ``check_header``
compares that with the machine at load time and says clearly what does not match, instead of
TensorRT's deserialization error.

Inference binds device buffers with ``set_tensor_address`` and runs ``execute_async_v3`` on a CUDA
stream; memory comes from cuda-python (``cuda.bindings.runtime``), so neither torch nor pycuda is needed.
Only the header functions work without TensorRT.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from bcedge.artifact import ArtifactError, ModelMeta
from bcedge.backends.base import Backend, BackendUnavailable, register_backend

MAGIC = b"BCEDGTRT"
LAYOUT_VERSION = 1
_PREFIX = struct.Struct("<8sII")
INPUT, OUTPUTS = "images", ("boxes", "scores")


# --- the engine file --------------------------------------------------------------------------------
def pack_engine(header: dict, engine: bytes) -> bytes:
    text = json.dumps(header, sort_keys=True).encode("utf-8")
    return _PREFIX.pack(MAGIC, LAYOUT_VERSION, len(text)) + text + bytes(engine)


def write_engine(path: str | Path, header: dict, engine: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(pack_engine(header, engine))
    tmp.replace(path)
    return path


def _read(path: Path, with_engine: bool) -> tuple[dict, bytes]:
    if not path.is_file():
        raise ArtifactError(f"{path}: no such engine file")
    with open(path, "rb") as handle:
        prefix = handle.read(_PREFIX.size)
        if len(prefix) < _PREFIX.size or prefix[:8] != MAGIC:
            raise ArtifactError(f"{path}: not a bcedge engine (no bcedge header; build it with `bcedge build-engine`)")
        _, layout, length = _PREFIX.unpack(prefix)
        if layout > LAYOUT_VERSION:
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
    return _read(Path(path), with_engine=False)[0]


def read_engine(path: str | Path) -> tuple[dict, bytes]:
    return _read(Path(path), with_engine=True)


def engine_meta(path: str | Path) -> ModelMeta:
    header = read_engine_header(path)
    if "meta" not in header:
        raise ArtifactError(f"{path}: engine header has no model metadata")
    return ModelMeta.from_dict(header["meta"], str(path))


def check_header(header: dict, source: str, tensorrt_version: str, device: dict) -> list[str]:
    """Raise ArtifactError when the engine cannot run here; return warnings for mismatches that may work.

    Engines are tied to the TensorRT version and the GPU's compute capability they were built with.
    """
    built = header.get("tensorrt", "?")
    if built != tensorrt_version:
        raise ArtifactError(f"{source}: built with TensorRT {built}, this machine has TensorRT {tensorrt_version}; "
                            "rebuild the engine here with `bcedge build-engine` from the ONNX file")
    want = header.get("device", {})
    if want.get("compute_capability") != device.get("compute_capability"):
        raise ArtifactError(f"{source}: built for {want.get('name', '?')} (compute capability {want.get('compute_capability', '?')}), "
                            f"this GPU is {device.get('name', '?')} (compute capability {device.get('compute_capability', '?')}); "
                            "rebuild the engine on this device")
    if want.get("name") != device.get("name"):
        return [f"{source}: built on {want.get('name')}, running on {device.get('name')} (same compute capability)"]
    return []


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
        raise BackendUnavailable("TensorRT is not installed here (pip install tensorrt, or JetPack's python3-libnvinfer)") from exc
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
    def _load(self) -> ModelMeta:
        trt = import_tensorrt()
        header, blob = read_engine(self.path)
        meta = engine_meta(self.path)
        self.cuda = Cuda()
        index = device_index(self.device)
        self.warnings = check_header(header, str(self.path), trt.__version__, self.cuda.device(index))
        self.cuda.call(self.cuda.rt.cudaSetDevice(index))
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(self.logger).deserialize_cuda_engine(blob)
        if self.engine is None:
            raise ArtifactError(f"{self.path}: TensorRT could not deserialize the engine (see its log above)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        if sorted(names) != sorted((INPUT, *OUTPUTS)):
            raise ArtifactError(f"{self.path}: engine tensors are {names}, expected {INPUT}, {', '.join(OUTPUTS)}")
        low, _, high = self.engine.get_tensor_profile_shape(INPUT, 0)
        self.batch_range = (int(low[0]), int(high[0]))
        self.dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self.stream = self.cuda.stream()
        self.buffers: dict[str, tuple[int, int]] = {}   # name -> (device pointer, bytes)
        self.device = f"cuda:{index}"
        self.precision = header.get("precision", meta.precision)
        return meta

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
        return f"tensorrt on {self.device} ({self.precision})"

    def close(self) -> None:
        for pointer, _ in getattr(self, "buffers", {}).values():
            self.cuda.free(pointer)
        self.buffers = {}
        if getattr(self, "stream", None) is not None:
            self.cuda.call(self.cuda.rt.cudaStreamDestroy(self.stream))
            self.stream = None
