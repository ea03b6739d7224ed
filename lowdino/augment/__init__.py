"""Batched augmentation on the training device: DINO multi-crop, BYOL two views, distillation's single
view, eval transform."""

from lowdino.augment.eval import EvalTransform
from lowdino.augment.multicrop import MultiCropAugmentation, Normalize, ViewAugmentation, to_unit_float
from lowdino.augment.ops import blur_kernel_size
from lowdino.augment.singleview import SingleViewAugmentation

__all__ = [
    "EvalTransform",
    "MultiCropAugmentation",
    "Normalize",
    "SingleViewAugmentation",
    "ViewAugmentation",
    "blur_kernel_size",
    "to_unit_float",
]
