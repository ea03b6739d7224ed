"""Real images for parity checks and int8 calibration: a seeded, class-stratified sample of a folder's
TRAINING split, preprocessed exactly as `lowdino eval` does (decode at the folder's native size, then
`EvalTransform`: resize, centre crop, normalise with the backbone's mean / std).

Calibration must never see test images (the int8 scales would be fitted to the data the accuracy is
then measured on), so only ``list_split(root, "train")`` is read here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lowdino.augment import EvalTransform
from lowdino.backbones import get_spec
from lowdino.data.imagefolder import decode_files, default_image_size, list_split
from lowdino.errors import DataError


@dataclass(frozen=True)
class ImageSample:
    batch: Tensor  # (N, 3, S, S) float32, normalised: what the backbone and the artifact take
    source: str  # "<folder> (train split, N images, seed S)" or "random (fixed seed S)"
    count: int


def stratified_sample(labels: list[int], count: int, seed: int) -> list[int]:
    """Sorted indices of min(count, N) images: classes taken in turn, each in one seeded random order,
    so every class is represented as evenly as the count allows and the same seed gives the same images."""
    by_class: dict[int, list[int]] = defaultdict(list)
    for index in np.random.RandomState(seed).permutation(len(labels)).tolist():
        by_class[labels[index]].append(index)
    queues = [by_class[label] for label in sorted(by_class)]
    taken: list[int] = []
    depth = 0
    while len(taken) < min(count, len(labels)):
        taken += [queue[depth] for queue in queues if depth < len(queue)][: count - len(taken)]
        depth += 1
    return sorted(taken)


def sample_training_images(root: str, count: int, seed: int) -> Tensor:
    """uint8 (n, 3, H, W), n = min(count, split size): a stratified sample of the training split."""
    split = list_split(root, "train")
    if not split.files:
        raise DataError(f"{root} has no training images; pass an image folder with class sub-folders")
    files = [split.files[i] for i in stratified_sample([entry.label for entry in split.files], count, seed)]
    return decode_files(files, default_image_size(split.probe), workers=4)


def preprocess(images: Tensor, backbone: str, image_size: int) -> Tensor:
    spec = get_spec(backbone)
    with torch.inference_mode():
        return EvalTransform(image_size, spec.mean, spec.std)(images).float().contiguous()


def image_sample(root: str | None, count: int, seed: int, backbone: str, image_size: int) -> ImageSample:
    """Real training images from ``root``; without a folder, a fixed-seed normal batch (named as such)."""
    if root is None:
        generator = torch.Generator().manual_seed(seed)
        batch = torch.randn(count, 3, image_size, image_size, generator=generator)
        return ImageSample(batch, f"random normal batch (no image folder given; seed {seed})", count)
    images = sample_training_images(root, count, seed)
    batch = preprocess(images, backbone, image_size)
    return ImageSample(batch, f"{root} (train split, {len(batch)} images, seed {seed})", len(batch))
