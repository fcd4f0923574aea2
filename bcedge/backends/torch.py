"""The PyTorch backend: a bcedge checkpoint run through its deploy graph, on the CPU or a CUDA GPU.

On CUDA it is the GPU backend any machine with PyTorch can run, so it takes two options:

* ``precision="fp16"``: the model and its input in half precision (the input is cast on the device,
  after the upload); outputs come back as float32 like every backend's.
* ``cuda_graphs=True``: each batch shape is captured once as a CUDA graph and replayed, which saves
  the per-kernel launch cost (it matters at small batches; ``benchmarks/gpu_check.py`` measures it).

``device="cuda"`` where PyTorch finds no GPU raises ``BackendUnavailable`` saying what is missing;
it never falls back to the CPU. ``auto`` picks CUDA when there is one (``describe()`` says which).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from bcedge.artifact import ModelMeta
from bcedge.backends.base import Backend, BackendUnavailable, Package, device_head, gpu_reason, register_backend

PRECISIONS = ("fp32", "fp16")


def _check_cuda(torch, device: str) -> None:
    """Raise BackendUnavailable naming what is missing when ``device`` (cuda, cuda:N) cannot run here."""
    if torch.version.cuda is None:
        raise BackendUnavailable(f"device {device!r}: this PyTorch ({torch.__version__}) is built without CUDA; "
                                 "install a CUDA build of PyTorch (see pytorch.org) or use --device cpu")
    if not torch.cuda.is_available():
        raise BackendUnavailable(f"device {device!r}: PyTorch {torch.__version__} (CUDA {torch.version.cuda}) finds no "
                                 "usable GPU: no NVIDIA driver loaded, no device visible (CUDA_VISIBLE_DEVICES?), or a "
                                 "driver older than that CUDA; check nvidia-smi")
    _, _, index = device.partition(":")
    if index and int(index) >= torch.cuda.device_count():
        raise BackendUnavailable(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")


def resolve_device(torch, device: str) -> str:
    """``auto`` -> ``cuda`` when PyTorch sees a GPU, else ``cpu``; ``cuda``/``cuda:N`` are checked, never downgraded."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    head, _, index = str(device).partition(":")
    if head == "cpu" and not index:
        return "cpu"
    if head == "cuda" and (not index or index.isdigit()):
        _check_cuda(torch, device)
        return device
    raise ValueError(f"the torch backend runs on cpu, cuda or cuda:N, not {device!r}")


