"""BYOL: an online network predicts an EMA target network's projection of another view (Grill et al. 2020)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lowdino.backbones import feature_dim
from lowdino.config import PretrainConfig
from lowdino.methods.base import BackboneFactory, TrainingNeeds, weight_decay_groups
from lowdino.methods.ema import ema_update
from lowdino.methods.multicrop import MultiCropStudent, MultiCropWrapper, ema_teacher_needs


class MLPHead(nn.Module):
    """BYOL projector / predictor: Linear -> BatchNorm -> ReLU -> Linear.  (B, D) -> (B, P)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def byol_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Normalised MSE: || p/||p|| - z/||z|| ||^2 = 2 - 2 cos(p, z), averaged over the batch.

    Shapes: prediction (B, P) from the online predictor, target (B, P) from the target projector.
    """
    prediction = F.normalize(prediction.float(), dim=-1)
    target = F.normalize(target.float().detach(), dim=-1)
    return (2.0 - 2.0 * (prediction * target).sum(dim=-1)).mean()


class BYOL(MultiCropStudent):
    """Online network (backbone + projector + predictor) and EMA target (backbone + projector).

    Symmetric loss over the two global views: each view's prediction regresses the target projection
    of the other view. Local crops, when present, are predicted against both global targets
    (multi-crop BYOL); every (view, other global view) pair weighs the same.
    """

    @staticmethod
    def training_needs(config: PretrainConfig) -> TrainingNeeds:
        """An EMA target; no prototype layer to freeze, and no loss value that marks a collapse."""
        # BYOL has no softmax, so it ignores the temperature; its schedule is still built and logged as
        # for DINO, so that both methods' metrics keep the same series (as before the needs were declared).
        return ema_teacher_needs(config)

    @classmethod
    def from_config(
        cls, config: PretrainConfig, backbone_factory: BackboneFactory, *, num_classes: int | None = None
    ) -> BYOL:
        """BYOL around `backbone_factory()` (self-supervised: `num_classes` is not used)."""
        return cls(
            backbone_factory(),
            projection_dim=config.byol_projection_dim,
            hidden_dim=config.byol_hidden_dim,
            n_crops=config.n_crops,
        )

    # No defaults: PretrainConfig holds them (from_config), so a module built directly cannot disagree.
    def __init__(self, backbone: nn.Module, *, projection_dim: int, hidden_dim: int, n_crops: int) -> None:
        projector = MLPHead(feature_dim(backbone), hidden_dim, projection_dim)
        super().__init__(MultiCropWrapper(backbone, projector))
        self.predictor = MLPHead(projection_dim, hidden_dim, projection_dim)
        self.teacher = copy.deepcopy(self.student)
        self.teacher.requires_grad_(False)
        self.n_crops = n_crops

    def parameter_groups(self) -> list[dict[str, Any]]:
        named = [*self.student.named_parameters(), *self.predictor.named_parameters(prefix="predictor")]
        return weight_decay_groups(named)

    def training_loss(
        self,
        crops: list[torch.Tensor],
        *,
        step: int,
        teacher_temp: float,
        labels: torch.Tensor | None = None,  # self-supervised: labels are never used
    ) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.no_grad():
            targets = self.teacher(crops[:2]).chunk(2)
        predictions = self.predictor(self._student_forward(crops)).chunk(len(crops))
        total = predictions[0].new_zeros((), dtype=torch.float32)
        n_pairs = 0
        for view_index, prediction in enumerate(predictions):
            for target_index, target in enumerate(targets):
                if view_index == target_index:
                    continue
                total = total + byol_loss(prediction, target)
                n_pairs += 1
        return total / n_pairs, {}

    def update_target(self, momentum: float) -> None:
        # The predictor has no target counterpart: only backbone + projector are averaged.
        ema_update(self.teacher, self.student, momentum)

    def cancel_last_layer_gradients(self, epoch: float, freeze_epochs: float) -> None:
        """BYOL has no prototype layer to freeze."""

    def eval_backbone(self) -> nn.Module:
        return self.student.backbone
