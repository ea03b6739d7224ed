"""What several methods share: a backbone and head run over a list of crops, and a forward slot.

A method's `_student_forward` (and the wrapper's backbone forward) may be a DDP / DataParallel
wrapper around a module the method already owns; `set_forward` keeps it out of the module tree, so
the weights are registered (and saved) once, under their own name.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from lowdino.config import PretrainConfig
from lowdino.methods.base import TemperatureWarmup, TrainingNeeds


def set_forward(owner: nn.Module, name: str, module: nn.Module) -> None:
    """``owner.<name> = module`` without registering ``module`` as a child of ``owner``."""
    owner.__dict__[name] = module


class MultiCropWrapper(nn.Module):
    """Backbone + head over a list of crops, one backbone forward per run of equal-sized crops.

    crops: [C_1 (B, 3, S_1, S_1), ..., C_n] -> (n * B, K), crops in the order given.
    Concatenating crops of the same resolution turns 2 global + N local crops into two backbone calls,
    which is what makes multi-crop affordable.
    """

    _backbone_forward: nn.Module  # the backbone, or a wrapper around it (set_forward)

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        set_forward(self, "_backbone_forward", backbone)

    def wrap_backbone(self, wrapper: Callable[[nn.Module], nn.Module]) -> None:
        """Run the backbone through e.g. nn.DataParallel, which splits each per-resolution batch across
        GPUs and gathers it back in order (wrapping the whole wrapper would interleave the crops)."""
        set_forward(self, "_backbone_forward", wrapper(self.backbone))

    def forward(
        self, crops: list[torch.Tensor], *, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Head outputs (n * B, K); with `return_features` also the backbone features (n * B, D)."""
        backbone = self._backbone_forward
        features = torch.cat([backbone(torch.cat(run)) for run in group_by_resolution(crops)])
        outputs = self.head(features)
        return (outputs, features) if return_features else outputs


def group_by_resolution(crops: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Consecutive crops of equal spatial size, grouped: [[g1, g2], [l1, l2, l3, l4]]."""
    groups: list[list[torch.Tensor]] = []
    for crop in crops:
        if groups and groups[-1][0].shape[-2:] == crop.shape[-2:]:
            groups[-1].append(crop)
        else:
            groups.append([crop])
    return groups


class MultiCropStudent(nn.Module):
    """Base of the methods whose student is a MultiCropWrapper (DINO, BYOL): the student's forward slot.

    `_student_forward` is the student itself, or the DDP / DataParallel wrapper `wrap_student` put
    around it, kept out of the module tree so that state_dict keys never gain "module." prefixes.
    """

    _student_forward: nn.Module  # set through set_forward; annotated so that calls type-check

    def __init__(self, student: MultiCropWrapper) -> None:
        super().__init__()
        self.student = student
        set_forward(self, "_student_forward", student)

    def wrap_student(self, wrapper: Callable[[nn.Module], nn.Module]) -> None:
        set_forward(self, "_student_forward", wrapper(self.student))

    def wrap_backbone(self, wrapper: Callable[[nn.Module], nn.Module]) -> None:
        self.student.wrap_backbone(wrapper)


def ema_teacher_needs(config: PretrainConfig) -> TrainingNeeds:
    """An EMA teacher/target over multi-crop views: momentum_teacher -> 1, and the temperature warm-up."""
    return TrainingNeeds(
        ema_momentum=config.momentum_teacher,
        teacher_temp=TemperatureWarmup(
            start=config.warmup_teacher_temp,
            end=config.teacher_temp,
            warmup_epochs=config.warmup_teacher_temp_epochs,
        ),
    )
