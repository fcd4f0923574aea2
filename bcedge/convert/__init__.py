"""The build road's converters: one function per step, named for what it takes and gives.

    from bcedge.convert.torch2onnx import torch2onnx            # the only step that imports torch
    from bcedge.convert.onnx2fp16 import onnx2fp16
    from bcedge.convert.calibration import build_calibration_set
    from bcedge.convert.quantize import quantize
    from bcedge.convert.onnx2engine import EngineOptions, onnx2engine

    torch2onnx("best.pt", "model.onnx")
    onnx2fp16("model.onnx", "model.fp16.onnx")
    build_calibration_set(load_dataset("bccd", "train"), "calib", (640, 480))
    quantize("model.onnx", "calib", "model.int8.onnx")
    onnx2engine("model.onnx", "model.engine", EngineOptions(precision="fp16"))

Import from the submodules; this package imports nothing itself. ``graph`` holds the ONNX helpers the
steps share. Each head's export graph lives beside the head (``models/heads/faster_rcnn_deploy.py``).
"""
