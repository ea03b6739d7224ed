"""One optimiser step of a prepared run, shared by the training loop and the CPU memory check:

uint8 batch -> multi-crop on the device -> method.training_loss (teacher under no_grad)
-> backward (AMP) -> all-reduce of the gradients DDP does not cover -> per-tensor grad clipping
-> freeze the head's last layer early on -> AdamW step -> teacher EMA update
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn

from lowdino.data.types import CropBatch
from lowdino.devices import out_of_memory_error
from lowdino.errors import LowDinoError
from lowdino.methods import Method
from lowdino.train.distributed import DistContext
from lowdino.train.optim import apply_schedules, clip_gradients_per_tensor
from lowdino.train.state import Prepared


class TrainingDivergedError(LowDinoError):
    """The loss became NaN or infinite."""


def train_step(
    p: Prepared,
    images: torch.Tensor | CropBatch,
    step: int,
    extra_sync: list[nn.Parameter],
    labels: torch.Tensor | None = None,
) -> tuple[float, dict[str, float]]:
    """One optimiser step at index `step` (0-based); returns this rank's loss and method metrics.

    `extra_sync`: trained parameters whose gradients are averaged over the ranks here, because DDP
    does not hold them (`parameters_outside_student`).
    """
    s, c = p.schedules, p.config
    apply_schedules(p.optimizer, s, step)
    try:
        with torch.no_grad():
            crops = p.augmentation(images)
            if c.channels_last:
                crops = [crop.contiguous(memory_format=torch.channels_last) for crop in crops]
        with p.precision.autocast(p.device):
            loss, metrics = p.method.training_loss(
                crops, step=step, teacher_temp=float(s.teacher_temp[step]), labels=labels
            )
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise TrainingDivergedError(
                f"the loss is {loss_value} at step {step + 1}; lower --lr, clip gradients (e.g. --clip-grad 3) "
                "or use --precision fp32"
            )
        p.optimizer.zero_grad(set_to_none=True)
        p.scaler.scale(loss).backward()
        all_reduce_gradients(extra_sync, p.ctx)
        if c.clip_grad > 0:
            p.scaler.unscale_(p.optimizer)
            clip_gradients_per_tensor(trained_parameters(p.optimizer), c.clip_grad)
        p.method.cancel_last_layer_gradients(s.schedule_epoch(step), p.needs.freeze_last_layer_epochs)
        p.scaler.step(p.optimizer)
        p.scaler.update()
        p.method.update_target(float(s.momentum[step]))
    except torch.OutOfMemoryError as exc:
        raise out_of_memory_error(c.batch_size, p.device) from exc
    return loss_value, metrics


def trained_parameters(optimizer: torch.optim.Optimizer) -> list[nn.Parameter]:
    """Every parameter the optimiser updates (the method's `parameter_groups`)."""
    return [param for group in optimizer.param_groups for param in group["params"]]


def parameters_outside_student(
    method: Method, optimizer: torch.optim.Optimizer, ctx: DistContext
) -> list[nn.Parameter]:
    """Trained parameters DDP does not cover (BYOL's predictor lives beside the student); none without DDP."""
    if not ctx.distributed:
        return []
    in_student = {id(param) for param in method.student.parameters()}
    return [param for param in trained_parameters(optimizer) if id(param) not in in_student]


def all_reduce_gradients(parameters: list[nn.Parameter], ctx: DistContext) -> None:
    """Average the gradients of `parameters` over the ranks, in one flat all-reduce."""
    grads = [param.grad for param in parameters if param.grad is not None]
    if not grads:
        return
    flat = torch.cat([grad.reshape(-1) for grad in grads])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()
