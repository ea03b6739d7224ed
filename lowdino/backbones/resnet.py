"""ResNets: timm's ResNet-18 / ResNet-50 references and the original work's 5 M ResNet."""

from __future__ import annotations

from lowdino.backbones.registry import register_backbone
from lowdino.backbones.resnet5m import ResNet5M
from lowdino.backbones.timm_models import timm_backbone

register_backbone(
    "resnet5m",
    family="resnet",
    description="The original LowDINO 5 M ResNet: 3x64, 1x128/2, 5x128, 1x512/2 basic blocks",
)(ResNet5M)

register_backbone(
    "resnet18",
    family="resnet",
    description="ResNet-18 (timm a1_in1k weights); a reference beyond the small-model budget",
    timm_model_id="resnet18.a1_in1k",
)(timm_backbone("resnet18.a1_in1k"))

register_backbone(
    "resnet50",
    family="resnet",
    description="ResNet-50 (timm a1_in1k weights); a teacher for distillation",
    timm_model_id="resnet50.a1_in1k",
)(timm_backbone("resnet50.a1_in1k"))
