"""Resizing whole uint8 datasets: shorter side to ``size``, then a centre crop to a square."""

from __future__ import annotations

import torch
import torch.nn.functional as F

_CHUNK = 1024  # images per interpolate call, to bound the float copy


def resize_center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> uint8 (N, 3, size, size), antialiased when shrinking."""
    height, width = images.shape[-2:]
    if (height, width) == (size, size):
        return images
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    out = torch.empty((images.shape[0], 3, size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], _CHUNK):
        chunk = images[start : start + _CHUNK].float()
        chunk = F.interpolate(
            chunk, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False
        )
        out[start : start + _CHUNK] = chunk[:, :, top : top + size, left : left + size].round().clamp(0, 255)
    return out
