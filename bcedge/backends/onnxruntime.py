"""ONNX Runtime: CPU everywhere; CUDA and TensorRT execution providers when onnxruntime-gpu has them."""
from __future__ import annotations

import os

import numpy as np

from bcedge.artifact import ModelMeta, read_onnx_meta
from bcedge.backends.base import Backend, BackendUnavailable, register_backend

# device name -> execution providers to ask for, best first
PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


@register_backend("onnxruntime")
class OnnxRuntimeBackend(Backend):
    def _load(self) -> ModelMeta:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailable("onnxruntime is not installed (pip install onnxruntime)") from exc
        meta = read_onnx_meta(self.path)
        device = "cuda" if self.device == "auto" and "CUDAExecutionProvider" in ort.get_available_providers() else self.device
        device = "cpu" if device == "auto" else device
        if device not in PROVIDERS:
            raise ValueError(f"onnxruntime backend: unknown device {device!r}; choose from {', '.join(PROVIDERS)}")
        available = ort.get_available_providers()
        wanted = [p for p in PROVIDERS[device] if p in available]
        if PROVIDERS[device][0] not in available:
            raise BackendUnavailable(f"onnxruntime here has no {PROVIDERS[device][0]} (has {', '.join(available)})")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        threads = self.options.get("threads") or int(os.environ.get("BCEDGE_THREADS", "0"))
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.path), options, providers=wanted)
        self.device = device
        self.input_name = self.session.get_inputs()[0].name
        self.input_type = np.float16 if "float16" in self.session.get_inputs()[0].type else np.float32
        return meta

    def _infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = self.session.run(["boxes", "scores"], {self.input_name: batch.astype(self.input_type, copy=False)})
        return boxes.astype(np.float32, copy=False), scores.astype(np.float32, copy=False)

    def describe(self) -> str:
        return f"onnxruntime {self.session.get_providers()[0]} ({self.precision})"
