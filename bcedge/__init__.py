"""bcedge: detect and count blood cells in microscope smears, fast, on the device next to the microscope."""
from bcedge._version import __version__
from bcedge.detections import Detections

__all__ = ["__version__", "Detections", "Counter"]


def __getattr__(name: str):
    # Counter pulls in the runtime (ONNX Runtime, numba); import it only when asked for.
    if name == "Counter":
        from bcedge.runtime.counter import Counter

        return Counter
    raise AttributeError(f"module 'bcedge' has no attribute {name!r}")
