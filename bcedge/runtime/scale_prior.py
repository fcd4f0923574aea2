"""A first guess of an image's scale, from a small network that looks at a thumbnail of it.

A counter's first image has no history to start from (``bcedge.runtime.scale``): counted at the
training images' typical scale, an image from a microscope of another magnification needs a second
pass, or a ladder of passes at other scales, and on a small image those passes cost more than the count
itself. This network reads the red cells' size from a ``THUMB``-pixel thumbnail of the image's central
square (at most ``MAX_CROP`` px across) in about a millisecond, so the first pass is usually already at
the right scale. The detector still measures the scale on that pass: the guess only says where to look.

The network (``bcedge/assets/models/scale_prior.onnx``, trained by ``export/train_scale_prior.py`` on
the default's training images resampled to 0.3-5x) predicts the log of the median red-cell diameter in
thumbnail pixels. It runs on ONNX Runtime's CPU provider where that is installed (0.4 ms a guess on two AMD
EPYC cores, against 0.9 ms with OpenCV's DNN module), else through OpenCV's DNN module, a core dependency, so
every install has it; when the file is missing or cannot load, the counter starts from the training scale as before.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from bcedge.runtime.resample import CropSource, central_window
from bcedge.runtime.sources import ImageSource

THUMB = 160          # thumbnail side the network reads
MAX_CROP = 768       # the central square looked at, image pixels at most: a huge smear's cells stay visible
MEAN, STD = 127.5, 64.0
PRIOR_PATH = Path(__file__).resolve().parents[1] / "assets" / "models" / "scale_prior.onnx"


def thumbnail(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The ``THUMB`` x ``THUMB`` view the network reads of a square uint8 RGB crop, and its thumbnail
    pixels per crop pixel. A large crop is first averaged over whole k x k blocks (OpenCV's fast path: an
    area resize to 160 px at any other ratio takes 7x longer), its side trimmed to a multiple of k."""
    side = rgb.shape[0]
    if rgb.shape[1] != side:
        raise ValueError(f"the thumbnail is made from a square crop, got {rgb.shape[1]}x{side}")
    block = max(1, side // THUMB)
    side = side - side % block
    view = np.ascontiguousarray(rgb[:side, :side])
    if block > 1:
        view = cv2.resize(view, (side // block, side // block), interpolation=cv2.INTER_AREA)
    return cv2.resize(view, (THUMB, THUMB), interpolation=cv2.INTER_LINEAR), THUMB / side


def central_square(src: ImageSource) -> np.ndarray:
    """The central square of ``src`` the guess is made from (its shorter side, at most ``MAX_CROP``)."""
    side = min(src.width, src.height, MAX_CROP)
    x0, y0, _, _ = central_window(src.width, src.height, side)
    return CropSource(src, x0, y0, x0 + side, y0 + side).read_all()


def to_blob(thumbs: np.ndarray) -> np.ndarray:
    """(N, THUMB, THUMB, 3) uint8 -> the network's (N, 3, THUMB, THUMB) float32 input."""
    return ((np.asarray(thumbs, np.float32) - MEAN) / STD).transpose(0, 3, 1, 2).copy()


def network(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """The network at ``path`` as a function of its input blob: on ONNX Runtime (one thread: it is small, and
    counting threads may be busy) where installed, else on OpenCV's DNN module. Raises ``OSError`` or ``cv2.error``
    for a missing or unreadable file."""
    try:
        import onnxruntime
    except ImportError:
        net = cv2.dnn.readNetFromONNX(str(path))

        def forward(blob: np.ndarray) -> np.ndarray:
            net.setInput(blob)
            return np.asarray(net.forward())
        return forward
    if not path.is_file():
        raise OSError(f"{path}: no such file")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:   # ONNX Runtime raises its own types for an unreadable graph
        raise OSError(f"{path}: {error}") from error
    name = session.get_inputs()[0].name
    return lambda blob: session.run(None, {name: blob})[0]


class ScalePrior:
    """The guess network, loaded once; ``cell_px`` is safe to call from several threads."""

    def __init__(self, path: str | Path = PRIOR_PATH) -> None:
        self.path = Path(path)
        self._forward = network(self.path)
        self._lock = threading.Lock()

    def cell_px(self, src: ImageSource) -> float:
        """The median red-cell diameter the network sees in ``src``, in ``src``'s pixels."""
        return self.cell_px_in(central_square(src))

    def cell_px_in(self, square: np.ndarray) -> float:
        """The same for ``central_square(src)`` read already (the counter times the reading apart: decoding a
        whole image is work its count needs anyway)."""
        thumb, per_px = thumbnail(square)
        with self._lock:
            log_px = float(self._forward(to_blob(thumb[None])).reshape(-1)[0])
        return math.exp(log_px) / per_px


_shared: dict[Path, ScalePrior | None] = {}
_shared_lock = threading.Lock()


def shared_prior(path: str | Path = PRIOR_PATH) -> ScalePrior | None:
    """The process's one ``ScalePrior`` for ``path``, or None when the file is missing or unreadable
    (the counter then starts from the training scale)."""
    path = Path(path)
    with _shared_lock:
        if path not in _shared:
            try:
                _shared[path] = ScalePrior(path)
            except (cv2.error, OSError):
                _shared[path] = None
        return _shared[path]
