"""Jetson power, clocks and load while a benchmark runs: tegrastats (every JetPack) or jtop (jetson-stats).

    state = power_state()                             # None off a Jetson: nvpmodel mode, CPU/GPU clocks
    with power_monitor(enabled=True) as monitor:     # a no-op monitor where neither tool exists
        ...timed work...
    monitor.summary()   # {"tool": "tegrastats", "samples": 40, "power_mw": {"VDD_IN": {"mean": ..., "max": ...}}, ...}

A Jetson's speed depends on its power mode (``nvpmodel -q``: MAXN, 15W, ...) and on whether
``jetson_clocks`` pinned the clocks, so the bench records both next to every figure: the mode and the
clocks at the start of a cell (``power_state``), and the clocks tegrastats reports while it is timed.

tegrastats lines differ between JetPack releases (``POM_5V_IN 2701/2701`` on a Nano, ``VDD_IN 4892mW/4892mW``
on Orin); ``parse_tegrastats`` reads both: RAM, per-core CPU load and MHz, GPU load and MHz (GR3D_FREQ),
memory clock (EMC_FREQ), temperatures and power rails (instant value). The board's total input rail is
reported as ``total_power_mw``.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_GPU = re.compile(r"\bGR3D_FREQ (\d+)%(?:@\[?([\d,]+)\]?)?")
_EMC = re.compile(r"\bEMC_FREQ (\d+)%(?:@(\d+))?")
_TEMP = re.compile(r"\b([A-Za-z0-9_]+)@(-?\d+(?:\.\d+)?)C\b")
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]+) (\d+)(?:mW)?/(\d+)(?:mW)?\b")
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0", "VIN")


def parse_tegrastats(line: str) -> dict:
    """One tegrastats line -> {"ram_mb", "ram_total_mb", "cpu_pct" [per core], "gpu_pct", "temps_c", "power_mw"}."""
    out: dict = {}
    if (m := _RAM.search(line)):
        out["ram_mb"], out["ram_total_mb"] = int(m.group(1)), int(m.group(2))
    if (m := _CPU.search(line)):
        cores = [c.split("%@") for c in m.group(1).split(",")]
        out["cpu_pct"] = [int(c[0]) for c in cores if c[0].isdigit()]   # "off" cores are left out
        mhz = [int(c[1]) for c in cores if len(c) == 2 and c[1].isdigit()]
        if mhz:
            out["cpu_mhz"] = mhz
    if (m := _GPU.search(line)):
        out["gpu_pct"] = int(m.group(1))
        if m.group(2):                                 # "@921" (Nano) or "@[305,305]" (one per GPC on Orin)
            out["gpu_mhz"] = max(int(v) for v in m.group(2).split(",") if v)
    if (m := _EMC.search(line)) and m.group(2):
        out["emc_mhz"] = int(m.group(2))
    temps = {name: float(v) for name, v in _TEMP.findall(line) if float(v) > -200}   # -256C: sensor off
    if temps:
        out["temps_c"] = temps
    rails = {name: int(now) for name, now, _avg in _RAIL.findall(line) if name not in ("RAM", "SWAP", "IRAM")}
    if rails:
        out["power_mw"] = rails
    return out


def total_power(rails: dict[str, int]) -> float | None:
    """The board's input rail when reported, else the sum of the rails (a lower bound)."""
    for name in TOTAL_RAILS:
        if name in rails:
            return float(rails[name])
    return float(sum(rails.values())) if rails else None


def summarize_samples(samples: Iterable[dict], tool: str) -> dict:
    """Mean and max of each quantity over the samples."""
    samples = list(samples)
    out: dict = {"tool": tool, "samples": len(samples)}
    if not samples:
        return out

    def stats(values: list[float]) -> dict | None:
        return {"mean": round(float(np.mean(values)), 1), "max": round(float(np.max(values)), 1)} if values else None

    out["ram_mb"] = stats([s["ram_mb"] for s in samples if "ram_mb" in s])
    out["gpu_pct"] = stats([s["gpu_pct"] for s in samples if "gpu_pct" in s])
    out["gpu_mhz"] = stats([s["gpu_mhz"] for s in samples if "gpu_mhz" in s])
    out["emc_mhz"] = stats([s["emc_mhz"] for s in samples if "emc_mhz" in s])
    out["cpu_mhz_mean_core"] = stats([float(np.mean(s["cpu_mhz"])) for s in samples if s.get("cpu_mhz")])
    out["cpu_pct_mean_core"] = stats([float(np.mean(s["cpu_pct"])) for s in samples if s.get("cpu_pct")])
    out["total_power_mw"] = stats([p for s in samples if (p := total_power(s.get("power_mw", {}))) is not None])
    rails = sorted({name for s in samples for name in s.get("power_mw", {})})
    out["power_mw"] = {r: stats([s["power_mw"][r] for s in samples if r in s.get("power_mw", {})]) for r in rails}
    temps = sorted({name for s in samples for name in s.get("temps_c", {})})
    out["temps_c"] = {t: stats([s["temps_c"][t] for s in samples if t in s.get("temps_c", {})]) for t in temps}
    return {k: v for k, v in out.items() if v not in (None, {})}


