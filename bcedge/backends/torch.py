"""The PyTorch reference backend: a bcedge checkpoint run through its deploy graph (CPU or CUDA)."""
from __future__ import annotations

import numpy as np

from bcedge.artifact import ModelMeta
from bcedge.backends.base import Backend, BackendUnavailable, Package, device_head, gpu_reason, register_backend


@register_backend("torch")
class TorchBackend(Backend):
    suffixes = (".pt", ".pth")
    devices = ("cpu", "cuda")
    precisions = ("fp32",)
    packages = (Package("torch", "pip install 'bcedge[train]'"),)
    artifact = "pt"

    @classmethod
    def unavailable_reason(cls, device: str) -> str | None:
        reason = super().unavailable_reason(device)
        return reason or (gpu_reason() if device_head(device) == "cuda" else None)

    @classmethod
    def artifact_kind(cls, precision: str, device: str) -> str | None:
        return "pt" if precision == "fp32" else None   # the bench matrix runs checkpoints as trained

    @classmethod
    def precision_reason(cls, precision: str, device: str) -> str:
        return ("the torch backend runs FP32 checkpoints only in the matrix (FP16 and INT8 are ONNX / TensorRT "
                "artifacts; torch FP16 on CUDA is measured by benchmarks/gpu_check.py)")

    def _load(self) -> ModelMeta:
        try:
            import torch
        except ImportError as exc:
            raise BackendUnavailable("the torch backend needs PyTorch (pip install 'bcedge[train]')") from exc
        from bcedge.models import load_detector

        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.torch = torch
        self.detector, _ = load_detector(self.path, map_location=device)
        self.detector.eval()
        return self.detector.meta

    def _infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self.torch.no_grad():
            boxes, scores = self.detector.deploy(self.torch.from_numpy(batch).to(self.device))
        if self.device.startswith("cuda"):
            self.torch.cuda.synchronize()
        return boxes.cpu().numpy(), scores.cpu().numpy()
