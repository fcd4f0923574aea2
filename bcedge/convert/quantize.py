"""Explicit INT8: FP32 ONNX -> Q/DQ ONNX with ONNX Runtime's ``quantize_static``, calibrated on the CPU.

The default target ``tensorrt`` makes one artifact for ONNX Runtime (CPU, CUDA, TensorRT EP) and
TensorRT's explicit quantization (TensorRT 10, and the only INT8 path of TensorRT 11):

* QDQ format, signed INT8 activations and weights, symmetric (TensorRT requires zero points of 0),
  weights per output channel, biases left in FP32 (TensorRT's parser refuses a DequantizeLinear of the
  INT32 biases ONNX Runtime would otherwise write; TensorRT folds the bias into the INT8 convolution
  itself). The written graph is checked with ``qdq_check.check_tensorrt_qdq`` before it is kept;
* the heads' tail stays FP32 (``graph.head_tail_nodes``: final activations, box decoding against the
  anchors), and with ``keep_final_convs`` the last convolution of each head (class logits, box
  regression, centerness) too: their outputs are read as scores and pixel offsets, where an INT8 step
  is a visible error;
* a two-stage head's proposal stage stays FP32 (``graph.proposal_nodes``: the region proposal
  network's last convolutions and the decoding, ranking and suppression of proposals up to RoIAlign).

The ``cpu`` target uses unsigned asymmetric activations instead (ONNX Runtime's fast x86 path); such
a file is for ONNX Runtime only. Calibration streams the set one batch at a time (ONNX Runtime's
strided collection), so memory stays bounded for histogram methods too.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bcedge.convert import graph
from bcedge.convert.calibration import CalibrationSet
from bcedge.convert.ranges import average_ranges

METHODS = ("minmax", "percentile", "entropy")


@dataclass(frozen=True)
class Target:
    activations: str               # onnxruntime QuantType name
    symmetric: bool
    op_types: tuple[str, ...] | None   # None: every op type ONNX Runtime can quantize
    why: str
    quantize_bias: bool = True     # INT32 biases behind DequantizeLinear (ONNX Runtime's default)
    for_tensorrt: bool = False     # check the result against TensorRT's Q/DQ parsing rules
    method: str = "percentile"     # default calibration (``QuantOptions.method`` overrides)
    keep_first_conv: bool = False  # default for ``QuantOptions.keep_first_conv``


TARGETS = {
    # NVIDIA's placement: Q/DQ on the inputs of convolutions; TensorRT fuses the rest around them.
    # Min-max ranges with the stem in FP32 (percentile 99.999 and entropy lost more; min-max with the stem quantized
    # lost 3.6 mAP50 points). Min-max follows a draw's extremes: one draw of 400 tiles moved the default model by up to
    # 0.7 points per val split, the mean of four draws' ranges (several calibration sets) held it within 0.5
    # (benchmarks/results/int8_tensorrt_target_trials.md, measured in ONNX Runtime).
    "tensorrt": Target("QInt8", True, ("Conv",), "signed INT8 activations, zero point 0, FP32 biases: what TensorRT's "
                       "Q/DQ layers need", quantize_bias=False, for_tensorrt=True, method="minmax", keep_first_conv=True),
    # ONNX Runtime's x86 kernels are fastest with unsigned asymmetric activations (U8S8) and whole chains in INT8.
    # The stem in FP32 here too: on the stain-tuned default, +0.3 / -0.0 mAP50 points against FP32 on BCCD / TXL-PBC
    # val (stem quantized: -0.55 / +0.3); +0.05 / +0.1 with 1,000 calibration tiles; no slower on this CPU.
    "cpu": Target("QUInt8", False, None, "unsigned asymmetric activations (U8S8) for ONNX Runtime on x86; not for TensorRT",
                  keep_first_conv=True),
}

def _ort_method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy}[name]


def _reader(calib: CalibrationSet, batch_size: int, limit: int | None):
    """An ONNX Runtime CalibrationDataReader over the set, with the range interface strided collection uses."""
    from onnxruntime.quantization import CalibrationDataReader

    class TileReader(CalibrationDataReader):
        def __init__(self) -> None:
            total = len(calib) if limit is None else min(limit, len(calib))
            self.starts = list(range(0, total, batch_size))
            self.total = total
            self.set_range(0, len(self.starts))

        def __len__(self) -> int:
            return len(self.starts)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.queue = list(self.starts[start_index:end_index])

        def get_next(self):
            if not self.queue:
                return None
            start = self.queue.pop(0)
            return {graph.INPUT_NAME: next(calib.batches(batch_size, limit=min(self.total, start + batch_size), start=start))}

    return TileReader()


@dataclass(frozen=True)
class QuantOptions:
    method: str | None = None                      # calibration: percentile (99.999), minmax, entropy; None: the target's
    target: str = "tensorrt"                       # see TARGETS
    op_types: tuple[str, ...] | None = None        # None: the target's choice
    keep_final_convs: bool = True                  # each head's last convolution stays FP32
    keep_first_conv: bool | None = None            # the stem convolution (sees raw pixels) stays FP32; None: the target's
    keep_fp32: tuple[str, ...] = ()                # node-name prefixes that stay FP32 (e.g. "/backbone/lateral")
    limit: int | None = None                       # calibrate on the first N tiles only
    batch_size: int = 4

    def __post_init__(self) -> None:
        if self.method is not None and self.method not in METHODS:
            raise ValueError(f"unknown calibration method {self.method!r}; choose from {', '.join(METHODS)}")
        if self.target not in TARGETS:
            raise ValueError(f"unknown quantization target {self.target!r}; choose from {', '.join(TARGETS)}")


def quantize(src: str | Path, calib_dirs: str | Path | Sequence[str | Path], out: str | Path,
             options: QuantOptions | None = None, cache: str | Path | None = None) -> Path:
    """Write the Q/DQ INT8 version of the bcedge FP32 ONNX ``src``; returns the path written.

    ``calib_dirs``: one calibration set, or several draws whose ranges are averaged (``bcedge.convert.ranges``).
    ``cache``: a JSON file of calibrated tensor ranges (averaged, with several sets), written on the first
    run and reused after.
    """
    from onnxruntime.quantization import QuantFormat, QuantType

    options = options or QuantOptions()
    model, meta = graph.load(src)
    if meta.precision != "fp32":
        raise ValueError(f"{src}: is {meta.precision}; INT8 quantization starts from an fp32 export")
    sets = [CalibrationSet.load(d) for d in ([calib_dirs] if isinstance(calib_dirs, (str, Path)) else calib_dirs)]
    if not sets:
        raise ValueError("quantize needs at least one calibration set")
    if not meta.dynamic_input:   # a dynamic-input graph takes the set's tiles at any size
        for calib in sets:
            calib.check_model(meta.input_size, str(src))
    exclude = graph.head_tail_nodes(model) + graph.proposal_nodes(model)  # the latter: two-stage heads only
    if options.keep_final_convs:
        exclude += graph.final_compute_nodes(model)
    target = TARGETS[options.target]
    method = options.method or target.method
    if target.keep_first_conv if options.keep_first_conv is None else options.keep_first_conv:
        exclude += graph.first_compute_nodes(model)
    if options.keep_fp32:
        exclude += [n.name for n in model.graph.node if n.name.startswith(options.keep_fp32)]
    op_types = options.op_types if options.op_types is not None else target.op_types
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".q.tmp")
    settings = dict(quant_format=QuantFormat.QDQ, op_types_to_quantize=list(op_types) if op_types else None,
                    per_channel=True, activation_type=getattr(QuantType, target.activations),
                    weight_type=QuantType.QInt8, nodes_to_exclude=exclude, calibrate_method=_ort_method(method),
                    extra_options={"ActivationSymmetric": target.symmetric, "WeightSymmetric": True,
                                   "QuantizeBias": target.quantize_bias, "CalibStridedMinMax": 1})
    if len(sets) == 1:
        _quantize_static(model, tmp, _reader(sets[0], options.batch_size, options.limit), cache, settings)
    else:
        with tempfile.TemporaryDirectory(prefix="bcedge-ranges-") as work:
            if not (cache and Path(cache).is_file()):
                draws = []
                for i, calib in enumerate(sets):   # each draw's ranges, through ONNX Runtime's own cache
                    draws.append(Path(work) / f"draw{i}.json")
                    _quantize_static(copy.deepcopy(model), Path(work) / "draw.onnx",
                                     _reader(calib, options.batch_size, options.limit), draws[-1], settings)
                cache = average_ranges(draws, cache or Path(work) / "averaged.json")
            _quantize_static(model, tmp, None, cache, settings)
    import onnx
    import onnxruntime

    quantized = onnx.load(str(tmp))
    tmp.unlink()
    if target.for_tensorrt:
        from bcedge.convert.qdq_check import check_tensorrt_qdq

        check_tensorrt_qdq(quantized, f"{out} (from {Path(src).name})")
    meta.precision = "int8"
    meta.versions = {**meta.versions, "onnxruntime": onnxruntime.__version__}
    graph.record_step(meta, "quantize", tool="onnxruntime.quantize_static", format="QDQ", target=options.target,
                      activations=f"{target.activations} {'symmetric' if target.symmetric else 'asymmetric'}",
                      weights="QInt8 symmetric per-channel",
                      biases="INT32" if target.quantize_bias else "FP32", method=method,
                      op_types=list(op_types) if op_types else "all", fp32_nodes=len(exclude),
                      calibration={"tiles": sum(min(options.limit or len(c), len(c)) for c in sets),
                                   "draws": len(sets), "ranges": "averaged over the draws" if len(sets) > 1 else "one draw",
                                   "sha256": [c.manifest["tiles_sha256"] for c in sets]})
    return graph.save(quantized, out, meta)


def _quantize_static(model, out: Path, reader, cache: str | Path | None, settings: dict) -> None:
    """ONNX Runtime's ``quantize_static``, quiet: it logs generic advice on the root logger and prints progress."""
    from onnxruntime.quantization import quantize_static

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(model, out, reader, calibration_cache_path=str(cache) if cache else None, **settings)
    finally:
        root.setLevel(level)
