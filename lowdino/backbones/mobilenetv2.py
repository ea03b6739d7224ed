"""MobileNetV2 (Sandler et al., 2018) at width multipliers 0.35, 0.75 and 1.0 (timm).

timm only publishes ImageNet weights for width 1.0; the narrower ones start from random init or
from a --weights file.
"""

from __future__ import annotations

from lowdino.backbones.registry import register_backbone
from lowdino.backbones.timm_models import timm_backbone

register_backbone(
    "mobilenetv2_035",
    family="mobilenetv2",
    description="MobileNetV2 width 0.35; the smallest network here",
    timm_model_id="mobilenetv2_035",
)(timm_backbone("mobilenetv2_035"))

register_backbone(
    "mobilenetv2_075",
    family="mobilenetv2",
    description="MobileNetV2 width 0.75",
    timm_model_id="mobilenetv2_075",
)(timm_backbone("mobilenetv2_075"))

register_backbone(
    "mobilenetv2_100",
    family="mobilenetv2",
    description="MobileNetV2 width 1.0 (timm ra_in1k weights)",
    timm_model_id="mobilenetv2_100.ra_in1k",
)(timm_backbone("mobilenetv2_100.ra_in1k"))
