"""The tensor NMS (``nms.torch_grid``) keeps exactly what the numpy reference keeps, and the device
``core`` merge keeps exactly what the host merge keeps. Run on torch's CPU device in a subprocess, so
this test process never holds torch (the runtime must not need it)."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent

NMS_CODE = """
import sys
sys.path.insert(0, {here!r})
import numpy as np
from bcedge.runtime.nms import available_backends, nms
assert "torch_grid" not in available_backends()   # not before the caller imports torch
import torch
torch.set_num_threads(1)
assert "torch_grid" in available_backends()
from nms_cases import edge_cases, random_case
cases = [(f"random {{s}}", *random_case(s, n, k), iou) for s, n, k, iou in
         ((0, 500, 3, 0.5), (1, 1200, 40, 0.3), (2, 3000, 2, 0.7), (3, 2000, 1, 0.5))]
rng = np.random.default_rng(7)
boxes, scores, classes = random_case(4, 1500, 2)
boxes[:4, 2:] += 300            # a few boxes far larger than the rest: paired with every box, not through the grid
cases.append(("outsized boxes", boxes, scores, classes, 0.4))
centres = np.repeat(rng.uniform(0, 2000, (800, 2)), 3, 0) + rng.normal(0, 3, (2400, 2))   # each cell seen 3 times
sides = rng.uniform(40, 60, (2400, 1))
dense = np.concatenate([centres - sides / 2, centres + sides / 2], 1).astype(np.float32)
cases.append(("cells seen three times", dense, rng.random(2400).astype(np.float32), rng.integers(0, 2, 2400), 0.5))
for name, boxes, scores, classes, iou in cases + edge_cases():
    ref = nms(boxes, scores, classes, iou, backend="numpy")
    got = nms(boxes, scores, classes, iou, backend="torch_grid")
    assert np.array_equal(ref, got), (name, len(ref), len(got))
    if name.startswith(("random", "outsized")):
        assert len(ref) < len(boxes), name                      # these cases do suppress
print("ok")
"""

MERGE_CODE = """
import sys
sys.path.insert(0, {here!r})
import numpy as np
import torch
torch.set_num_threads(1)
from bcedge.detections import Detections
from bcedge.runtime.device_merge import merge_on_device
from bcedge.runtime.merge import MergeParams, merge_tiles
from test_merge import make_cells, run_tiles
checked = 0
for seed, (tile, overlap, offset) in enumerate([(128, 40, (0, 0)), (128, 40, (37, 91)), (96, 36, (60, 13)), (512, 40, (0, 0))]):
    cells = make_cells(seed, 600, 500, 150, 12, 36)
    per_tile = run_tiles(cells, 600, 500, tile, overlap, offset, seed=seed, jitter=1.5)
    tiles = [t for t, _ in per_tile]
    raw = Detections.concat(d.shift(t.x0, t.y0) for t, d in per_tile)
    tile_ids = np.repeat(np.arange(len(per_tile)), [len(d) for _, d in per_tile])
    for params in (MergeParams("core"), MergeParams("core", iou=0.3, tolerance=4.0)):
        host = merge_tiles(per_tile, params)
        keep = merge_on_device(torch.from_numpy(raw.xyxy), torch.from_numpy(raw.scores), torch.from_numpy(raw.class_ids),
                               torch.from_numpy(tile_ids), tiles, params).numpy()
        assert len(host) == len(cells), (seed, len(host), len(cells))
        device = Detections(np.clip(raw.xyxy[keep], 0, [600, 500, 600, 500]), raw.scores[keep], raw.class_ids[keep])
        assert np.array_equal(host.xyxy, device.xyxy) and np.array_equal(host.class_ids, device.class_ids), seed
        checked += 1
empty = merge_on_device(torch.zeros((0, 4)), torch.zeros(0), torch.zeros(0, dtype=torch.int64),
                        torch.zeros(0, dtype=torch.int64), tiles)
assert empty.numel() == 0
try:
    merge_on_device(torch.zeros((1, 4)), torch.ones(1), torch.zeros(1, dtype=torch.int64),
                    torch.zeros(1, dtype=torch.int64), tiles, MergeParams("greedy_nmm"))
    raise AssertionError("greedy_nmm accepted on the device")
except ValueError as exc:
    assert "core" in str(exc)
print("ok", checked)
"""


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code.format(here=str(HERE))], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_tensor_nms_keeps_what_the_reference_keeps():
    assert run(NMS_CODE).endswith("ok")


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_device_core_merge_equals_the_host_merge():
    assert run(MERGE_CODE) == "ok 8"