class PowerMonitor:
    """Base: collects nothing (not a Jetson, or no tool)."""

    tool = "none"

    def __init__(self) -> None:
        self.samples: list[dict] = []

    def __enter__(self) -> "PowerMonitor":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def summary(self) -> dict | None:
        return summarize_samples(self.samples, self.tool) if self.samples else None


class TegrastatsMonitor(PowerMonitor):
    tool = "tegrastats"

    def __init__(self, interval_ms: int = 200) -> None:
        super().__init__()
        self.interval_ms = interval_ms
        self.process: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            parsed = parse_tegrastats(line)
            if parsed:
                self.samples.append(parsed)

    def __enter__(self) -> "TegrastatsMonitor":
        self.process = subprocess.Popen(["tegrastats", "--interval", str(self.interval_ms)], stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        self._thread = threading.Thread(target=self._read, name="bcedge-tegrastats", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self._thread is not None:
            self._thread.join(timeout=5)


class JtopMonitor(PowerMonitor):
    """jetson-stats' jtop service; its ``stats`` dict is sampled at its own interval."""

    tool = "jtop"

    def __init__(self, interval_s: float = 0.2) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        from jtop import jtop

        with jtop(interval=self.interval_s) as board:
            while not self._stop.is_set() and board.ok():
                self.samples.append(jtop_sample(dict(board.stats)))

    def __enter__(self) -> "JtopMonitor":
        self._thread = threading.Thread(target=self._loop, name="bcedge-jtop", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def jtop_sample(stats: dict) -> dict:
    """jtop's flat ``stats`` dict ("RAM": 0.4, "GPU": 35.0, "Power TOT": 5123, "Temp CPU": 45.2...) -> our sample."""
    out: dict = {}
    if isinstance(stats.get("GPU"), (int, float)):
        out["gpu_pct"] = float(stats["GPU"])
    cpus = [float(v) for k, v in stats.items() if re.fullmatch(r"CPU\d+", str(k)) and isinstance(v, (int, float))]
    if cpus:
        out["cpu_pct"] = cpus
    rails = {k.replace("Power ", ""): int(v) for k, v in stats.items()
             if str(k).startswith("Power ") and isinstance(v, (int, float))}
    if rails:
        out["power_mw"] = {("VDD_IN" if k == "TOT" else k): v for k, v in rails.items()}
    temps = {k.replace("Temp ", ""): float(v) for k, v in stats.items()
             if str(k).startswith("Temp ") and isinstance(v, (int, float))}
    if temps:
        out["temps_c"] = temps
    return out


def _has_jtop() -> bool:
    try:
        import jtop  # noqa: F401
    except ImportError:
        return False
    return True


def power_monitor(enabled: bool = True) -> PowerMonitor:
    """jtop when importable, else tegrastats when on PATH, else a monitor that records nothing."""
    if not enabled:
        return PowerMonitor()
    if _has_jtop():
        return JtopMonitor()
    if shutil.which("tegrastats"):
        return TegrastatsMonitor()
    return PowerMonitor()


# --- the power mode and clocks a figure was measured under ---------------------------------------------------
_MODE = re.compile(r"NV Power Mode:\s*(\S+)\s*\n\s*(\d+)")


def parse_nvpmodel(text: str) -> dict:
    """``nvpmodel -q`` output ("NV Power Mode: MAXN" then the mode id) -> {"name": "MAXN", "id": 0}."""
    m = _MODE.search(text)
    return {"name": m.group(1), "id": int(m.group(2))} if m else {"unparsed": text.strip()[:200]}


def _read_mhz(path: Path) -> float | None:
    try:
        return int(path.read_text().split()[0]) / 1e6
    except (OSError, ValueError, IndexError):
        return None


def read_clocks(root: Path = Path("/")) -> dict:
    """Current clocks from sysfs: CPU cores (cpufreq, kHz) and devfreq devices (GPU, DLA... Hz), in MHz."""
    cpus = [v * 1e3 for p in sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq"))
            if (v := _read_mhz(p)) is not None]
    out: dict = {}
    if cpus:
        out["cpu_mhz"] = {"min": round(min(cpus)), "max": round(max(cpus)), "cores": len(cpus)}
    devices = {}
    for folder in sorted((root / "sys/class/devfreq").glob("*")):
        now = _read_mhz(folder / "cur_freq")
        if now is not None:
            devices[folder.name] = {"mhz": round(now), "max_mhz": round(_read_mhz(folder / "max_freq") or now)}
    if devices:
        out["devfreq"] = devices   # on Orin the GPU is 17000000.ga10b (gv11b on Xavier, 57000000.gpu on Nano)
    return out


def is_jetson(root: Path = Path("/")) -> bool:
    return (root / "etc/nv_tegra_release").exists() or shutil.which("nvpmodel") is not None


def power_state(root: Path = Path("/"), run: Callable = subprocess.run) -> dict | None:
    """The power mode (``nvpmodel -q``) and clocks now; None where this is not a Jetson."""
    if not is_jetson(root):
        return None
    state: dict = {}
    try:
        result = run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=10)
        state["power_mode"] = parse_nvpmodel(result.stdout) if result.returncode == 0 else \
            {"error": (result.stderr or result.stdout).strip()[:200]}
    except (OSError, subprocess.TimeoutExpired) as exc:
        state["power_mode"] = {"error": f"nvpmodel -q: {exc}"}
    state.update(read_clocks(root))
    return state
