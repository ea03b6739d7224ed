"""Photometric operations on float images in [0, 1], each applied to a random subset of the batch.

Gated ops draw one Bernoulli(p) per image and return the mask, so callers (and tests) know which
images were changed, and costly ops (blur) only run on the selected images. Flip, grayscale and
solarize write the selected images in place: on the CPU these passes are bound by memory traffic,
and a full-batch torch.where reads and writes every image to change a fifth of them.
"""

from __future__ import annotations

import math

import torch
from kornia.filters import gaussian_blur2d

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as PIL and torchvision


def draw(batch: int, p: float, device: torch.device) -> torch.Tensor:
    """Bernoulli(p) mask (batch,); exact for p in {0, 1}."""
    if p >= 1.0:
        return torch.ones(batch, dtype=torch.bool, device=device)
    if p <= 0.0:
        return torch.zeros(batch, dtype=torch.bool, device=device)
    return torch.rand(batch, device=device) < p


def random_hflip(x: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip a Bernoulli(p) subset of ``x`` in place."""
    mask = draw(x.shape[0], p, x.device)
    chosen = mask.nonzero().squeeze(1)
    if chosen.numel():
        x[chosen] = x[chosen].flip(-1)
    return x, mask


def random_grayscale(x: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a Bernoulli(p) subset of ``x`` grey (three equal channels) in place."""
    mask = draw(x.shape[0], p, x.device)
    chosen = mask.nonzero().squeeze(1)
    if chosen.numel():
        weights = torch.tensor(GRAY_WEIGHTS, device=x.device, dtype=x.dtype)[None, :, None, None]
        x[chosen] = (x[chosen] * weights).sum(dim=1, keepdim=True).expand(-1, x.shape[1], -1, -1)
    return x, mask


def blur_kernel_size(side: int, sigma: float = 2.0) -> int:
    """2 * ceil(3 sigma) + 1, clipped to the largest odd size that fits in the side, at least 3.

    +-3 sigma holds 99.7 % of a Gaussian's mass, so sigma means the same at every resolution, as with
    DINO's PIL blur (radius = sigma, whatever the image size). A kernel sized from the image instead
    (10 % of the side) is 3x3 at 32 and 16 px, where every sigma from 0.5 to 2 gives nearly the same
    blur. Clipping only binds below 13 px for sigma 2; there the kernel covers the whole image.
    """
    full = 2 * math.ceil(3 * sigma) + 1
    largest_odd = side if side % 2 else side - 1
    return max(3, min(full, largest_odd))


def random_gaussian_blur(
    x: torch.Tensor, p: float, sigma: tuple[float, float] = (0.1, 2.0)
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blur a Bernoulli(p) subset of ``x`` in place with per-image sigma ~ U(sigma); see `blur_kernel_size`."""
    mask = draw(x.shape[0], p, x.device)
    chosen = mask.nonzero().squeeze(1)
    if chosen.numel() == 0:
        return x, mask
    sigmas = torch.empty(chosen.numel(), device=x.device, dtype=x.dtype).uniform_(*sigma)
    # One kernel for the batch, sized for the largest sigma it may hold: kornia normalises each
    # image's kernel, so the extra taps of a smaller sigma only add (near-)zero weights. Grouping the
    # images by their own kernel size cut the blur's arithmetic but, at the photometric chain's chunk
    # of a few crops, made it slower overall (one kornia call per size: 13.1 against 9.5 ms per image).
    kernel = blur_kernel_size(x.shape[-1], sigma[1])
    # Written into the chosen images only: a copy of the whole chunk was a pass over every crop.
    x[chosen] = gaussian_blur2d(x[chosen], (kernel, kernel), sigmas[:, None].expand(-1, 2).contiguous())
    return x, mask


def random_solarize(x: torch.Tensor, p: float, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Invert pixels at or above ``threshold`` (PIL's ImageOps.solarize(img, 128)) on a Bernoulli(p)
    subset, in place."""
    mask = draw(x.shape[0], p, x.device)
    chosen = mask.nonzero().squeeze(1)
    if chosen.numel():
        selected = x[chosen]
        x[chosen] = torch.where(selected >= threshold, 1.0 - selected, selected)
    return x, mask
