"""The run road never needs torch: the runtime imports, and `bcedge count` runs, with torch blocked."""
import json
import subprocess

import pytest

from bcedge.catalogue import DEFAULT_MODEL
from bcedge.data import sample_dataset_path
from bcedge.testing.no_torch import run_without_torch


def _run(code: str) -> subprocess.CompletedProcess:
    return run_without_torch(code)


def test_runtime_modules_import_without_torch():
    out = _run("""
        import bcedge, bcedge.runtime.counter, bcedge.runtime.merge, bcedge.runtime.tiling, bcedge.runtime.sources
        import bcedge.backends.onnxruntime, bcedge.report.overlay, bcedge.data, bcedge.cli
        from bcedge import Counter
        from bcedge.runtime.nms import nms
        assert "torch" not in sys.modules
        print("ok")
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="the bundled default model is not in this checkout")
def test_count_cli_on_the_sample_without_torch(tmp_path):
    images = sample_dataset_path() / "JPEGImages"
    out = _run(f"""
        from bcedge.cli import main
        code = main(["count", r"{images}", "--json", r"{tmp_path / 'counts.json'}", "--overlay", r"{tmp_path / 'overlays'}"])
        assert "torch" not in sys.modules
        sys.exit(code)
    """)
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "counts.json").read_text())
    assert len(result["images"]) == 3
    assert result["totals"]["RBC"] > 10 and result["totals"]["WBC"] >= 3  # each BCCD image has a WBC
    assert len(list((tmp_path / "overlays").glob("*.png"))) == 3
    assert "TOTAL" in out.stdout


def test_numba_caches_outside_the_installed_package(tmp_path):
    """Kernel caches beside the sources would survive pip uninstall and could shadow a later install."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    code = ("import os, numpy as np; from bcedge.runtime.nms import nms; "
            "nms(np.array([[0, 0, 9, 9]], np.float32), np.ones(1, np.float32), np.zeros(1, int), 0.5, backend='numba'); "
            "print(os.environ['NUMBA_CACHE_DIR'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "bcedge" / "numba")
    assert any((tmp_path / "bcedge" / "numba").rglob("*.nbi"))
