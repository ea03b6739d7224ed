"""Self-supervised training methods, built from a config by `build_method`."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from lowdino.config import DistillConfig, PretrainConfig
from lowdino.methods.base import Method, TrainingNeeds
from lowdino.methods.byol import BYOL
from lowdino.methods.dino.method import DINO
from lowdino.methods.distill import Distillation


def build_method(config: PretrainConfig, backbone_factory: Callable[[], nn.Module]) -> Method:
    """The method named by `config.method`, around a fresh backbone from `backbone_factory()`."""
    backbone = backbone_factory()
    if config.method == "dino":
        return DINO(
            backbone,
            out_dim=config.out_dim,
            n_crops=config.n_crops,
            hidden_dim=config.hidden_dim,
            bottleneck_dim=config.bottleneck_dim,
            use_bn_in_head=config.use_bn_in_head,
            norm_last_layer=config.norm_last_layer,
            student_temp=config.student_temp,
            center_momentum=config.center_momentum,
            centering=config.centering,
            koleo_weight=config.koleo_weight,
        )
    if config.method == "byol":
        return BYOL(
            backbone,
            projection_dim=config.byol_projection_dim,
            hidden_dim=config.byol_hidden_dim,
            n_crops=config.n_crops,
        )
    raise ValueError(f"unknown method {config.method!r}")  # unreachable: the config validates it


def training_needs(config: PretrainConfig | DistillConfig) -> TrainingNeeds:
    """What the trainer schedules and checks for the method `config` trains, as that method declares it."""
    if isinstance(config, DistillConfig):
        return Distillation.training_needs(config)
    if config.method == "byol":
        return BYOL.training_needs(config)
    return DINO.training_needs(config)


__all__ = ["BYOL", "DINO", "Distillation", "Method", "TrainingNeeds", "build_method", "training_needs"]
