"""The machine description: versions without importing heavy libraries, a file-name slug."""
from __future__ import annotations

import subprocess
import sys

from bcedge.bench.machine import machine_slug


def test_describing_the_machine_does_not_import_torch():
    code = ("import sys; from bcedge.bench.machine import describe_machine; d = describe_machine(); "
            "print('torch' in sys.modules, 'numpy' in d['libraries'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_slug_names_the_machine():
    assert machine_slug({"cpu": "AMD EPYC", "logical_cpus": 2, "gpus": []}) == "amd-epyc-2cpu"
    assert machine_slug({"cpu": "x", "gpus": [{"name": "NVIDIA H100 80GB HBM3"}]}) == "nvidia-h100-80gb-hbm3"
    jetson = {"cpu": "ARMv8", "gpus": [], "jetson": {"model": "NVIDIA Jetson Orin Nano Developer Kit"}}
    assert machine_slug(jetson) == "jetson-orin-nano"


def test_bench_modules_import_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import bcedge.bench.cell, bcedge.bench.runner, bcedge.bench.report, bcedge.bench.jetson\n"
            "from bcedge.bench.matrix import is_two_stage\n"
            "print(is_two_stage('faster_rcnn_resnet50'), is_two_stage('fcos_resnet50'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]
