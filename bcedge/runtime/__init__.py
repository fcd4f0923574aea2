"""The run road: scale, tiling, sources, pipeline, merge, NMS kernels and ``Counter``; no torch.

numba's compiled-kernel cache (``cache=True`` in ``nms/`` and ``readers/png.py``) goes to the user's
cache folder, not beside the installed sources: an install folder may be read-only (a system or
Jetson install), and cache files left there survive ``pip uninstall`` as a package skeleton that
can shadow a later editable install. ``NUMBA_CACHE_DIR`` set by the user wins.
"""
import os
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                                             / "bcedge" / "numba"))
