"""tegrastats lines from several JetPack releases, jtop samples, and the no-Jetson fallback."""
from __future__ import annotations

import pytest

from bcedge.bench import jetson
from bcedge.bench.jetson import PowerMonitor, jtop_sample, parse_tegrastats, power_monitor, summarize_samples

NANO = ("RAM 2105/3956MB (lfb 9x4MB) SWAP 0/1978MB (cached 0MB) IRAM 0/252kB(lfb 252kB) CPU [11%@1479,7%@1479,"
        "9%@1479,8%@1479] EMC_FREQ 3%@1600 GR3D_FREQ 45%@921 APE 25 PLL@32C CPU@35C PMIC@100C GPU@33.5C AO@40C "
        "thermal@34C POM_5V_IN 2701/2650 POM_5V_GPU 812/800 POM_5V_CPU 404/404")
ORIN = ("11-24-2025 10:00:00 RAM 3237/7620MB (lfb 6101x4MB) SWAP 0/3810MB (cached 0MB) CPU [2%@729,off,5%@729,"
        "0%@729,1%@729,3%@729] EMC_FREQ 0%@2133 GR3D_FREQ 99%@[305,305] VIC_FREQ 729 APE 174 CV0@-256C "
        "CPU@47.281C SOC2@44.5C GPU@46.1C VDD_IN 7892mW/5000mW VDD_CPU_GPU_CV 2556mW/1556mW VDD_SOC 1435mW/1435mW")


def test_nano_line():
    s = parse_tegrastats(NANO)
    assert s["ram_mb"] == 2105 and s["ram_total_mb"] == 3956
    assert s["cpu_pct"] == [11, 7, 9, 8] and s["gpu_pct"] == 45
    assert s["power_mw"] == {"POM_5V_IN": 2701, "POM_5V_GPU": 812, "POM_5V_CPU": 404}
    assert s["temps_c"]["GPU"] == 33.5 and jetson.total_power(s["power_mw"]) == 2701


def test_orin_line_with_offline_core_and_disabled_sensor():
    s = parse_tegrastats(ORIN)
    assert s["cpu_pct"] == [2, 5, 0, 1, 3] and s["gpu_pct"] == 99
    assert "CV0" not in s["temps_c"] and s["temps_c"]["CPU"] == pytest.approx(47.281)
    assert s["power_mw"]["VDD_IN"] == 7892 and jetson.total_power(s["power_mw"]) == 7892
    assert jetson.total_power({"VDD_A": 100, "VDD_B": 50}) == 150     # no input rail: the sum


def test_summary_means_and_maxima():
    summary = summarize_samples([parse_tegrastats(ORIN), parse_tegrastats(ORIN.replace("VDD_IN 7892", "VDD_IN 6892"))],
                                "tegrastats")
    assert summary["samples"] == 2 and summary["total_power_mw"] == {"mean": 7392.0, "max": 7892.0}
    assert summary["gpu_pct"]["mean"] == 99.0 and "VDD_SOC" in summary["power_mw"]
    assert summarize_samples([], "none") == {"tool": "none", "samples": 0}


def test_jtop_stats_become_the_same_sample_shape():
    s = jtop_sample({"GPU": 35.0, "CPU1": 10, "CPU2": 20, "Power TOT": 5123, "Power VDD_SOC": 900, "Temp CPU": 45.2,
                     "time": "x", "RAM": 0.4})
    assert s["gpu_pct"] == 35.0 and s["cpu_pct"] == [10.0, 20.0]
    assert s["power_mw"] == {"VDD_IN": 5123, "VDD_SOC": 900} and s["temps_c"] == {"CPU": 45.2}


def test_no_tool_gives_a_monitor_that_records_nothing(monkeypatch):
    monkeypatch.setattr(jetson, "_has_jtop", lambda: False)
    monkeypatch.setattr(jetson.shutil, "which", lambda name: None)
    with power_monitor(True) as monitor:
        pass
    assert type(monitor) is PowerMonitor and monitor.summary() is None
    assert type(power_monitor(False)) is PowerMonitor


def test_clocks_from_tegrastats_lines():
    nano, orin = parse_tegrastats(NANO), parse_tegrastats(ORIN)
    assert nano["gpu_mhz"] == 921 and nano["emc_mhz"] == 1600 and nano["cpu_mhz"] == [1479] * 4
    assert orin["gpu_mhz"] == 305 and orin["emc_mhz"] == 2133 and orin["cpu_mhz"] == [729] * 5
    summary = summarize_samples([nano, nano], "tegrastats")
    assert summary["gpu_mhz"] == {"mean": 921.0, "max": 921.0} and summary["emc_mhz"]["max"] == 1600.0


def test_power_mode_and_clocks_are_recorded_on_a_jetson(tmp_path):
    import shutil
    import subprocess

    assert jetson.parse_nvpmodel("NV Fan Mode:quiet\nNV Power Mode: MAXN\n0\n") == {"name": "MAXN", "id": 0}
    assert jetson.parse_nvpmodel("NV Power Mode: 15W\n2") == {"name": "15W", "id": 2}
    if shutil.which("nvpmodel") is None:
        assert jetson.power_state(tmp_path) is None                              # no board files: not a Jetson
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.0")
    for core, khz in enumerate((729600, 1984000)):
        folder = tmp_path / f"sys/devices/system/cpu/cpu{core}/cpufreq"
        folder.mkdir(parents=True)
        (folder / "scaling_cur_freq").write_text(f"{khz}\n")
    gpu = tmp_path / "sys/class/devfreq/17000000.ga10b"
    gpu.mkdir(parents=True)
    (gpu / "cur_freq").write_text("918000000\n")
    (gpu / "max_freq").write_text("1300500000\n")

    def nvpmodel(cmd, **kwargs):
        assert cmd == ["nvpmodel", "-q"]
        return subprocess.CompletedProcess(cmd, 0, stdout="NV Power Mode: MAXN\n0\n", stderr="")

    state = jetson.power_state(tmp_path, run=nvpmodel)
    assert state["power_mode"] == {"name": "MAXN", "id": 0}
    assert state["cpu_mhz"] == {"min": 730, "max": 1984, "cores": 2}
    assert state["devfreq"] == {"17000000.ga10b": {"mhz": 918, "max_mhz": 1300}}

    def missing(cmd, **kwargs):
        raise FileNotFoundError("nvpmodel")

    assert jetson.power_state(tmp_path, run=missing)["power_mode"] == {"error": "nvpmodel -q: nvpmodel"}
