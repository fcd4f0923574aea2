"""Peak memory per process: a cell started from a big parent must not inherit the parent's peak."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from bcedge.bench.memory import DeviceMemorySampler, peak_rss_mb, rss_mb


def test_peak_is_at_least_now_and_grows_with_an_allocation():
    before = peak_rss_mb()
    block = np.ones(64 * 2**20 // 8)           # 64 MB, touched
    assert peak_rss_mb() >= before and peak_rss_mb() >= rss_mb() - 1
    assert peak_rss_mb() > 60 and block[-1] == 1


def test_child_process_reports_its_own_peak_not_its_parents():
    block = np.ones(200 * 2**20 // 8)          # the parent holds 200 MB more than the child will
    code = "from bcedge.bench.memory import peak_rss_mb; print(peak_rss_mb())"
    child = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert child < peak_rss_mb() - 150 and block[0] == 1


def test_device_sampler_without_a_gpu_reports_none(monkeypatch):
    from bcedge.bench import memory

    monkeypatch.setattr(memory, "_nvml_reader", lambda: None)
    monkeypatch.setattr(memory, "_smi_reader", lambda: None)
    with DeviceMemorySampler() as sampler:
        pass
    assert sampler.peak_mb is None and sampler.method is None


def test_device_sampler_keeps_the_peak(monkeypatch):
    from bcedge.bench import memory

    readings = iter([100.0, 300.0, 200.0] + [150.0] * 1000)
    monkeypatch.setattr(memory, "_nvml_reader", lambda: lambda: next(readings))
    with DeviceMemorySampler(interval=0.01) as sampler:
        sampler.sample()
        sampler.sample()
    assert sampler.peak_mb == 300.0 and "NVML" in sampler.method
