"""The native library (CMakeLists.txt + csrc/) builds here and its CPU path agrees with numpy.

The build goes to a temporary folder keyed by the sources' hash, so reruns reuse it. Where nvcc
is missing, CMake builds the CPU reference only; where cmake is missing the test skips.
"""
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from bcedge.runtime.nms import native, nms

sys.path.insert(0, str(Path(__file__).parent))
from nms_cases import edge_cases, random_case  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def native_lib():
    if shutil.which("cmake") is None or shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("cmake or a C++ compiler is missing")
    sources = sorted((ROOT / "csrc").glob("*")) + [ROOT / "CMakeLists.txt"]
    digest = hashlib.sha1(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    build = Path(tempfile.gettempdir()) / f"bcedge_nms_build_{digest}"
    lib = build / native.LIB_NAME
    if not lib.is_file():
        # one GPU architecture keeps the CI build quick; it still compiles and links the kernel
        configure = ["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_CUDA_ARCHITECTURES=75"]
        for cmd in (configure, ["cmake", "--build", str(build), "-j", "2"]):
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    assert lib.is_file()
    loaded = native.load(str(lib))
    if shutil.which("nvcc"):
        assert loaded.bcedge_nms_has_cuda() == 1  # nvcc present: the CUDA kernel was compiled in
    return loaded


@pytest.mark.parametrize("seed,n,n_classes,iou", [(0, 700, 3, 0.5), (1, 2500, 1, 0.3), (2, 900, 100, 0.6)])
def test_native_cpu_agrees_with_numpy(native_lib, seed, n, n_classes, iou):
    boxes, scores, classes = random_case(seed, n, n_classes)
    args = (boxes, scores.astype(np.float32), classes.astype(np.int64), np.float32(iou))
    ref = nms(*args[:3], iou, backend="numpy")
    np.testing.assert_array_equal(native.call(native_lib, "bcedge_nms_cpu", *args), ref)


@pytest.mark.parametrize("case", edge_cases(), ids=lambda c: c[0])
def test_native_cpu_edge_cases(native_lib, case):
    _, boxes, scores, classes, iou = case
    args = (np.ascontiguousarray(boxes, np.float32), np.ascontiguousarray(scores, np.float32),
            np.ascontiguousarray(classes, np.int64), np.float32(iou))
    np.testing.assert_array_equal(native.call(native_lib, "bcedge_nms_cpu", *args),
                                  nms(boxes, scores, classes, iou, backend="numpy"))


def test_native_gpu_entry_agrees_or_says_why(native_lib):
    boxes, scores, classes = random_case(3, 3000, 4)
    args = (boxes, scores, classes.astype(np.int64), np.float32(0.5))
    if native_lib.bcedge_nms_device_count() > 0:
        np.testing.assert_array_equal(native.call(native_lib, "bcedge_nms", *args),
                                      nms(boxes, scores, classes, 0.5, backend="numpy"))
    else:
        with pytest.raises(RuntimeError, match="CUDA|cuda"):
            native.call(native_lib, "bcedge_nms", *args)
    with pytest.raises(RuntimeError, match="iou"):
        native.call(native_lib, "bcedge_nms_cpu", boxes, scores, classes.astype(np.int64), np.float32(2.0))
