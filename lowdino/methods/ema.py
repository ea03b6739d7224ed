"""Exponential moving average of a network's weights (DINO teacher, BYOL target)."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * source, parameter by parameter.

    Buffers (BatchNorm running statistics) are left alone: as in DINO, the teacher's statistics come
    from its own forward passes on the global crops.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"EMA momentum must lie in [0, 1], got {momentum}")
    target_params: list[torch.Tensor] = list(target.parameters())
    source_params: list[torch.Tensor] = list(source.parameters())
    if len(target_params) != len(source_params):
        raise ValueError("EMA target and source have different parameter lists")
    torch._foreach_mul_(target_params, momentum)
    torch._foreach_add_(target_params, [p.detach() for p in source_params], alpha=1.0 - momentum)
