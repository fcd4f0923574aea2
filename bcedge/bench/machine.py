"""Describe the machine a benchmark ran on, so result files from different machines can sit side by side."""
from __future__ import annotations

import importlib
import os
import platform
import shutil
import subprocess
from pathlib import Path

LIBRARIES = ("numpy", "cv2", "onnxruntime", "onnx", "numba", "torch", "torchvision", "tensorrt")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _run(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def gpus() -> list[dict]:
    """NVIDIA GPUs from nvidia-smi (name, driver, memory); empty where there is none."""
    text = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap", "--format=csv,noheader"])
    if not text:
        return []
    rows = [[v.strip() for v in line.split(",")] for line in text.splitlines()]
    return [dict(zip(("name", "driver", "memory", "compute_capability"), row)) for row in rows]


def jetson() -> dict | None:
    """Jetson facts when on one: model, L4T release and power mode (nvpmodel)."""
    model = Path("/proc/device-tree/model")
    if not model.exists() or "jetson" not in model.read_text(errors="ignore").lower():
        return None
    release = Path("/etc/nv_tegra_release")
    return {"model": model.read_text(errors="ignore").strip("\x00\n"),
            "l4t": release.read_text().splitlines()[0] if release.exists() else None,
            "power_mode": _run(["nvpmodel", "-q"])}


# module -> distributions that provide it: versions are read from package metadata, so describing the
# machine does not import torch or TensorRT (seconds and hundreds of MB); the import is the fallback
DISTRIBUTIONS = {"numpy": ("numpy",), "cv2": ("opencv-python-headless", "opencv-python", "opencv-contrib-python"),
                 "onnxruntime": ("onnxruntime", "onnxruntime-gpu"), "onnx": ("onnx",), "numba": ("numba",),
                 "torch": ("torch",), "torchvision": ("torchvision",), "tensorrt": ("tensorrt", "tensorrt-cu12")}


def _installed_version(name: str) -> str | None:
    from importlib import metadata
    from importlib.util import find_spec

    try:
        if find_spec(name) is None:
            return None
    except (ImportError, ValueError):
        return None
    for dist in DISTRIBUTIONS.get(name, (name,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return str(importlib.import_module(name).__version__)


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            version = _installed_version(name)
        except Exception:  # noqa: BLE001 - absent or broken: simply not listed
            continue
        if version:
            versions[name] = version.split("+")[0]
    return versions


def describe_machine(note: str = "") -> dict:
    """A JSON-able description: CPU, cores, memory, GPUs, Jetson facts, library versions, load."""
    desc = {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "memory_gb": _memory_gb(),
            "platform": platform.platform(), "python": platform.python_version(),
            "gpus": gpus(), "libraries": library_versions(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    if (facts := jetson()) is not None:
        desc["jetson"] = facts
    if note:
        desc["note"] = note
    return desc


def machine_line(desc: dict) -> str:
    """One line for a markdown table header: 'AMD EPYC ..., 2 logical CPUs, 23.5 GB, no GPU'."""
    gpu = ", ".join(g["name"] for g in desc.get("gpus", [])) or "no GPU"
    return f"{desc['cpu']}, {desc['logical_cpus']} logical CPUs, {desc.get('memory_gb')} GB, {gpu}"


def machine_slug(desc: dict) -> str:
    """A file-name-safe name for the machine: 'amd-epyc-2cpu', 'nvidia-h100-80gb-hbm3', 'jetson-orin-nano'."""
    import re

    if desc.get("jetson"):
        name = desc["jetson"]["model"].replace("NVIDIA", "").replace("Developer Kit", "")
    elif desc.get("gpus"):
        name = desc["gpus"][0]["name"]
    else:
        name = f"{desc.get('cpu', 'cpu')} {desc.get('logical_cpus')}cpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "machine"
