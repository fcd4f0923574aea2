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
            "import bcedge.bench.cell, bcedge.bench.runner, bcedge.bench.report, bcedge.bench.jetson, bcedge.bench.interleave\n"
            "from bcedge.bench.matrix import is_two_stage\n"
            "print(is_two_stage('faster_rcnn_resnet50'), is_two_stage('fcos_resnet50'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]


ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx fma avx2 avx512f avx512_vnni avx512_bf16

processor\t: 1
vendor_id\t: AuthenticAMD
flags\t\t: fpu
"""


def test_isa_of_an_x86_cpu_names_what_it_has_and_lacks():
    from bcedge.bench.machine import cpu_flags, cpu_id, cpu_isa, isa_line

    isa = cpu_isa(cpu_flags(ZEN4))
    assert isa["AVX2"] and isa["AVX-512"] and isa["AVX-512 VNNI"] and not isa["AMX"] and not isa["AVX-VNNI"]
    assert isa_line(isa).endswith("; no AVX-VNNI, AMX")
    assert cpu_id(ZEN4) == "AuthenticAMD family 25 model 17"
    avx2_only = cpu_isa(cpu_flags("flags : sse2 avx avx2 fma"))
    assert isa_line(avx2_only) == "AVX2, FMA; no AVX-512, AVX-512 VNNI, AVX-VNNI, AMX"


def test_isa_of_an_arm_cpu_and_of_none():
    from bcedge.bench.machine import cpu_flags, cpu_isa, isa_line

    isa = cpu_isa(cpu_flags("Features\t: fp asimd asimddp i8mm"))
    assert isa == {"NEON": True, "dot product": True, "I8MM": True, "SVE": False}
    assert isa_line(cpu_isa(set())) == "ISA unknown"


def test_description_and_line_name_isa_threads_and_onnxruntime():
    from bcedge.bench.machine import describe_machine, machine_line

    desc = describe_machine(threads="1 and 2")
    assert desc["threads"] == "1 and 2" and "cpu_isa" in desc
    line = machine_line(desc)
    assert "threads 1 and 2" in line and desc["cpu_isa_line"] in line
    if desc["onnxruntime"]:
        assert f"ONNX Runtime {desc['onnxruntime']}" in line
    assert describe_machine()["threads"].startswith("default (")
    old = {"cpu": "AMD EPYC", "logical_cpus": 2, "memory_gb": 23.5, "gpus": []}   # a result file from before
    assert machine_line(old) == "AMD EPYC, 2 logical CPUs, 23.5 GB, no GPU"


def test_slug_can_carry_the_isa_level():
    desc = {"cpu": "AMD EPYC", "logical_cpus": 2, "gpus": [], "cpu_isa": {"AVX2": True, "AVX-512": True,
                                                                         "AVX-512 VNNI": False}}
    assert machine_slug(desc) == "amd-epyc-2cpu"
    assert machine_slug(desc, with_isa=True) == "amd-epyc-avx512-2cpu"
