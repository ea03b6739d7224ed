"""Image folders whose every image says which one it is: image i is one flat colour, red = 5 i.

JPEG keeps a flat colour within a level or two, so the mean red of any crop of image i recovers i
after decoding, cropping and collating by real DataLoader workers: tests can check that each
image arrives exactly once without trusting the code under test for the identity.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lowdino.data.types import CropBatch

STEP = 5  # red levels between neighbouring images: up to 51 images


def write_coded_folder(root: Path, count: int, *, classes: int = 2, size: tuple[int, int] = (40, 30)) -> Path:
    """root/c<k>/<i>.jpg for i < count, class k = i % classes; returns root."""
    assert count * STEP <= 255
    for index in range(count):
        folder = root / f"c{index % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        pixels[..., 0] = index * STEP
        pixels[..., 1] = 128
        Image.fromarray(pixels).save(folder / f"{index:03d}.jpg", quality=95)
    return root


def image_ids(batch: CropBatch) -> list[int]:
    """The image index of each image of a batch, read from its first crop."""
    red = batch.groups[0][:, 0, 0].float().mean(dim=(1, 2))
    return [int(value) for value in torch.round(red / STEP)]


def all_ids(batches: Iterable[tuple[CropBatch, torch.Tensor]]) -> list[list[int]]:
    return [image_ids(batch) for batch, _labels in batches]
