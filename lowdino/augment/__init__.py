"""Batched augmentation on the training device: DINO multi-crop, BYOL two views, eval transform."""

from lowdino.augment.eval import EvalTransform
from lowdino.augment.multicrop import MultiCropAugmentation, Normalize, ViewAugmentation, to_unit_float
from lowdino.augment.ops import blur_kernel_size

__all__ = [
    "EvalTransform",
    "MultiCropAugmentation",
    "Normalize",
    "ViewAugmentation",
    "blur_kernel_size",
    "to_unit_float",
]
