"""Host and device memory of the current process: RSS now, peak RSS, and a sampled device-memory peak.

Host: each matrix cell runs in a fresh process, so its peak RSS (``VmHWM``) is that cell's own:
interpreter, backend library, model and buffers. Device: for torch on CUDA the caching allocator's
peak (``max_memory_reserved``); otherwise this process's GPU memory as NVML reports it (pynvml, or
``nvidia-smi`` polling as a fallback), sampled in a background thread. Jetsons share one memory
between CPU and GPU: there the host figure is the whole story (and tegrastats' RAM, see ``jetson``).
"""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import threading
from typing import Callable

MB = 2**20


def rss_mb() -> float:
    """Resident set size of this process now, MB."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / MB
    except (OSError, ValueError):
        import psutil

        return psutil.Process().memory_info().rss / MB


def peak_rss_mb() -> float:
    """Peak resident set size of this process image so far, MB.

    Linux: ``VmHWM`` from /proc/self/status. Not ``ru_maxrss``: that survives ``exec``, so a process
    started from a big parent (one that loaded torch) would report the parent's peak as its own.
    Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


def _nvml_reader() -> Callable[[], float | None] | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001 - NVML present but unusable (no driver): no device memory figure
        return None
    pid = os.getpid()

    def read() -> float | None:
        total = 0
        for handle in handles:
            for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid == pid and proc.usedGpuMemory:
                    total += proc.usedGpuMemory
        return total / MB

    return read


def _smi_reader() -> Callable[[], float | None] | None:
    if shutil.which("nvidia-smi") is None:
        return None
    pid = str(os.getpid())

    def read() -> float | None:
        try:
            out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        used = [float(parts[1]) for parts in (line.split(",") for line in out.splitlines())
                if len(parts) == 2 and parts[0].strip() == pid and parts[1].strip().replace(".", "").isdigit()]
        return sum(used)   # nvidia-smi reports MiB

    return read


class DeviceMemorySampler:
    """Samples this process's GPU memory every ``interval`` s while open; ``peak_mb`` None without a GPU."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.reader = _nvml_reader()
        self.method = "NVML per-process used memory, sampled" if self.reader else None
        if self.reader is None:
            self.reader = _smi_reader()
            self.method = "nvidia-smi per-process used memory, sampled" if self.reader else None
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        if self.reader is None:
            return
        value = self.reader()
        if value is not None:
            self.peak_mb = value if self.peak_mb is None else max(self.peak_mb, value)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> "DeviceMemorySampler":
        if self.reader is not None:
            self.sample()
            self._thread = threading.Thread(target=self._loop, name="bcedge-device-memory", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sample()
