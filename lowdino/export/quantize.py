"""int8 static quantization with ONNX Runtime, calibrated on training images.

`quant_pre_process` first (shape inference and graph fusion, which ONNX Runtime asks for before
quantizing), then `quantize_static` in QDQ format: uint8 activations and int8 weights (the U8S8 pair
that x86 VNNI instructions take), weights per output channel (one scale per convolution filter keeps
depthwise convolutions, whose filters differ in range by orders of magnitude, accurate).

Activation ranges come from MinMax calibration on a sample of the TRAINING split: the test split the
accuracy is then measured on never shapes the scales.

What is quantized, and why (measured on this CPU, benchmarks/latency.py and the README): every operator
ONNX Runtime can run in int8, so that the activations stay int8 from one convolution to the next — with
only Conv / MatMul / Gemm quantized, MobileNetV2's ReLU6 and residual Adds sit between a Dequantize and
a Quantize node each and the int8 graph was no faster than fp32 (1.00x; all operators: 1.9x). Left in
float: Softmax (ONNX Runtime's QLinearSoftmax was the slowest node of the int8 MobileViT, 25 % of its
time) and the matrix products of two activations (attention's Q·Kᵀ and A·V), whose operands would be
re-quantized on every call.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FLOAT_OP_TYPES = ("Softmax",)
CALIBRATION_BATCH = 16


@dataclass(frozen=True)
class Int8Settings:
    quant_format: str = "QDQ"
    per_channel: bool = True
    float_op_types: tuple[str, ...] = FLOAT_OP_TYPES
    exclude_activation_matmuls: bool = True


def float_nodes(path: Path, settings: Int8Settings) -> list[str]:
    """Names of the nodes left in float: ``float_op_types`` and, if asked, the MatMuls whose inputs are
    both activations (neither an initializer nor a Constant node's output)."""
    import onnx

    model = onnx.load(str(path))
    constants = {init.name for init in model.graph.initializer}
    constants |= {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    names = []
    for node in model.graph.node:
        activation_product = node.op_type == "MatMul" and not any(name in constants for name in node.input)
        if node.op_type in settings.float_op_types or (
            activation_product and settings.exclude_activation_matmuls
        ):
            names.append(node.name)
    return names


class _Batches:
    """`CalibrationDataReader` over a (N, 3, S, S) float32 array, CALIBRATION_BATCH images at a time."""

    def __init__(self, images: np.ndarray, input_name: str) -> None:
        self._iter: Iterator[dict[str, np.ndarray]] = (
            {input_name: np.ascontiguousarray(images[start : start + CALIBRATION_BATCH])}
            for start in range(0, len(images), CALIBRATION_BATCH)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:  # part of the reader protocol; MinMax calibration reads once
        raise NotImplementedError


class _PerTensorFallback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "is out-of-range for weight" not in record.getMessage()


@contextlib.contextmanager
def _without_per_tensor_fallback_warnings() -> Iterator[None]:
    """ONNX Runtime warns once per 1-D weight (every LayerNorm scale) that per-channel has no axis 1 and
    quantizes it per tensor, which is what it should do: dozens of lines a user can do nothing about."""
    root = logging.getLogger()
    quiet = _PerTensorFallback()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


def quantize_int8(
    fp32_path: Path, int8_path: Path, calibration: np.ndarray, input_name: str, settings: Int8Settings
) -> dict[str, object]:
    """Write the int8 model of ``fp32_path`` to ``int8_path``; returns what was done, for the manifest."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(_Batches, CalibrationDataReader):
        pass

    with (
        tempfile.TemporaryDirectory(dir=int8_path.parent, prefix=".quantize-") as scratch,
        _without_per_tensor_fallback_warnings(),
    ):
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        excluded = float_nodes(prepared, settings)
        quantize_static(
            str(prepared),
            str(int8_path),
            Reader(calibration, input_name),
            quant_format=QuantFormat.QDQ if settings.quant_format == "QDQ" else QuantFormat.QOperator,
            per_channel=settings.per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
        )
    return {
        "method": "onnxruntime static (quantize_static, MinMax calibration)",
        "format": settings.quant_format,
        "per_channel": settings.per_channel,
        "activations": "uint8",
        "weights": "int8",
        "float_op_types": list(settings.float_op_types),
        "float_activation_matmuls": settings.exclude_activation_matmuls,
        "nodes_left_in_float": len(excluded),
    }
