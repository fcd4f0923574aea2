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
