"""The torchvision backend agrees with numpy once the caller has imported torch (in a subprocess,
so this test process never holds torch)."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

CODE = """
import sys
sys.path.insert(0, {here!r})
import numpy as np
from bcedge.runtime.nms import available_backends, nms
assert "torchvision" not in available_backends()   # not before torch is imported
import torch  # noqa: F401  (the caller's choice, never the runtime's)
assert "torchvision" in available_backends()
from nms_cases import edge_cases, random_case
cases = [(f"random {{s}}", *random_case(s, n, k), iou) for s, n, k, iou in ((0, 500, 3, 0.5), (1, 1200, 40, 0.3))]
for name, boxes, scores, classes, iou in cases + edge_cases():
    ref = nms(boxes, scores, classes, iou, backend="numpy")
    got = nms(boxes, scores, classes, iou, backend="torchvision")
    assert np.array_equal(ref, got), (name, ref.tolist(), got.tolist())
print("ok")
"""


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="torchvision not installed")
def test_torchvision_backend_agrees():
    code = CODE.format(here=str(Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("ok")
