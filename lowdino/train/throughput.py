"""Model-alone training throughput: the trainer's own step with the data path taken out.

The crops of one batch are made once and fed to every step, so the rate covers exactly the model
work of a training step (student forward + backward on all crops, teacher forward on the global
crops, one backbone call per crop resolution, AdamW step, EMA update) and nothing of the data
path (batch gathering, multi-crop augmentation). `images_per_sec` of the real run divided by this
rate is the share of the model's speed that the full pipeline keeps.
"""

from __future__ import annotations

import dataclasses
import time

import torch
from torch import nn

from lowdino.config import PretrainConfig
from lowdino.data import LabeledImages
from lowdino.data.types import CropBatch
from lowdino.devices import resolve_device, resolve_precision
from lowdino.train.distributed import DistContext
from lowdino.train.state import Prepared
from lowdino.train.step import train_step
from lowdino.train.trainer import prepare


class FixedCrops(nn.Module):
    """Stands in for the augmentation: returns the same precomputed crops for any batch."""

    def __init__(self, crops: list[torch.Tensor]) -> None:
        super().__init__()
        self.crops = crops

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.crops


def model_images_per_sec(
    prepared: Prepared,
    *,
    steps: int = 20,
    warmup: int = 5,
    images: torch.Tensor | CropBatch | None = None,
) -> float:
    """Images per second of `steps` timed training steps on in-memory crops, after `warmup` steps.

    ``images``: one batch to crop once (default: the first images of an in-memory training set).
    """
    if images is None:
        assert isinstance(prepared.datasets.train, LabeledImages)
        images = prepared.datasets.train.images[: prepared.per_rank_batch].to(prepared.device)
    crops = [crop.clone() for crop in prepared.augmentation(images)]
    bare = dataclasses.replace(prepared, augmentation=FixedCrops(crops))
    last = prepared.schedules.total_steps - 1
    started = 0.0
    for index in range(warmup + steps):
        if index == warmup:
            if prepared.device.type == "cuda":
                torch.cuda.synchronize(prepared.device)
            started = time.perf_counter()
        train_step(bare, images, min(index, last), [])
    if prepared.device.type == "cuda":
        torch.cuda.synchronize(prepared.device)
    return steps * prepared.config.batch_size / (time.perf_counter() - started)


def measure_model_rate(config: PretrainConfig, *, steps: int = 20, warmup: int = 5) -> float:
    """`model_images_per_sec` for `config` in this (single) process; writes nothing."""
    ctx = DistContext()
    device = resolve_device(config.device, local_rank=ctx.local_rank if ctx.distributed else None)
    prepared = prepare(config, ctx, device, resolve_precision(config.precision, device))
    return model_images_per_sec(prepared, steps=steps, warmup=warmup)
