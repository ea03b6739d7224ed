"""Optimiser, per-step schedules and DINO's per-tensor gradient clipping.

Schedules (one value per optimiser step t = 0 .. T-1, T = total_steps; E epochs, S steps/epoch):

    lr[t]            linear warm-up 0 -> lr * batch_size / 256 over warmup_epochs, then cosine to min_lr
    weight_decay[t]  cosine weight_decay -> weight_decay_end (constant when weight_decay_end is unset)
    momentum[t]      cosine needs.ema_momentum -> 1 (teacher EMA); 1 without an EMA target
    teacher_temp[t]  linear needs.teacher_temp.start -> .end over .warmup_epochs, then flat; 0 without one

The momentum and temperature come from the method's `TrainingNeeds` (DINO, BYOL: momentum_teacher,
warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs of the config; distillation: none).

When max_steps cuts the run short (T < E * S) every schedule is compressed to T steps, epoch-based
durations included (a duration of d epochs becomes round(d / E * T) steps), so a short run still
warms up and anneals. `schedule_epoch(t)` is the epoch on that compressed clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lowdino.config import TrainOptions
from lowdino.methods.base import Method, TrainingNeeds
from lowdino.train.schedules import cosine_schedule, linear_warmup_constant


@dataclass(frozen=True)
class Schedules:
    lr: np.ndarray
    weight_decay: np.ndarray
    momentum: np.ndarray
    teacher_temp: np.ndarray
    total_steps: int
    steps_per_epoch: int
    n_epochs: int
    teacher_temp_warmup_steps: int = 0  # steps of the linear teacher-temperature warm-up

    def schedule_epoch(self, step: int) -> float:
        """Epochs elapsed at `step` on the schedules' clock (compressed when max_steps is shorter)."""
        return step / self.total_steps * self.n_epochs


def total_steps(config: TrainOptions, steps_per_epoch: int) -> int:
    full = config.n_epochs * steps_per_epoch
    return min(full, config.max_steps) if config.max_steps else full


def build_schedules(config: TrainOptions, needs: TrainingNeeds, steps_per_epoch: int) -> Schedules:
    """Every per-step schedule of a run of `config` training a method with `needs`."""
    total = total_steps(config, steps_per_epoch)

    def steps(epochs: float) -> int:
        return round(epochs / config.n_epochs * total)

    peak_lr = config.lr * config.batch_size / 256.0
    weight_decay_end = config.weight_decay if config.weight_decay_end is None else config.weight_decay_end
    # A frozen teacher (or none) is never averaged: momentum 1 keeps it as it is.
    momentum = (
        np.ones(total) if needs.ema_momentum is None else cosine_schedule(needs.ema_momentum, 1.0, total)
    )
    temp = needs.teacher_temp
    temp_warmup = 0 if temp is None else min(total, steps(temp.warmup_epochs))
    teacher_temp = (
        np.zeros(total) if temp is None else linear_warmup_constant(temp.start, temp.end, total, temp_warmup)
    )
    return Schedules(
        lr=cosine_schedule(peak_lr, config.min_lr, total, warmup_steps=steps(config.warmup_epochs)),
        weight_decay=cosine_schedule(config.weight_decay, weight_decay_end, total),
        momentum=momentum,
        teacher_temp=teacher_temp,
        total_steps=total,
        steps_per_epoch=steps_per_epoch,
        n_epochs=config.n_epochs,
        teacher_temp_warmup_steps=temp_warmup,
    )


def build_optimizer(method: Method) -> torch.optim.AdamW:
    """AdamW over the method's groups; lr and weight decay are set every step from the schedules."""
    groups = [group for group in method.parameter_groups() if group["params"]]
    # fused/foreach picked by torch; lr 0 until the first schedule value is applied.
    return torch.optim.AdamW(groups, lr=0.0, weight_decay=0.0)


def apply_schedules(optimizer: torch.optim.Optimizer, schedules: Schedules, step: int) -> tuple[float, float]:
    """Set this step's lr on every group and weight decay on the groups that take it."""
    lr = float(schedules.lr[step])
    weight_decay = float(schedules.weight_decay[step])
    for group in optimizer.param_groups:
        group["lr"] = lr
        group["weight_decay"] = weight_decay if group.get("apply_weight_decay", True) else 0.0
    return lr, weight_decay


@torch.no_grad()
def clip_gradients_per_tensor(parameters: list[torch.nn.Parameter], clip: float) -> None:
    """DINO's clipping: scale each tensor's gradient to norm <= clip, independently of the others.

    g_p <- g_p * min(1, clip / (||g_p||_2 + 1e-6)) for every parameter p with a gradient.
    Unlike a global norm clip, one exploding tensor (often the head) does not shrink the rest.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads or clip <= 0:
        return
    norms = torch._foreach_norm(grads)
    scales = [torch.clamp(clip / (norm + 1e-6), max=1.0) for norm in norms]
    torch._foreach_mul_(grads, scales)
