"""DINOv2 ViT-S/14 (Oquab et al., 2023): the reference the small backbones are compared with.

Built at img_size=224 with dynamic_img_size=True, so any side that is a multiple of 14 works; the
position embeddings (trained at 518 px) are resampled bicubically for other sizes.
"""

from __future__ import annotations

import torch
from torch import nn

from lowdino.backbones.registry import register_backbone
from lowdino.backbones.timm_models import timm_backbone


def _vit_state_filter(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    # timm's filter resamples pos_embed to the model's grid and converts Meta's original checkpoint
    # layout, so both timm and facebookresearch/dinov2 files load.
    from timm.models.vision_transformer import checkpoint_filter_fn

    return checkpoint_filter_fn(state, model)  # type: ignore[arg-type]


register_backbone(
    "dinov2_vits14",
    family="dinov2",
    description="DINOv2 ViT-S/14 (LVD-142M weights); the reference the small networks are compared with",
    input_multiple=14,
    min_input_size=14,
    timm_model_id="vit_small_patch14_dinov2.lvd142m",
    state_dict_filter=_vit_state_filter,
)(timm_backbone("vit_small_patch14_dinov2.lvd142m", img_size=224, dynamic_img_size=True))
