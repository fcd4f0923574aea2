"""A model-free stand-in for ``bcedge.runtime.counter.Counter``, and images whose counts are known.

``StubCounter`` counts red squares as RBC and blue squares as WBC with OpenCV, so the expected
counts of an image are known from how it was drawn. It records every file it read (path and the
sha256 of the bytes it saw) so tests can prove a file was read once, and complete; with a calls
file, each read is also appended there (one path a line), for tests in another process.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from bcedge.artifact import ModelMeta
from bcedge.detections import Detections
from bcedge.imageio import read_image

CLASSES = ["RBC", "WBC", "Platelets"]
CALLS_ENV = "WATCH_STUB_CALLS"   # from_spec: the file each read is appended to


@dataclass
class StubResult:
    detections: Detections
    class_names: list[str]
    image_size: tuple[int, int]
    tiles: int = 1
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return self.detections.counts(self.class_names)

    def to_dict(self, image_id: int = 1) -> dict:
        return {"image": {"width": self.image_size[0], "height": self.image_size[1], "tiles": self.tiles},
                "counts": self.counts, "total": len(self.detections),
                "detections": self.detections.to_coco(image_id, self.class_names), "timings": self.timings}


class StubCounter:
    def __init__(self, delay: float = 0.0, calls_file: str | None = None, native: bool = False) -> None:
        self.meta = ModelMeta(arch="stub_squares", head="stub", backbone="stub", class_names=CLASSES,
                              input_size=(32, 32))
        self.delay = delay
        self.calls: list[tuple[str, str]] = []
        self.calls_file = calls_file
        self._lock = threading.Lock()
        self._native = native_work() if native else None

    @classmethod
    def from_spec(cls, spec: str) -> "StubCounter":
        """``stub:delay=0.01`` (the subprocess tests' ``--model``); ``native=1`` spends the delay inside
        ONNX Runtime, in native threads, as a real model does. Calls go to ``$WATCH_STUB_CALLS`` if set."""
        options = dict(kv.split("=", 1) for kv in spec.partition(":")[2].split(",") if "=" in kv)
        return cls(float(options.get("delay", 0)), os.environ.get(CALLS_ENV), options.get("native") == "1")

    def _wait(self) -> None:
        deadline = time.monotonic() + self.delay
        while self._native is not None and time.monotonic() < deadline:
            self._native()
        time.sleep(max(0.0, deadline - time.monotonic()))

    def count_file(self, path) -> StubResult:
        data = Path(path).read_bytes()
        with self._lock:
            self.calls.append((str(path), hashlib.sha256(data).hexdigest()))
            if self.calls_file:
                with open(self.calls_file, "a", encoding="utf-8", errors="surrogateescape") as handle:
                    handle.write(f"{path}\n")
        if self.delay:
            self._wait()
        return self.count(read_image(path))

    def count(self, frame: np.ndarray) -> StubResult:
        r, g, b = (frame[:, :, i].astype(int) for i in range(3))
        parts = []
        for class_id, mask in ((0, (r > 150) & (g < 100) & (b < 100)), (1, (b > 150) & (r < 100) & (g < 100))):
            n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
            boxes = [(x, y, x + w, y + h) for x, y, w, h, _ in stats[1:]]
            parts.append(Detections(np.array(boxes, np.float32).reshape(-1, 4), np.ones(n - 1), np.full(n - 1, class_id)))
        h, w = frame.shape[:2]
        return StubResult(Detections.concat(parts), CLASSES, (w, h), timings={"total_s": 0.0})


def native_work():
    """A call into ONNX Runtime that keeps its native threads busy for a while (a chain of matrix products)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    n = 600
    nodes, previous = [], "x"
    for i in range(6):
        nodes.append(helper.make_node("MatMul", [previous, "x"], [f"m{i}"]))
        previous = f"m{i}"
    nodes.append(helper.make_node("Identity", [previous], ["y"]))
    graph = helper.make_graph(nodes, "busy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((n, n), dtype=np.float32) / n
    return lambda: session.run(None, {"x": x})


def squares_image(red: int, blue: int, size: int = 32) -> np.ndarray:
    """RGB image with ``red`` red and ``blue`` blue 4x4 squares on a grey background (at most 16 squares)."""
    image = np.full((size, size, 3), 200, np.uint8)
    cells = [(x, y) for y in range(2, size - 4, 8) for x in range(2, size - 4, 8)]
    assert red + blue <= len(cells)
    for i, (x, y) in enumerate(cells[: red + blue]):
        image[y:y + 4, x:x + 4] = (230, 20, 20) if i < red else (20, 20, 230)
    return image


def png_bytes(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1]))
    assert ok
    return data.tobytes()


def jpeg_bytes(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[:, :, ::-1]))
    assert ok
    return data.tobytes()


def expected_counts(i: int) -> tuple[int, int]:
    """(red, blue) squares drawn in burst image ``i``."""
    return i % 5, (i // 5) % 3


def write_burst(folder: Path, n: int, size: int = 32) -> dict[str, tuple[int, int]]:
    """``n`` PNGs named img_00000.png...; returns {name: (red, blue)}."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for i in range(n):
        red, blue = expected_counts(i)
        name = f"img_{i:05d}.png"
        (folder / name).write_bytes(png_bytes(squares_image(red, blue, size)))
        expected[name] = (red, blue)
    return expected


def real_counter():
    """The runtime's own ``Counter`` around a model-free backend that finds the coloured squares per tile:
    proves the service works with real ``CountResult`` objects, strip readers and their errors."""
    from bcedge.backends.base import Backend
    from bcedge.runtime.counter import Counter

    class SquaresBackend(Backend):
        name = "squares"

        def __init__(self, meta: ModelMeta) -> None:  # no artifact file: the meta is given
            self.meta, self.device, self.precision, self.inference_seconds = meta, "cpu", "fp32", []

        def _load(self):
            raise NotImplementedError

        def _infer(self, batch):
            slots = 32
            boxes = np.zeros((len(batch), slots, 4), np.float32)
            scores = np.zeros((len(batch), slots, len(CLASSES)), np.float32)
            for b, chw in enumerate(batch):
                frame = (chw.transpose(1, 2, 0) * 255).round().astype(np.uint8)
                found = StubCounter().count(frame).detections
                boxes[b, : len(found)] = found.xyxy
                scores[b, np.arange(len(found)), found.class_ids] = 0.9
            return boxes, scores

    meta = ModelMeta(arch="squares", head="stub", backbone="stub", class_names=CLASSES, input_size=(32, 32),
                     max_object_size=6, default_score_threshold=0.5, nms_iou=0.5)
    return Counter(SquaresBackend(meta))
