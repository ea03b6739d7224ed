"""Knowledge distillation from a frozen teacher backbone into a small student backbone.

The original LowDINO work distilled a DINO ViT-S into MobileViT and a ResNet-50 into ResNet5M with a
KL loss on temperature-softened embeddings after projecting the student to the teacher's width.
Feature distillation (cosine or MSE on the same view) is the common alternative.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lowdino.backbones import feature_dim
from lowdino.config.distill import DistillConfig, DistillLossName
from lowdino.methods.base import BackboneFactory, StudentWrapper, TrainingNeeds, weight_decay_groups
from lowdino.methods.multicrop import set_forward
from lowdino.methods.teacher import build_teacher


def kl_distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(t / T) || softmax(s / T)), averaged over the batch (Hinton et al. 2015).

    The T^2 factor keeps gradient magnitudes comparable across temperatures.
    Shapes: student (B, D_t) projected student embedding, teacher (B, D_t) teacher embedding.
    """
    log_p_student = F.log_softmax(student.float() / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher.float().detach() / temperature, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1).mean()
    return kl * temperature**2


def cosine_distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """1 - cos(s, t), averaged over the batch. Shapes: (B, D_t) each."""
    return (1.0 - F.cosine_similarity(student.float(), teacher.float().detach(), dim=-1)).mean()


def mse_distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared error over batch and feature dimensions. Shapes: (B, D_t) each."""
    return F.mse_loss(student.float(), teacher.float().detach())


class StudentWithProjection(nn.Module):
    """Student backbone + linear projection to the teacher's feature width: (B, 3, S, S) -> (B, D_t)."""

    def __init__(self, backbone: nn.Module, teacher_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.projection = nn.Linear(feature_dim(backbone), teacher_dim)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(images)
        return features, self.projection(features)


class Distillation(nn.Module):
    """A frozen teacher and a trainable student seeing the same augmented view.

    Loss = distillation(projected student, teacher) + label_loss_weight * CE(classifier(student), y).
    The teacher may want another input size (patch-14 ViTs): the view is resized for it alone.
    """

    # Set through __dict__ (not a submodule, see __init__); annotated so that calls type-check.
    _student_forward: nn.Module

    @staticmethod
    def training_needs(config: DistillConfig) -> TrainingNeeds:
        """A frozen teacher: no EMA, no temperature schedule, no layer to freeze, no collapse watch."""
        return TrainingNeeds()

    @classmethod
    def from_config(
        cls, config: DistillConfig, backbone_factory: BackboneFactory, *, num_classes: int | None = None
    ) -> Distillation:
        """The student `backbone_factory()` and the teacher `config.teacher` (`build_teacher`)."""
        return cls(
            backbone_factory(),
            build_teacher(config),
            loss=config.loss,
            temperature=config.temperature,
            label_loss_weight=config.label_loss_weight,
            num_classes=num_classes,
            teacher_image_size=config.teacher_image_size,
        )

    # No defaults: DistillConfig holds them (from_config), so a module built directly cannot disagree.
    def __init__(
        self,
        student_backbone: nn.Module,
        teacher_backbone: nn.Module,
        *,
        loss: DistillLossName,
        temperature: float,
        label_loss_weight: float,
        num_classes: int | None,
        teacher_image_size: int | None,
    ) -> None:
        super().__init__()
        if label_loss_weight > 0 and not num_classes:
            raise ValueError("label_loss_weight > 0 needs a labelled dataset (num_classes)")
        self.student = StudentWithProjection(student_backbone, feature_dim(teacher_backbone))
        self.teacher = teacher_backbone.eval().requires_grad_(False)
        self.classifier = (
            nn.Linear(feature_dim(student_backbone), num_classes)
            if label_loss_weight > 0 and num_classes
            else None
        )
        self.loss_name = loss
        self.temperature = temperature
        self.label_loss_weight = label_loss_weight
        self.teacher_image_size = teacher_image_size
        set_forward(self, "_student_forward", self.student)

    def train(self, mode: bool = True) -> Distillation:
        super().train(mode)
        self.teacher.eval()  # a frozen teacher keeps its BatchNorm statistics and has no dropout
        return self

    def wrap_student(self, wrapper: StudentWrapper) -> None:
        set_forward(self, "_student_forward", wrapper(self.student))

    def wrap_backbone(self, wrapper: StudentWrapper) -> None:
        self.wrap_student(wrapper)

    def parameter_groups(self) -> list[dict[str, Any]]:
        named = list(self.student.named_parameters())
        if self.classifier is not None:
            named += list(self.classifier.named_parameters(prefix="classifier"))
        return weight_decay_groups(named)

    def training_loss(
        self,
        crops: list[torch.Tensor],
        *,
        step: int,
        teacher_temp: float = 0.0,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        view = crops[0]
        with torch.no_grad():
            teacher_view = view
            if self.teacher_image_size and view.shape[-1] != self.teacher_image_size:
                size = (self.teacher_image_size, self.teacher_image_size)
                teacher_view = F.interpolate(
                    view, size=size, mode="bilinear", align_corners=False, antialias=True
                )
            teacher_features = self.teacher(teacher_view)
        features, projected = self._student_forward(view)
        if self.loss_name == "kl":
            distill = kl_distillation_loss(projected, teacher_features, self.temperature)
        elif self.loss_name == "cosine":
            distill = cosine_distillation_loss(projected, teacher_features)
        else:
            distill = mse_distillation_loss(projected, teacher_features)
        metrics = {"distill_loss": float(distill.detach())}
        loss = distill
        if self.classifier is not None and labels is not None:
            logits = self.classifier(features)
            label_loss = F.cross_entropy(logits.float(), labels)
            loss = loss + self.label_loss_weight * label_loss
            metrics["label_loss"] = float(label_loss.detach())
            metrics["train_top1"] = float((logits.argmax(dim=-1) == labels).float().mean() * 100)
        return loss, metrics

    def update_target(self, momentum: float) -> None:
        """The teacher is frozen: nothing to update."""

    def cancel_last_layer_gradients(self, epoch: float, freeze_epochs: float) -> None:
        """No prototype layer to freeze."""

    def eval_backbone(self) -> nn.Module:
        return self.student.backbone
