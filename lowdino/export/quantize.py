"""int8 static quantization with ONNX Runtime, calibrated on training images.

`quant_pre_process` first (shape inference and graph fusion, which ONNX Runtime asks for before
quantizing), then `quantize_static` in QDQ format: uint8 activations and int8 weights (the U8S8 pair
that x86 VNNI instructions take), weights per output channel (one scale per convolution filter keeps
depthwise convolutions, whose filters differ in range by orders of magnitude, accurate).

Activation ranges come from MinMax calibration on a sample of the TRAINING split: the test split the
accuracy is then measured on never shapes the scales.

What is left in float, and why: matrix products between two activations (attention's Q·Kᵀ and A·V in
MobileViT / ViT blocks) would need both operands re-quantized on every call and pull their Softmax into
int8 (ONNX Runtime fuses DQ→Softmax→Q into QLinearSoftmax, slower than the float one); only
convolutions and products with a constant weight matrix are quantized.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QUANTIZED_OP_TYPES = ("Conv", "MatMul", "Gemm")
CALIBRATION_BATCH = 16


@dataclass(frozen=True)
class Int8Settings:
    quant_format: str = "QDQ"
    per_channel: bool = True
    op_types: tuple[str, ...] = QUANTIZED_OP_TYPES
    exclude_activation_matmuls: bool = True


def activation_matmuls(path: Path) -> list[str]:
    """Names of the MatMul nodes whose inputs are both activations (no initializer or constant)."""
    import onnx

    model = onnx.load(str(path))
    constants = {init.name for init in model.graph.initializer}
    constants |= {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and not any(name in constants for name in node.input)
    ]


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


def quantize_int8(
    fp32_path: Path, int8_path: Path, calibration: np.ndarray, input_name: str, settings: Int8Settings
) -> dict[str, object]:
    """Write the int8 model of ``fp32_path`` to ``int8_path``; returns what was done, for the manifest."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(_Batches, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory(dir=int8_path.parent, prefix=".quantize-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        excluded = activation_matmuls(prepared) if settings.exclude_activation_matmuls else []
        quantize_static(
            str(prepared),
            str(int8_path),
            Reader(calibration, input_name),
            quant_format=QuantFormat.QDQ if settings.quant_format == "QDQ" else QuantFormat.QOperator,
            per_channel=settings.per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(settings.op_types),
            nodes_to_exclude=excluded,
        )
    return {
        "method": "onnxruntime static (quantize_static, MinMax calibration)",
        "format": settings.quant_format,
        "per_channel": settings.per_channel,
        "activations": "uint8",
        "weights": "int8",
        "op_types": list(settings.op_types),
        "excluded_activation_matmuls": len(excluded),
    }
