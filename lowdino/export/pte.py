"""A backbone as an ExecuTorch program (.pte) delegated to XNNPACK, in fp32 or int8.

fp32: ``torch.export`` -> ``to_edge_transform_and_lower`` with the `XnnpackPartitioner` -> ``.pte``.
int8: the same graph quantized first with PT2E (torchao's ``prepare_pt2e`` / ``convert_pt2e``) under
the `XNNPACKQuantizer`: int8 weights per output channel, int8 activations whose ranges come from
calibration on TRAINING images (as the ONNX Runtime path), symmetric as XNNPACK's int8 kernels want.

The batch is fixed at export (ExecuTorch plans a program's memory then): one image per call by default,
the deployment case, and `lowdino.export.runtime` feeds a larger batch through it in turn (a fixed batch
B > 1 gets its last chunk padded). A dynamic batch axis (an upper-bounded ``Dim``) lowered, but with the
XNNPACK rewrite below its programs refused any other batch at run time ("Error resizing tensor at input
0", executorch 1.5.1), and without the rewrite they split into 99 partitions. The batch travels inside the
.pte as a constant method (`BATCH_MAX_METHOD`), so a program is run correctly without its manifest.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import warnings
from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lowdino.errors import ConfigError

BATCH_MAX_METHOD = "lowdino_max_batch"
DELEGATE = "XNNPACK"
EXPORTER = "torch.export -> executorch.exir.to_edge_transform_and_lower (XnnpackPartitioner)"
CALIBRATION_BATCH = 16


@dataclass(frozen=True)
class PteExport:
    executorch_version: str
    max_batch: int
    delegated_calls: int  # XNNPACK subgraphs in the program
    ops_outside_delegate: list[str]  # operators left to ExecuTorch's portable kernels

    def manifest_fields(self) -> dict[str, Any]:
        return {
            "exporter": EXPORTER,
            "opset": None,
            "delegate": DELEGATE,
            "executorch_version": self.executorch_version,
            "max_batch": self.max_batch,
            "delegated_subgraphs": self.delegated_calls,
            "ops_outside_delegate": self.ops_outside_delegate,
        }


def executorch_version() -> str:
    return importlib.metadata.version("executorch")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ExecuTorch warns that its APIs are experimental and timm's shape checks warn when traced: nothing a
    user of `lowdino export` can act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else exc.__class__.__name__)[:200]


class _DelegableLayerNorm(nn.Module):
    """LayerNorm written with the operators XNNPACK takes (ExecuTorch 1.5 has no XNNPACK LayerNorm: each
    one would split the delegated graph in two and run in a portable kernel). The mean over the last axis
    is XNNPACK's global average pooling of a (rows, 1, 1, C) view."""

    def __init__(self, norm: nn.LayerNorm) -> None:
        super().__init__()
        self.eps = norm.eps
        self.weight = norm.weight
        self.bias = norm.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, 1, 1, shape[-1])
        centered = rows - rows.mean((2, 3), keepdim=True)
        scaled = centered * torch.rsqrt((centered * centered).mean((2, 3), keepdim=True) + self.eps)
        out = scaled.reshape(shape)
        if self.weight is not None:
            out = out * self.weight
        if self.bias is not None:
            out = out + self.bias
        return out


def delegable(backbone: nn.Module) -> nn.Module:
    """A copy of ``backbone`` computing the same function with operators XNNPACK delegates: attention as
    explicit matrix products and softmax (timm's fused scaled_dot_product_attention decomposes into masking
    operators XNNPACK lacks), LayerNorm as above. The parity check compares the program with the original."""
    # Contiguous weights: evaluation keeps models channels-last, which XNNPACK's layout pass cannot lower.
    copy = deepcopy(backbone).eval().to(memory_format=torch.contiguous_format)
    for module in copy.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = False  # type: ignore[assignment]  # timm's plain bool attribute
        for child_name, child in module.named_children():
            if isinstance(child, nn.LayerNorm) and len(child.normalized_shape) == 1:
                setattr(module, child_name, _DelegableLayerNorm(child))
    return copy


def _export(module: nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    with torch.no_grad():
        return torch.export.export(module, (example,), strict=False)


def _lower(program: torch.export.ExportedProgram, path: Path, batch: int) -> PteExport:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(
        program,
        partitioner=[XnnpackPartitioner()],
        constant_methods={BATCH_MAX_METHOD: batch},
    )
    delegated, outside = 0, set()
    for node in edge.exported_program().graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        name = getattr(node.target, "__name__", str(node.target))
        if "executorch_call_delegate" in name:
            delegated += 1
        elif name != "getitem":
            outside.add(name)
    with path.open("wb") as handle:
        edge.to_executorch().write_to_file(handle)
    return PteExport(executorch_version(), batch, delegated, sorted(outside))


def export_pte(backbone: nn.Module, example: torch.Tensor, path: Path) -> PteExport:
    """Write ``backbone`` (fp32) as an XNNPACK-delegated .pte taking batches of ``len(example)``."""
    backbone = delegable(backbone)
    example = example.clone()  # a normal tensor: an inference-mode one cannot be traced
    try:
        with _quiet():
            return _lower(_export(backbone, example), path, len(example))
    except ConfigError:
        raise
    except Exception as exc:  # torch.export and the lowering raise many unrelated types for one cause
        path.unlink(missing_ok=True)
        raise ConfigError(
            f"ExecuTorch export of {getattr(backbone, 'backbone_name', 'the backbone')} failed "
            f"({_first_line(exc)}); try another --image-size or --format onnx"
        ) from exc


def _calibration_batches(calibration: torch.Tensor, batch: int) -> list[torch.Tensor]:
    """Calibration chunks of exactly the program's batch (the last one filled up with images from the
    start: MinMax ranges do not change with repeated images)."""
    batches = -(-len(calibration) // batch)
    repeats = -(-batches * batch // len(calibration))
    return list(calibration.repeat(repeats, 1, 1, 1)[: batches * batch].split(batch))


def quantize_pte(
    backbone: nn.Module, example: torch.Tensor, calibration: torch.Tensor, path: Path
) -> tuple[PteExport, dict[str, Any]]:
    """Write the int8 XNNPACK program of ``backbone`` calibrated on ``calibration`` (N, 3, S, S) images;
    returns what was written and, for the manifest, how it was quantized."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    backbone = delegable(backbone)
    example, calibration = example.clone(), calibration.clone()  # out of inference mode (see export_pte)
    try:
        with _quiet():
            graph = _export(backbone, example).module()
            quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
            prepared = prepare_pt2e(graph, quantizer)  # type: ignore[arg-type]
            with torch.no_grad():
                for chunk in _calibration_batches(calibration, len(example)):
                    prepared(chunk)
            converted = convert_pt2e(prepared)
            written = _lower(_export(converted, example), path, len(example))
    except ConfigError:
        raise
    except Exception as exc:
        path.unlink(missing_ok=True)
        raise ConfigError(
            f"int8 ExecuTorch export of {getattr(backbone, 'backbone_name', 'the backbone')} failed "
            f"({_first_line(exc)}); try --format onnx --quantize int8"
        ) from exc
    details = {
        "method": "PT2E static (torchao prepare_pt2e / convert_pt2e, XNNPACKQuantizer, MinMax calibration)",
        "format": "XNNPACK int8",
        "per_channel": True,
        "activations": "int8 (asymmetric)",
        "weights": "int8 (symmetric)",
        "quantized_op_types": ["conv2d", "linear", "add", "mul", "cat", "adaptive_avg_pool2d"],
        "torchao_version": importlib.metadata.version("torchao"),
    }
    return written, details
