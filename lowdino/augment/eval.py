"""Deterministic evaluation preprocessing on batches: resize, centre crop, normalise."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lowdino.augment.multicrop import IMAGENET_MEAN, IMAGENET_STD, Normalize, to_unit_float


class EvalTransform(nn.Module):
    """uint8 (B, 3, H, W) -> float (B, 3, S, S): shorter side to S (antialiased bilinear), centre
    crop, (x / 255 - mean) / std."""

    def __init__(
        self,
        image_size: int,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.normalize = Normalize(mean, std)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = to_unit_float(images)
        height, width = x.shape[-2:]
        size = self.image_size
        if (height, width) != (size, size):
            scale = size / min(height, width)
            new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
            x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
            top, left = (new_h - size) // 2, (new_w - size) // 2
            x = x[:, :, top : top + size, left : left + size].clamp(0, 1)
        return self.normalize(x)
