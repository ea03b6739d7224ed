"""A procedurally generated 10-class dataset: learnable, deterministic, needs no download.

Class c = (shape c % 5, fill c // 5): shapes disc, square, triangle, ring, cross; fills solid or
striped. Everything else is nuisance and random per image: position, scale, rotation, the colours
(the class is never a colour), a background gradient, clutter rectangles under the shape and pixel
noise. Colour statistics therefore say little about the class, so random-init features do poorly
on kNN while a network that learns shapes and textures does well.
"""

from __future__ import annotations

import math

import torch

from lowdino.data.types import LabeledImages

SHAPES = ("disc", "square", "triangle", "ring", "cross")
FILLS = ("solid", "striped")
CLASSES = [f"{shape}-{fill}" for fill in FILLS for shape in SHAPES]
_CHUNK = 512


def _shape_masks(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(B, S, S) shape-local coordinates (unit = shape radius) -> (5, B, S, S) boolean masks."""
    radius = torch.sqrt(u * u + v * v)
    disc = radius <= 1.0
    square = torch.maximum(u.abs(), v.abs()) <= 0.8
    triangle = (v <= 0.7) & (u.abs() <= (v + 0.9) * 0.62)
    ring = (radius <= 1.0) & (radius >= 0.55)
    cross = ((u.abs() <= 0.3) & (v.abs() <= 1.0)) | ((v.abs() <= 0.3) & (u.abs() <= 1.0))
    return torch.stack([disc, square, triangle, ring, cross])


def _rand(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=generator)


def _render(labels: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """labels (B,) -> uint8 images (B, 3, size, size)."""
    batch = labels.shape[0]
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")  # (S, S)
    xs, ys = xs.expand(batch, size, size), ys.expand(batch, size, size)

    # Background: dark or light base colour plus a random linear gradient.
    dark = _rand(generator, batch) < 0.5
    base = torch.where(
        dark[:, None], _rand(generator, batch, 3) * 0.4, 0.6 + _rand(generator, batch, 3) * 0.4
    )
    slope = (_rand(generator, batch, 3, 2) - 0.5) * 0.3
    image = (
        base[:, :, None, None]
        + slope[..., 0, None, None] * (xs[:, None] / size - 0.5)
        + slope[..., 1, None, None] * (ys[:, None] / size - 0.5)
    )

    # Clutter: small rectangles of random colours, drawn under the shape.
    for _ in range(4):
        centre = _rand(generator, batch, 2) * size
        half = (0.04 + _rand(generator, batch, 2) * 0.1) * size
        box = ((xs - centre[:, 0, None, None]).abs() <= half[:, 0, None, None]) & (
            (ys - centre[:, 1, None, None]).abs() <= half[:, 1, None, None]
        )
        colour = _rand(generator, batch, 3)
        image = torch.where(box[:, None], colour[:, :, None, None], image)

    # The shape, in rotated coordinates scaled to its radius.
    centre = (0.3 + _rand(generator, batch, 2) * 0.4) * size
    radius = (0.2 + _rand(generator, batch) * 0.15) * size
    angle = _rand(generator, batch) * 2 * math.pi
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    dx, dy = xs - centre[:, 0, None, None], ys - centre[:, 1, None, None]
    u = (cos * dx + sin * dy) / radius[:, None, None]
    v = (-sin * dx + cos * dy) / radius[:, None, None]
    masks = _shape_masks(u, v)
    mask = masks[labels % len(SHAPES), torch.arange(batch)]  # (B, S, S)

    # Foreground contrasts with the background; stripes alternate it with a second colour.
    foreground = torch.where(
        dark[:, None], 0.55 + _rand(generator, batch, 3) * 0.45, _rand(generator, batch, 3) * 0.45
    )
    second = torch.where(
        dark[:, None], _rand(generator, batch, 3) * 0.3, 0.7 + _rand(generator, batch, 3) * 0.3
    )
    stripe_angle = _rand(generator, batch) * math.pi
    period = 0.45 + _rand(generator, batch) * 0.15  # in shape radii: 2-3 stripes across it
    phase = (
        torch.cos(stripe_angle)[:, None, None] * u + torch.sin(stripe_angle)[:, None, None] * v
    ) / period[:, None, None]
    stripe_on = torch.sin(2 * math.pi * phase) > 0
    striped = (labels // len(SHAPES) == 1)[:, None, None]
    fill_first = ~striped | stripe_on
    fill = torch.where(fill_first[:, None], foreground[:, :, None, None], second[:, :, None, None])
    image = torch.where(mask[:, None], fill, image)

    image = image + torch.randn(image.shape, generator=generator) * 0.04
    return (image.clamp(0, 1) * 255).round().to(torch.uint8)


def make_synthetic(n: int, *, seed: int, image_size: int = 32, name: str = "synthetic") -> LabeledImages:
    """``n`` images, labels balanced (n // 10 or n // 10 + 1 per class), identical for equal seeds."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % len(CLASSES)
    labels = labels[torch.randperm(n, generator=generator)]
    images = torch.empty((n, 3, image_size, image_size), dtype=torch.uint8)
    for start in range(0, n, _CHUNK):
        images[start : start + _CHUNK] = _render(labels[start : start + _CHUNK], image_size, generator)
    return LabeledImages(images, labels, list(CLASSES), name)


def synthetic_split(split: str, *, synthetic_size: int, seed: int, image_size: int = 32) -> LabeledImages:
    """Train: ``synthetic_size`` images; test: a quarter as many, from a different seed."""
    if split == "train":
        return make_synthetic(synthetic_size, seed=seed * 2, image_size=image_size, name="synthetic")
    return make_synthetic(
        max(10, synthetic_size // 4), seed=seed * 2 + 1, image_size=image_size, name="synthetic"
    )
