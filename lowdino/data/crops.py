"""Batched RandomResizedCrop: per-crop random boxes, cropped and resized in one roi_align call.

roi_align reads K crops straight out of the B source images (no copy per crop) and averages
ceil(box / output) bilinear samples per output pixel, so shrinking a large box is antialiased.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torchvision.ops import roi_align

_ATTEMPTS = 10


@dataclass(frozen=True)
class CropSpec:
    """``count`` random-resized crops of ``size`` px with area fraction in ``scale``."""

    size: int
    scale: tuple[float, float]
    count: int


def multicrop_specs(
    global_size: int,
    local_size: int,
    n_local: int,
    global_scale: tuple[float, float],
    local_scale: tuple[float, float],
) -> tuple[CropSpec, ...]:
    """DINO's crops: two globals (one group, so they share a tensor) and ``n_local`` locals."""
    specs = [CropSpec(global_size, global_scale, 2)]
    if n_local:
        specs.append(CropSpec(local_size, local_scale, n_local))
    return tuple(specs)


def sample_crop_boxes(
    count: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """torchvision's RandomResizedCrop sampling, vectorised -> boxes (count, 4) as x1, y1, x2, y2.

    Area fraction ~ U(scale), log aspect ~ U(log ratio); of 10 draws per crop the first that fits
    the image is used, else the largest centred box with the clamped aspect (as torchvision).
    """
    area = height * width
    target = area * torch.empty(count, _ATTEMPTS, device=device).uniform_(*scale)
    log_ratio = torch.empty(count, _ATTEMPTS, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    aspect = torch.exp(log_ratio)
    box_w = torch.sqrt(target * aspect)
    box_h = torch.sqrt(target / aspect)
    fits = (box_w <= width) & (box_h <= height)
    first = fits.float().argmax(dim=1, keepdim=True)  # index of the first fitting draw (0 if none)
    box_w, box_h = box_w.gather(1, first).squeeze(1), box_h.gather(1, first).squeeze(1)

    # Fallback: centred box of the whole image clamped to the aspect range.
    image_ratio = width / height
    if image_ratio < ratio[0]:
        fallback_w, fallback_h = float(width), width / ratio[0]
    elif image_ratio > ratio[1]:
        fallback_w, fallback_h = height * ratio[1], float(height)
    else:
        fallback_w, fallback_h = float(width), float(height)
    any_fits = fits.any(dim=1)
    box_w = torch.where(any_fits, box_w, torch.full_like(box_w, fallback_w))
    box_h = torch.where(any_fits, box_h, torch.full_like(box_h, fallback_h))
    offset = torch.rand(count, 2, device=device)
    offset = torch.where(any_fits[:, None], offset, torch.full_like(offset, 0.5))
    x1 = offset[:, 0] * (width - box_w)
    y1 = offset[:, 1] * (height - box_h)
    return torch.stack([x1, y1, x1 + box_w, y1 + box_h], dim=1)


def resized_crops(images: torch.Tensor, boxes: torch.Tensor, source: torch.Tensor, size: int) -> torch.Tensor:
    """Crop box k of image source[k] and resize it to size x size.

    images: float (B, C, H, W); boxes: (K, 4) x1, y1, x2, y2 in pixels; source: int (K,) -> (K, C, size, size).
    """
    rois = torch.cat([source.to(boxes.dtype)[:, None], boxes], dim=1)
    return roi_align(
        images, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True
    )
