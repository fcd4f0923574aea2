"""Run Python code in a child process where importing some top-level modules fails, as if not installed:
how the run road proves it needs no torch (``bcedge.testing.no_torch``) and a missing extra is tested."""
from __future__ import annotations

import subprocess
import sys
import textwrap

_BLOCK = textwrap.dedent("""
    import sys
    class _Blocked:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {names!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked in this test)", name=name)
    sys.meta_path.insert(0, _Blocked())
""")


def run_without_modules(names: tuple[str, ...], code: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """``python -c`` of ``code`` (dedented) with ``names`` unimportable; output captured as text."""
    block = _BLOCK.format(names=tuple(names))
    return subprocess.run([sys.executable, "-c", block + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, check=False, **kwargs)
