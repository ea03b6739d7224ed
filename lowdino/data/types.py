"""`LabeledImages`: a whole dataset decoded once into one uint8 tensor."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class LabeledImages:
    """images: uint8 (N, 3, H, W), all one size; labels: int64 (N,) in [0, len(classes))."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str = field(default="dataset")

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(
                f"images must be uint8 (N, 3, H, W), got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must be int64 (N,), got {self.labels.dtype} {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices: torch.Tensor) -> LabeledImages:
        return LabeledImages(self.images[indices], self.labels[indices], list(self.classes), self.name)


@dataclass
class CropBatch:
    """Crops a streaming loader already cut: ``groups[i]`` uint8 (B, count_i, 3, size_i, size_i).

    For DINO, group 0 holds the two global crops of each image and group 1 its local crops; the
    batched augmentation (lowdino.augment) applies the photometric chain to them on the device.
    When the loader's workers already augmented them (CPU training, lowdino.resources), ``views``
    holds the augmented views as uint8, which the augmentation only normalises, and ``groups`` is empty.
    """

    groups: list[torch.Tensor]
    views: list[torch.Tensor] | None = None

    def __len__(self) -> int:
        first = self.groups[0] if self.groups else (self.views or [torch.empty(0)])[0]
        return int(first.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> CropBatch:
        views = None if self.views is None else [v.to(device, non_blocking=non_blocking) for v in self.views]
        return CropBatch([group.to(device, non_blocking=non_blocking) for group in self.groups], views)

    def pin_memory(self) -> CropBatch:
        views = None if self.views is None else [view.pin_memory() for view in self.views]
        return CropBatch([group.pin_memory() for group in self.groups], views)
