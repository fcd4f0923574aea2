"""``bcedge`` with a model-free counter, for the watch soak benchmark:

    python benchmarks/_soak_service.py watch IN --out OUT --model soak:delay=0.05

The counter finds red (RBC) and blue (WBC) squares by colour and sleeps ``delay`` seconds per file
in place of a model. Every file it reads is appended to ``$SOAK_CALLS``, so the benchmark can tell
a file counted twice. Only ``bcedge.watch.service.open_counter`` is replaced; the rest is the CLI.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bcedge.watch.service as service  # noqa: E402
from bcedge.artifact import ModelMeta  # noqa: E402
from bcedge.cli import main  # noqa: E402
from bcedge.detections import Detections  # noqa: E402
from bcedge.imageio import read_image  # noqa: E402
from bcedge.runtime.counter import CountResult  # noqa: E402

CLASSES = ["RBC", "WBC", "Platelets"]


class SquaresCounter:
    def __init__(self, delay: float, calls: str | None) -> None:
        self.meta = ModelMeta(arch="soak_squares", head="stub", backbone="stub", class_names=CLASSES,
                              input_size=(32, 32))
        self.delay, self.calls, self._lock = delay, calls, threading.Lock()

    def count_file(self, path) -> CountResult:
        frame = read_image(path)
        if self.calls:
            with self._lock, open(self.calls, "a", encoding="utf-8", errors="surrogateescape") as handle:
                handle.write(f"{path}\n")
        time.sleep(self.delay)
        r, g, b = (frame[:, :, i].astype(int) for i in range(3))
        parts = []
        for class_id, mask in ((0, (r > 150) & (g < 100) & (b < 100)), (1, (b > 150) & (r < 100) & (g < 100))):
            n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
            boxes = [(x, y, x + w, y + h) for x, y, w, h, _ in stats[1:]]
            parts.append(Detections(np.array(boxes, np.float32).reshape(-1, 4), np.ones(n - 1), np.full(n - 1, class_id)))
        height, width = frame.shape[:2]
        return CountResult(Detections.concat(parts), CLASSES, (width, height), 1, {}, str(path))


def open_soak_counter(model: str = "soak:delay=0", **options) -> SquaresCounter:
    settings = dict(kv.split("=", 1) for kv in str(model).removeprefix("soak:").split(",") if "=" in kv)
    return SquaresCounter(float(settings.get("delay", 0)), os.environ.get("SOAK_CALLS"))


service.open_counter = open_soak_counter

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
