"""MobileViT (Mehta & Rastegari, 2022): MobileNetV2 blocks interleaved with small transformers.

timm's cvnets weights expect inputs in [0, 1] without normalisation, hence mean 0 and std 1.
"""

from __future__ import annotations

from lowdino.backbones.registry import register_backbone
from lowdino.backbones.timm_models import timm_backbone

_FACTS = {
    "mobilevit_s": "MobileViT-S; the student of the original LowDINO work",
    "mobilevit_xs": "MobileViT-XS",
    "mobilevit_xxs": "MobileViT-XXS",
}

for _name, _description in _FACTS.items():
    register_backbone(
        _name,
        family="mobilevit",
        description=_description,
        default_eval_size=256,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        timm_model_id=f"{_name}.cvnets_in1k",
    )(timm_backbone(f"{_name}.cvnets_in1k"))
