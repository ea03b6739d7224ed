"""BatchNorm -> SyncBatchNorm for multi-GPU training, keeping timm's fused norm + activation layers.

timm's `BatchNormAct2d` (MobileViT, MobileNetV2) applies its activation inside the norm layer.
`torch.nn.SyncBatchNorm.convert_sync_batchnorm` replaces it with a plain SyncBatchNorm that keeps the
`act` child but never calls it, so every such activation silently disappears (mobilevit_xxs: 25,
mobilenetv2_100: 35). timm's converter maps it to `SyncBatchNormAct`, which does call it; for every
other BatchNorm it does what torch's does.
"""

from __future__ import annotations

from timm.layers import convert_sync_batchnorm as _timm_convert_sync_batchnorm
from torch import nn


def sync_batchnorm(module: nn.Module) -> nn.Module:
    """`module` with every BatchNorm (plain or norm + activation) synchronised across processes.

    Children are replaced in place, so the returned module is `module` itself unless `module` is a
    BatchNorm layer; parameters and running statistics are shared with the original, not copied.
    """
    return _timm_convert_sync_batchnorm(module)


def sync_batchnorm_children(parent: nn.Module) -> None:
    """Convert each network a training method holds (student, teacher, BYOL predictor, distillation
    student and classifier) in place: the method keeps its attributes and any references to them."""
    for name, child in list(parent.named_children()):
        converted = sync_batchnorm(child)
        if converted is not child:
            setattr(parent, name, converted)