@register_backend("torch")
class TorchBackend(Backend):
    suffixes = (".pt", ".pth")
    devices = ("cpu", "cuda")
    precisions = PRECISIONS
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

        precision = self.options.get("precision") or "fp32"
        if precision not in PRECISIONS:
            raise ValueError(f"the torch backend runs in {', '.join(PRECISIONS)}, not {precision!r}")
        self.device = resolve_device(torch, self.device)
        self.torch = torch
        self.detector, _ = load_detector(self.path, map_location=self.device)
        self.detector.eval()
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        if precision == "fp16":
            self.detector.half()
        self.cuda_graphs = bool(self.options.get("cuda_graphs")) and self.device.startswith("cuda")
        self._graphs: dict[tuple, tuple] = {}
        return dataclasses.replace(self.detector.meta, precision=precision)

    def _infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            tensor = torch.from_numpy(batch).to(self.device).to(self.dtype)
            boxes, scores = self._replay(tensor) if self.cuda_graphs else self.detector.deploy(tensor)
            boxes, scores = boxes.float().cpu().numpy(), scores.float().cpu().numpy()  # .cpu() waits for the GPU
        return boxes, scores

    # -- device-resident decoding ------------------------------------------------------------------

    decodes_on_device = True   # Counter hands it uint8 tiles and takes back final per-tile detections

    def infer_detections(self, tiles: np.ndarray, thresholds: np.ndarray, nms_iou: float,
                         max_detections: int, pre_nms_topk: int) -> list:
        """uint8 (B, H, W, 3) tiles -> one ``Detections`` per tile (tile pixels), decoded on the device;
        only the kept boxes come back, in one copy. Same rules as ``bcedge.runtime.decode.decode``."""
        import time

        from bcedge.detections import Detections

        started = time.perf_counter()
        found = self.detect_on_device(tiles, thresholds, nms_iou, max_detections, pre_nms_topk)
        tile, kept_boxes, kept_scores, kept_classes = (t.cpu().numpy() for t in found)
        sizes = np.bincount(tile, minlength=len(tiles))
        flat = (kept_boxes, kept_scores, kept_classes)
        self.inference_seconds.append(time.perf_counter() - started)
        out, start = [], 0
        for size in sizes.tolist():
            out.append(Detections(flat[0][start:start + size], flat[1][start:start + size], flat[2][start:start + size]))
            start += size
        return out

    def detect_on_device(self, tiles: np.ndarray, thresholds: np.ndarray, nms_iou: float,
                         max_detections: int, pre_nms_topk: int) -> tuple:
        """uint8 (B, H, W, 3) tiles -> (tile index, boxes, scores, class ids) of the kept detections, tensors
        left on the device (boxes in tile pixels, sorted by tile).

        The uint8 tiles go up once (pinned, a quarter of float32's bytes) and are scaled there; score
        filtering, top-k and class-aware NMS (torchvision's batched NMS) run where the outputs are.
        """
        torch = self.torch
        with torch.inference_mode():
            boxes, scores = self._forward_tiles(tiles)
            limit = torch.as_tensor(thresholds, dtype=torch.float32, device=boxes.device)
            return decode_batch_on_device(torch, boxes.float(), scores.float(), limit, nms_iou, max_detections,
                                          pre_nms_topk)

    # -- uint8 tiles in ------------------------------------------------------------------------------

    takes_uint8_tiles = True   # Counter hands it uint8 tiles even when it decodes on the host

    def infer_tiles(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (B, H, W, 3) tiles -> the raw boxes (B, A, 4) and scores (B, A, C) on the host, like ``infer``
        on ``preprocess(tiles)``, but converted on the device: a quarter of the bytes go up, and the host
        does no float conversion (a suspect for the 42% of bare inference the pipeline reached on an H200)."""
        import time

        started = time.perf_counter()
        with self.torch.inference_mode():
            boxes, scores = self._forward_tiles(tiles)
            out = boxes.float().cpu().numpy(), scores.float().cpu().numpy()   # .cpu() waits for the GPU
        self.inference_seconds.append(time.perf_counter() - started)
        return out

    def _forward_tiles(self, tiles: np.ndarray):
        """Upload uint8 tiles (pinned on CUDA), scale them to 0..1 there exactly as ``preprocess`` does, run."""
        torch = self.torch
        self.check_batch(tiles.transpose(0, 3, 1, 2))
        host = torch.from_numpy(np.ascontiguousarray(tiles))
        if self.device.startswith("cuda"):
            if ":" in self.device:   # pipeline threads, not only the loading one, must use this GPU
                torch.cuda.set_device(self.device)
            host = self._pinned_copy(host)
        batch = host.to(self.device, non_blocking=True).permute(0, 3, 1, 2).contiguous().to(self.dtype)
        batch = batch.mul_(float(np.float32(1 / 255)))
        return self._replay(batch) if self.cuda_graphs else self.detector.deploy(batch)

    def _pinned_copy(self, host):
        """``host`` in a page-locked buffer kept per batch shape: allocating pinned memory for every batch
        cost more than it saved (measured on an H200). Safe to reuse: decoding waits for the device
        (``nonzero`` sizes its output) before the call returns, so the upload has finished before the next
        batch overwrites the buffer, whether or not the results leave the device."""
        buffers = self.__dict__.setdefault("_pinned", {})
        key = tuple(host.shape)
        if key not in buffers:
            buffers[key] = self.torch.empty(key, dtype=host.dtype, pin_memory=True)
        buffers[key].copy_(host)
        return buffers[key]

    # -- CUDA graphs -------------------------------------------------------------------------------

    def _forward(self, tensor):
        """``Detector.deploy`` with the normalisation constants made once: a captured graph may not
        create tensors from host lists."""
        mean, std = self._constants
        return self.detector._deploy_fn(self.detector.model, (tensor - mean) / std)

    def _replay(self, tensor):
        torch = self.torch
        key = tuple(tensor.shape)
        if key not in self._graphs:
            meta = self.detector.meta
            self._constants = tuple(torch.tensor(v, dtype=self.dtype, device=self.device).view(1, 3, 1, 1)
                                    for v in (meta.mean, meta.std))
            static_in = tensor.clone()
            side = torch.cuda.Stream(device=self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):  # warm-up on a side stream, as torch.cuda.graph requires
                for _ in range(2):
                    self._forward(static_in)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._forward(static_in)
            self._graphs[key] = (graph, static_in, static_out)
        graph, static_in, static_out = self._graphs[key]
        static_in.copy_(tensor)
        graph.replay()
        return static_out

    def describe(self) -> str:
        graphs = ", CUDA graphs" if self.cuda_graphs else ""
        return f"torch on {self.device} ({self.precision}{graphs})"


def decode_batch_on_device(torch, boxes, scores, limit, nms_iou: float, max_detections: int, pre_nms_topk: int):
    """A batch's (B, A, 4) boxes and (B, A, C) scores -> (tile index, boxes, scores, class ids) of the kept
    detections, sorted by tile, as tensors on their device: one candidate selection and one batched
    NMS for the whole batch (per tile and class), not one round of small kernels per tile."""
    from torchvision.ops import batched_nms

    tile, anchor, cls = torch.nonzero(scores > limit, as_tuple=True)
    cand = scores[tile, anchor, cls]
    per_tile = torch.bincount(tile, minlength=scores.shape[0])
    if per_tile.numel() and int(per_tile.max()) > pre_nms_topk:   # rare: keep each tile's best pre_nms_topk
        rank = _rank_within(torch, tile, cand)
        top = rank < pre_nms_topk
        tile, anchor, cls, cand = tile[top], anchor[top], cls[top], cand[top]
    picked = boxes[tile, anchor]
    real = (picked[:, 2] > picked[:, 0]) & (picked[:, 3] > picked[:, 1])
    tile, cls, cand, picked = tile[real], cls[real], cand[real], picked[real]
    keep = batched_nms(picked, cand, tile * scores.shape[2] + cls, nms_iou)   # by score, across tiles
    tile, cls, cand, picked = tile[keep], cls[keep], cand[keep], picked[keep]
    rank = _rank_within(torch, tile, cand)
    keep = rank < max_detections
    order = torch.argsort(tile[keep] * 2.0 - cand[keep], stable=True)   # by tile, then by score (scores in 0..1)
    return tuple(t[keep][order] for t in (tile, picked, cand, cls))


def _rank_within(torch, group, score):
    """Each element's rank by descending score within its group."""
    order = torch.argsort(group * 2.0 - score, stable=True)
    ranks = torch.empty_like(order)
    counts = torch.bincount(group[order])
    starts = torch.cumsum(counts, 0) - counts
    ranks[order] = torch.arange(len(order), device=order.device) - starts[group[order]]
    return ranks
