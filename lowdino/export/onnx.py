"""A backbone as an ONNX graph: torch's exporter, then `onnx.checker`.

torch.export-based exporter first (``dynamo=True``, the supported path; it needs onnxscript); where it
cannot trace a network, the TorchScript-based exporter, and the manifest says which one wrote the file.
The input is a normalised float32 batch ``images`` (B, 3, S, S) with B dynamic; the output is
``features`` (B, D).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lowdino.errors import ConfigError

INPUT_NAME = "images"
OUTPUT_NAME = "features"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnnxExport:
    exporter: str  # "torch.export" or "torchscript"
    opset: int
    fallback_reason: str | None = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else exc.__class__.__name__)[:200]


def _dynamo_export(backbone: nn.Module, example: torch.Tensor, path: Path, opset: int, dynamic: bool) -> None:
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    torch.onnx.export(
        backbone,
        (example,),
        str(path),
        dynamo=True,
        verbose=False,
        external_data=False,  # one self-contained file (every backbone here is far below 2 GB)
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=shapes,
        opset_version=opset,
    )


def _torchscript_export(
    backbone: nn.Module, example: torch.Tensor, path: Path, opset: int, dynamic: bool
) -> None:
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notice of the TorchScript-based exporter
        torch.onnx.export(
            backbone,
            (example,),
            str(path),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=opset,
        )


def export_onnx(
    backbone: nn.Module, example: torch.Tensor, path: Path, *, opset: int, dynamic: bool
) -> OnnxExport:
    """Write ``backbone`` traced on ``example`` (B >= 2, so that the batch axis is not specialised) to ``path``."""
    import onnx

    backbone = backbone.eval()
    fallback: str | None = None
    try:
        _dynamo_export(backbone, example, path, opset, dynamic)
        exporter = "torch.export"
    except Exception as exc:  # the exporter wraps every tracing failure in its own error types
        fallback = _first_line(exc)
        log.warning(
            "torch.export-based ONNX export failed (%s); trying the TorchScript-based exporter", fallback
        )
        path.unlink(missing_ok=True)
        try:
            _torchscript_export(backbone, example, path, opset, dynamic)
        except Exception as second:
            raise ConfigError(
                f"ONNX export of {getattr(backbone, 'backbone_name', 'the backbone')} failed with both exporters "
                f"({fallback}; {_first_line(second)}); try another --image-size or --format torchscript"
            ) from second
        exporter = "torchscript"
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path), load_external_data=False)
    written = next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), opset)
    return OnnxExport(exporter=exporter, opset=int(written), fallback_reason=fallback)
