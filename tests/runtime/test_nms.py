"""Every NMS backend available here keeps exactly the boxes the numpy reference keeps."""
import subprocess
import sys

import numpy as np
import pytest

from bcedge.runtime import nms as nms_pkg
from bcedge.runtime.nms import available_backends, nms, pick_backend

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from nms_cases import edge_cases, random_case  # noqa: E402

# "cuda" is checked under the simulator (test_nms_cudasim.py); torchvision in its own file.
CPU_BACKENDS = [b for b in available_backends() if b not in ("numpy", "torchvision")]


def _reference_nms(boxes, scores, classes, iou):
    """Textbook greedy NMS, one pair at a time (float32 like every backend)."""
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    keep = []
    for i in order:
        ok = True
        for k in keep:
            if classes[k] != classes[i]:
                continue
            w = min(boxes[i][2], boxes[k][2]) - max(boxes[i][0], boxes[k][0])
            h = min(boxes[i][3], boxes[k][3]) - max(boxes[i][1], boxes[k][1])
            if w <= 0 or h <= 0:
                continue
            inter = np.float32(w) * np.float32(h)
            union = (areas[i] + areas[k]) - inter
            if union > 0 and inter / union > np.float32(iou):
                ok = False
                break
        if ok:
            keep.append(i)
    return np.array(keep, dtype=np.int64)


@pytest.mark.parametrize("seed,n", [(0, 60), (1, 300), (2, 257)])
def test_numpy_matches_textbook_greedy(seed, n):
    boxes, scores, classes = random_case(seed, n)
    expected = _reference_nms(boxes, scores, classes, 0.45)
    np.testing.assert_array_equal(nms(boxes, scores, classes, 0.45, backend="numpy"), expected)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("seed,n,n_classes,iou", [(0, 500, 3, 0.5), (1, 2000, 1, 0.3), (2, 1500, 200, 0.6),
                                                   (3, 800, 2, 0.0), (4, 3000, 5, 0.7), (5, 700, 3, 1.0)])
def test_backends_agree_on_random_boxes(backend, seed, n, n_classes, iou):
    boxes, scores, classes = random_case(seed, n, n_classes)
    ref = nms(boxes, scores, classes, iou, backend="numpy")
    got = nms(boxes, scores, classes, iou, backend=backend)
    np.testing.assert_array_equal(got, ref)
    assert len(ref) < n or iou == 1.0  # the case suppresses something


@pytest.mark.parametrize("backend", CPU_BACKENDS + ["numpy"])
@pytest.mark.parametrize("case", edge_cases(), ids=lambda c: c[0])
def test_backends_agree_on_edge_cases(backend, case):
    name, boxes, scores, classes, iou = case
    expected = _reference_nms(boxes, scores, classes, iou)
    np.testing.assert_array_equal(nms(boxes, scores, classes, iou, backend=backend), expected)


def test_known_answers():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]], np.float32)
    keep = nms(boxes, [0.8, 0.9, 0.7, 0.95], [0, 0, 0, 1], 0.5, backend="numba")
    assert keep.tolist() == [3, 1, 2]  # box 0 suppressed by box 1 (IoU 0.68); class 1 is separate
    tied = nms(boxes[[0, 0, 0]], [0.5, 0.5, 0.5], [0, 0, 0], 0.5, backend="numba")
    assert tied.tolist() == [0]  # equal scores: the lowest index wins


def test_large_spread_input_is_fast_and_agrees():
    boxes, scores, classes = random_case(7, 60_000, 3, span=20_000.0, score_decimals=3)
    ref = nms(boxes, scores, classes, 0.5, backend="bitmask")
    np.testing.assert_array_equal(nms(boxes, scores, classes, 0.5, backend="numba"), ref)


def test_auto_and_errors():
    assert pick_backend(10) == "numba"  # small inputs never go to a GPU
    boxes, scores, classes = random_case(0, 50)
    np.testing.assert_array_equal(nms(boxes, scores, classes, 0.5), nms(boxes, scores, classes, 0.5, backend="numpy"))
    with pytest.raises(ValueError, match="unknown NMS backend 'nope'"):
        nms(boxes, scores, classes, 0.5, backend="nope")
    with pytest.raises(ValueError, match="iou threshold"):
        nms(boxes, scores, classes, 1.5)
    with pytest.raises(ValueError, match="NaN"):
        nms(np.full((1, 4), np.nan), [1.0], [0])
    with pytest.raises(ValueError, match="scores"):
        nms(boxes, scores[:3], classes)
    nms_pkg.register_nms_backend("alias_numba", "bcedge.runtime.nms.numba_nms")
    assert "alias_numba" in nms_pkg.backend_names()


TORCH_BLOCKER = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, _NoTorch())
"""


def test_runtime_core_never_imports_torch():
    code = TORCH_BLOCKER + (
        "import numpy as np\nfrom bcedge.runtime.nms import nms, available_backends\n"
        "import bcedge.runtime.tiling, bcedge.runtime.merge, bcedge.runtime.sources, bcedge.runtime.nms.nmm\n"
        "import bcedge.runtime.readers.png, bcedge.runtime.readers.tiff, bcedge.runtime.readers.whole\n"
        "print(nms(np.array([[0,0,1,1.]]), [1.0], [0]).tolist(), available_backends(), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("[0] [") and "torchvision" not in out.stdout and out.stdout.split()[-1] == "False"
