"""One augmented view per image: what a distillation step shows both the student and the teacher."""

from __future__ import annotations

import torch
from torch import nn

from lowdino.augment.multicrop import ViewAugmentation, normalize_views, to_unit_float
from lowdino.data.crops import CropSpec
from lowdino.data.types import CropBatch


class SingleViewAugmentation(nn.Module):
    """uint8 (B, 3, H, W) -> [one augmented, normalised view (B, 3, size, size)]."""

    def __init__(
        self, size: int, scale: tuple[float, float], mean: tuple[float, ...], std: tuple[float, ...]
    ) -> None:
        super().__init__()
        self.view = ViewAugmentation(size, scale, blur_p=0.5, mean=mean, std=std)

    def specs(self) -> tuple[CropSpec, ...]:
        return (CropSpec(self.view.size, self.view.scale, 1),)

    @torch.no_grad()
    def forward(self, images: torch.Tensor | CropBatch) -> list[torch.Tensor]:
        if isinstance(images, CropBatch):
            if images.views is not None:  # augmented by the loader workers (uint8)
                return normalize_views(images.views, self.view.normalize)
            return self.augment_crops(images)
        return [self.view(to_unit_float(images))]

    @torch.no_grad()
    def augment_crops(self, batch: CropBatch, *, quantize: bool = False) -> list[torch.Tensor]:
        """The view's photometric chain on crops a streaming loader cut (``quantize``: uint8 out)."""
        return [self.view.photometric(batch.groups[0][:, 0], quantize=quantize)]
