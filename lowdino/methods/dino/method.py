"""DINO: a student matches an EMA teacher across crops (Caron et al. 2021)."""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from typing import Any, cast

import torch
from torch import nn

from lowdino.backbones import feature_dim
from lowdino.config.pretrain import Centering, PretrainConfig
from lowdino.methods.base import BackboneFactory, CollapseWatch, TrainingNeeds, weight_decay_groups
from lowdino.methods.dino.head import DINOHead
from lowdino.methods.dino.koleo import KoLeoLoss
from lowdino.methods.dino.loss import DINOLoss
from lowdino.methods.ema import ema_update
from lowdino.methods.multicrop import MultiCropStudent, MultiCropWrapper, ema_teacher_needs


def settle_steps(config: PretrainConfig) -> int:
    """Steps until the center (an EMA of the teacher's batch mean, from zero) is within 5 % of it:
    3 time constants, 30 steps at DINO's momentum 0.9; Sinkhorn-Knopp balances each batch at once."""
    if config.centering != "center":
        return 0
    return math.ceil(round(3 / (1 - config.center_momentum), 6))  # 3 / 0.1 is 30.000000000000004


class DINO(MultiCropStudent):
    """Student and teacher (backbone + DINOHead) with the DINO loss.

    The teacher starts as an exact copy of the student, receives no gradients, sees only the 2 global
    crops and follows the student by EMA (`update_target`).
    """

    @staticmethod
    def training_needs(config: PretrainConfig) -> TrainingNeeds:
        """EMA teacher, sharpening temperature warm-up, last layer frozen early, collapse watched."""
        return replace(
            ema_teacher_needs(config),
            freeze_last_layer_epochs=config.freeze_last_layer,
            # The cross-entropy alone: a uniform collapse puts it at ln(out_dim), whatever KoLeo adds.
            collapse=CollapseWatch(
                loss_metric="dino_loss", out_dim=config.out_dim, settle_steps=settle_steps(config)
            ),
            # KoLeo's nearest neighbour is another image of the same global crop.
            min_batch=2 if config.koleo_weight > 0 else 1,
        )

    @classmethod
    def from_config(
        cls, config: PretrainConfig, backbone_factory: BackboneFactory, *, num_classes: int | None = None
    ) -> DINO:
        """DINO around `backbone_factory()` (self-supervised: `num_classes` is not used)."""
        return cls(
            backbone_factory(),
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

    # No defaults: PretrainConfig holds them (from_config), so a module built directly cannot disagree.
    def __init__(
        self,
        backbone: nn.Module,
        *,
        out_dim: int,
        n_crops: int,
        hidden_dim: int,
        bottleneck_dim: int,
        use_bn_in_head: bool,
        norm_last_layer: bool,
        student_temp: float,
        center_momentum: float,
        centering: Centering,
        koleo_weight: float,
    ) -> None:
        head = DINOHead(
            feature_dim(backbone),
            out_dim,
            hidden_dim=hidden_dim,
            bottleneck_dim=bottleneck_dim,
            use_bn=use_bn_in_head,
            norm_last_layer=norm_last_layer,
        )
        super().__init__(MultiCropWrapper(backbone, head))
        self.teacher = copy.deepcopy(self.student)
        self.teacher.requires_grad_(False)
        self.loss = DINOLoss(
            out_dim,
            n_crops=n_crops,
            student_temp=student_temp,
            center_momentum=center_momentum,
            centering=centering,
        )
        self.koleo_weight = koleo_weight
        self.koleo = KoLeoLoss()

    def parameter_groups(self) -> list[dict[str, Any]]:
        return weight_decay_groups(self.student.named_parameters())

    def training_loss(
        self,
        crops: list[torch.Tensor],
        *,
        step: int,
        teacher_temp: float,
        labels: torch.Tensor | None = None,  # self-supervised: labels are never used
    ) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.no_grad():
            teacher_output = self.teacher(crops[:2])
        if not self.koleo_weight:
            student_output = self._student_forward(crops)
            dino_loss, stats = self.loss(student_output, teacher_output, teacher_temp=teacher_temp)
            stats["dino_loss"] = float(dino_loss.detach())
            return dino_loss, stats
        student_output, student_features = self._student_forward(crops, return_features=True)
        dino_loss, stats = self.loss(student_output, teacher_output, teacher_temp=teacher_temp)
        # DINOv2: KoLeo on the backbone features of each global crop separately.
        global_features = student_features[: 2 * crops[0].shape[0]].chunk(2)
        koleo_loss = sum(self.koleo(features) for features in global_features)
        stats.update(dino_loss=float(dino_loss.detach()), koleo_loss=float(koleo_loss.detach()))
        return dino_loss + self.koleo_weight * koleo_loss, stats

    def update_target(self, momentum: float) -> None:
        ema_update(self.teacher, self.student, momentum)

    def cancel_last_layer_gradients(self, epoch: float, freeze_epochs: float) -> None:
        if epoch >= freeze_epochs:
            return
        head = cast(DINOHead, self.student.head)
        for param in head.last_layer.parameters():
            param.grad = None

    def eval_backbone(self) -> nn.Module:
        return self.teacher.backbone
