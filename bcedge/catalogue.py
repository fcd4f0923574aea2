"""The bundled-model catalogue: model names a user may give instead of a path.

Each name maps to an artifact shipped in the package (``bcedge/assets/models``; ``default.md`` is the
model card). ``resolve_model`` turns a name or a path into an existing file, or says what is missing.
"""
from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
BUNDLED_MODELS = {  # name -> file shipped in the package
    "default": ASSETS / "models" / "default.onnx",
    "default-int8": ASSETS / "models" / "default.int8.onnx",  # the same model, INT8 for ONNX Runtime on CPUs
}
DEFAULT_MODEL = BUNDLED_MODELS["default"]


def resolve_model(model: str | Path) -> Path:
    """A bundled model's name (``default``, ``default-int8``) or a path that must exist."""
    path = BUNDLED_MODELS.get(str(model), Path(model))
    if not path.is_file():
        hint = (f" (the bundled model {model!r} is missing from this install)" if str(model) in BUNDLED_MODELS
                else f" (bundled models: {', '.join(BUNDLED_MODELS)})")
        raise FileNotFoundError(f"{path}: no such model file{hint}")
    return path
