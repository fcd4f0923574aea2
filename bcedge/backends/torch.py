"""The PyTorch reference backend: a bcedge checkpoint run through its deploy graph (CPU or CUDA)."""
from __future__ import annotations

import numpy as np

from bcedge.artifact import ModelMeta
from bcedge.backends.base import Backend, BackendUnavailable, register_backend


@register_backend("torch")
class TorchBackend(Backend):
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
