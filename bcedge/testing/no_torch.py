"""Run Python code in a child process where importing torch (or torchvision) fails: the run road's proof."""
from __future__ import annotations

import subprocess

from bcedge.testing.no_module import run_without_modules


def run_without_torch(code: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """``python -c`` of ``code`` (dedented) with torch and torchvision blocked; output captured as text."""
    return run_without_modules(("torch", "torchvision"), code, timeout=timeout, **kwargs)
