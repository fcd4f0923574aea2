"""Run Python code in a child process where importing torch (or torchvision) fails: the run road's proof."""
from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK_TORCH = textwrap.dedent("""
    import sys
    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchvision"):
                raise ImportError(f"torch is blocked in this test (tried to import {name})")
    sys.meta_path.insert(0, _NoTorch())
""")


def run_without_torch(code: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """``python -c`` of ``code`` (dedented) with torch blocked; output captured as text."""
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, check=False, **kwargs)
