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


# ISA features that decide which kernels ONNX Runtime (MLAS) and torch pick, with the /proc/cpuinfo
# flags that show them (x86: "flags", Arm: "Features"); any one flag is enough.
X86_FEATURES = {"AVX2": ("avx2",), "FMA": ("fma",), "AVX-512": ("avx512f",), "AVX-512 VNNI": ("avx512_vnni",),
                "AVX-VNNI": ("avx_vnni",), "AVX-512 BF16": ("avx512_bf16",), "AMX": ("amx_tile",),
                "AMX-INT8": ("amx_int8",)}
ARM_FEATURES = {"NEON": ("asimd", "neon"), "dot product": ("asimddp",), "I8MM": ("i8mm",), "SVE": ("sve",)}
X86_ESSENTIALS = ("AVX2", "AVX-512", "AVX-512 VNNI", "AVX-VNNI", "AMX")   # named when absent too


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags (first processor of ``/proc/cpuinfo``); empty where unreadable."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_isa(flags: set[str]) -> dict[str, bool]:
    """Which features of this CPU's family the flags show; empty when there are no flags to read."""
    if not flags:
        return {}
    table = X86_FEATURES if "sse2" in flags or "avx" in flags else ARM_FEATURES
    return {label: any(f in flags for f in names) for label, names in table.items()}


def isa_line(isa: dict[str, bool]) -> str:
    """'AVX2, FMA, AVX-512, AVX-512 VNNI; no AVX-VNNI, AMX'."""
    if not isa:
        return "ISA unknown"
    have = [k for k, v in isa.items() if v] or ["no listed SIMD features"]
    missing = [k for k in X86_ESSENTIALS if isa.get(k) is False]
    return ", ".join(have) + (f"; no {', '.join(missing)}" if missing else "")


def isa_tag(isa: dict[str, bool]) -> str:
    """The highest x86 level for file names: 'amx', 'avx512vnni', 'avx512', 'avx2', or '' (unknown, Arm)."""
    for label, tag in (("AMX", "amx"), ("AVX-512 VNNI", "avx512vnni"), ("AVX-512", "avx512"), ("AVX2", "avx2")):
        if isa.get(label):
            return tag
    return ""


def default_threads() -> int:
    """ONNX Runtime's intra-op threads when none are set: one per physical core (here: per distinct
    (physical id, core id) in /proc/cpuinfo), at most the CPUs this process may use."""
    usable = _usable_cpus() or 1
    cores, physical = set(), None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "physical id":
                physical = value
            elif key == "core id":
                cores.add((physical, value))
    except OSError:
        pass
    return max(1, min(usable, len(cores) or usable))


def _usable_cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def cpu_id(cpuinfo: str | None = None) -> str | None:
    """'AuthenticAMD family 25 model 17': names the generation where the model name is generic ('AMD EPYC')."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo
    except OSError:
        return None
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if not key:
            break   # the first processor only
        fields.setdefault(key, value)
    if "cpu family" not in fields:
        return None
    return f"{fields.get('vendor_id', '?')} family {fields['cpu family']} model {fields.get('model', '?')}"


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


def describe_machine(note: str = "", threads: int | str | None = None) -> dict:
    """A JSON-able description: CPU and its ISA, cores, threads, memory, GPUs, Jetson facts, library
    versions (ONNX Runtime named apart), load.

    ``threads``: the intra-op threads the benchmark ran with (a number, or words such as "1 and 2");
    None: ONNX Runtime's default, written as such with the number it resolves to here.
    """
    libraries = library_versions()
    flags = cpu_flags()
    isa = cpu_isa(flags)
    env = {k: os.environ[k] for k in ("BCEDGE_THREADS", "OMP_NUM_THREADS") if os.environ.get(k)}
    desc = {"cpu": _cpu_model(), "cpu_id": cpu_id(), "cpu_isa": isa, "cpu_isa_line": isa_line(isa),
            "logical_cpus": os.cpu_count(), "usable_cpus": _usable_cpus(),
            "threads": threads if threads is not None else f"default ({default_threads()})",
            "thread_env": env, "onnxruntime": libraries.get("onnxruntime"), "memory_gb": _memory_gb(),
            "platform": platform.platform(), "python": platform.python_version(),
            "gpus": gpus(), "libraries": libraries,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    if (facts := jetson()) is not None:
        desc["jetson"] = facts
    if note:
        desc["note"] = note
    return desc


def machine_line(desc: dict) -> str:
    """One line for a markdown header: 'AMD EPYC (AVX2, ...; no AMX), 2 logical CPUs, 23.5 GB, no GPU;
    ONNX Runtime 1.32.0, threads default (2)'. Older result files without ISA or threads still read."""
    gpu = ", ".join(g["name"] for g in desc.get("gpus", [])) or "no GPU"
    isa = f" ({desc['cpu_isa_line']})" if desc.get("cpu_isa_line") else ""
    line = f"{desc['cpu']}{isa}, {desc['logical_cpus']} logical CPUs, {desc.get('memory_gb')} GB, {gpu}"
    ort = desc.get("onnxruntime") or desc.get("libraries", {}).get("onnxruntime")
    extras = ([f"ONNX Runtime {ort}"] if ort else []) + ([f"threads {desc['threads']}"] if desc.get("threads") else [])
    return line + ("; " + ", ".join(extras) if extras else "")


def machine_slug(desc: dict, with_isa: bool = False) -> str:
    """A file-name-safe name for the machine: 'amd-epyc-2cpu', 'nvidia-h100-80gb-hbm3', 'jetson-orin-nano'.

    ``with_isa`` adds a CPU's x86 level ('amd-epyc-avx512vnni-2cpu'): CPU model names such as
    'AMD EPYC' hide the generation, and CPU timings differ with it."""
    import re

    if desc.get("jetson"):
        name = desc["jetson"]["model"].replace("NVIDIA", "").replace("Developer Kit", "")
    elif desc.get("gpus"):
        name = desc["gpus"][0]["name"]
    else:
        tag = isa_tag(desc.get("cpu_isa") or {}) if with_isa else ""
        name = f"{desc.get('cpu', 'cpu')} {tag} {desc.get('logical_cpus')}cpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "machine"
