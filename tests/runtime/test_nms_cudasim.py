"""The numba CUDA kernel, checked without a GPU: its logic under the simulator, its PTX by NVVM."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def test_cuda_kernel_matches_numpy_under_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, str(HERE / "nms_cases.py")], capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "agree" in out.stdout


def test_cuda_kernel_compiles_to_ptx_without_fused_multiply_add():
    from numba import cuda

    from bcedge.runtime.nms import cuda_nms

    sig = "(float32[:,::1], float32[::1], int64[::1], int64[::1], int32[::1], int32[::1], float32, uint64[::1])"
    try:
        ptx, _ = cuda.compile_ptx(cuda_nms._mask_kernel.py_func, sig, cc=(7, 5))
    except Exception as exc:  # no NVVM (CUDA toolkit) on this machine
        pytest.skip(f"NVVM unavailable: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    assert "mul.rn.f32" in ptx and "div.rn.f32" in ptx
    assert "fma" not in ptx  # a fused w*h - ... would round differently from the CPU backends
