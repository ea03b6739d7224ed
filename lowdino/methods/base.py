"""The small interface every training method offers the trainer.

Methods are composed from plain modules (backbone, head, loss) rather than derived from a deep base
class. The trainer only needs: the networks to optimise and to keep in sync, a loss on a list of
crops, the target (teacher) update, and the backbone to evaluate; and, before any network is
built, the method's `TrainingNeeds` (its schedules and checks, read from its config). A method's
class offers both constructors (`MethodClass`); `lowdino.methods.METHODS` names them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

StudentWrapper = Callable[[nn.Module], nn.Module]
BackboneFactory = Callable[[], nn.Module]  # a fresh backbone (random, pretrained or loaded) per call


@dataclass(frozen=True)
class TemperatureWarmup:
    """Teacher softmax temperature: linear `start` -> `end` over `warmup_epochs`, then `end`."""

    start: float
    end: float
    warmup_epochs: float


@dataclass(frozen=True)
class CollapseWatch:
    """What the collapse detector compares: `loss_metric` (a metric of `training_loss`) with ln(out_dim).

    The metric is the self-distillation term alone, without regularisers such as KoLeo.
    `settle_steps`: steps before the teacher's centering has caught up with its output (DINO's center
    starts at zero); until then the loss can sit below ln(out_dim) without anything learned.
    """

    loss_metric: str
    out_dim: int
    settle_steps: int = 0


@dataclass(frozen=True)
class TrainingNeeds:
    """What the trainer schedules and checks for one method, read from the run's config.

    Each method builds its own (`training_needs(config)`), so the trainer reads typed values instead
    of asking which config kind it holds. None / 0 means the method has no such part.
    """

    # Start of the teacher/target EMA momentum, raised to 1 on a cosine; None: no EMA target.
    ema_momentum: float | None = None
    teacher_temp: TemperatureWarmup | None = None
    # Epochs during which `cancel_last_layer_gradients` keeps the head's last layer frozen.
    freeze_last_layer_epochs: float = 0.0
    collapse: CollapseWatch | None = None
    # Smallest per-process batch the loss accepts (KoLeo compares each image with its nearest other).
    min_batch: int = 1


class Method(Protocol):
    # Read-only properties, so that a method may declare a narrower type (DINO: MultiCropWrapper).
    @property
    def student(self) -> nn.Module:
        """The trainable network (what the optimiser updates and DDP/DataParallel wrap)."""

    @property
    def teacher(self) -> nn.Module | None:
        """The network updated by EMA rather than by gradients, if any (DINO teacher, BYOL target)."""

    def wrap_student(self, wrapper: StudentWrapper) -> None:
        """Run the student's forward through `wrapper(student)` (DDP, DataParallel); weights stay shared."""

    def wrap_backbone(self, wrapper: StudentWrapper) -> None:
        """Run the student's backbone through `wrapper` (nn.DataParallel splits each crop batch)."""

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimiser groups; each has 'params', 'name' and 'apply_weight_decay'."""

    def training_loss(
        self,
        crops: list[torch.Tensor],
        *,
        step: int,
        teacher_temp: float,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss on one batch of crops [global_1, global_2, local_1, ...] (and labels, for methods that
        use them) with scalar metrics."""

    def update_target(self, momentum: float) -> None:
        """EMA update of the teacher/target after the optimiser step (no-op without one)."""

    def cancel_last_layer_gradients(self, epoch: float, freeze_epochs: float) -> None:
        """Drop gradients of layers that must stay frozen early in training."""

    def eval_backbone(self) -> nn.Module:
        """The backbone whose features are evaluated (DINO: teacher; BYOL: online)."""

    def to(self, *args: Any, **kwargs: Any) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


class MethodClass(Protocol):
    """What `lowdino.methods.METHODS` holds per method name: the method's class, built from its config.

    `config` is the config model of the run kind the method trains (PretrainConfig, DistillConfig).
    """

    def from_config(
        self, config: Any, backbone_factory: BackboneFactory, *, num_classes: int | None = None
    ) -> Method:
        """The method around `backbone_factory()` with every setting read from `config`
        (`num_classes`: classes of the training set, for methods with a label loss)."""

    def training_needs(self, config: Any) -> TrainingNeeds:
        """What the trainer schedules and checks for this method, before any network is built."""


def split_weight_decay(named_parameters: Iterable[tuple[str, nn.Parameter]]) -> tuple[list, list]:
    """(decayed, not decayed): biases and 1-D norm parameters get no weight decay (DINO, timm)."""
    decayed, not_decayed = [], []
    for name, param in named_parameters:
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith(".bias"):
            not_decayed.append(param)
        else:
            decayed.append(param)
    return decayed, not_decayed


def weight_decay_groups(named_parameters: Iterable[tuple[str, nn.Parameter]]) -> list[dict[str, Any]]:
    """The two optimiser groups every method uses: decayed weights, and biases / norms without decay."""
    decayed, not_decayed = split_weight_decay(named_parameters)
    return [
        {"params": decayed, "name": "decayed", "apply_weight_decay": True},
        {"params": not_decayed, "name": "not_decayed", "apply_weight_decay": False},
    ]
