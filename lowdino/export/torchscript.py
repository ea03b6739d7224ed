"""A backbone as TorchScript (``torch.jit.trace``): runs from C++ or Python without LowDINO's code.

Tracing records the operations of one forward pass; the backbones here have no data-dependent control
flow, and the parity check on real images would catch one that had.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn


def export_torchscript(backbone: nn.Module, example: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about Python scalars in timm's shape checks
        with torch.inference_mode(False), torch.no_grad():
            traced = torch.jit.trace(backbone.eval(), (example,), check_trace=False)
    traced.save(str(path))
