"""The state of a training run: what `prepare` builds (`Prepared`), the loop's counters (`Progress`)
and the wall-clock checkpoint cadence (`SaveClock`).

Shared by the trainer, its step (`lowdino.train.step`) and the CPU memory check, which runs that
step on a copy of the prepared networks before the first real one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lowdino.contract.rundir import RunDir
from lowdino.data.loader import StreamingBatches
from lowdino.devices import Precision
from lowdino.methods import Method, TrainingNeeds
from lowdino.resources import ResourcePlan
from lowdino.train.builders import Datasets
from lowdino.train.distributed import DistContext
from lowdino.train.kinds import TrainConfig
from lowdino.train.knn_monitor import KnnMonitor
from lowdino.train.optim import Schedules

# Steps left out of the steady-state images/s (start-up: allocator, kernel selection, caches).
WARMUP_STEPS = 5


@dataclass
class Prepared:
    """Everything built before the first file is written."""

    config: TrainConfig
    ctx: DistContext
    device: torch.device
    precision: Precision
    run_dir: RunDir
    datasets: Datasets
    per_rank_batch: int
    needs: TrainingNeeds  # what the method declares: EMA, temperature, frozen last layer, collapse watch
    schedules: Schedules
    method: Method
    optimizer: torch.optim.AdamW
    scaler: torch.amp.GradScaler
    augmentation: nn.Module
    knn: KnnMonitor | None
    device_ids: list[int] | None
    checkpoint: dict[str, Any] | None
    stream: StreamingBatches | None = None  # DataLoader workers of a streamed training set
    resources: ResourcePlan | None = None  # threads, loader workers, where augmentation runs


@dataclass
class Progress:
    """Counters of the loop; those in CHECKPOINTED carry over to a resumed run."""

    CHECKPOINTED = ("init_knn", "best_knn", "last_knn", "wall_time", "last_loss", "collapse_warning")

    step: int = 0  # optimiser steps done
    init_knn: float | None = None  # the kNN monitor at step 0, before any update: the run's random init
    best_knn: float | None = None
    last_knn: float | None = None
    wall_time: float = 0.0
    last_loss: float | None = None
    collapse_warning: str | None = None
    # This process only: the steady-state throughput and the last step's rate.
    timed_images: int = field(default=0, repr=False)
    timed_seconds: float = field(default=0.0, repr=False)
    steps_this_run: int = field(default=0, repr=False)
    last_images_per_sec: float = field(default=0.0, repr=False)
    out_of_time: bool = field(default=False, repr=False)  # max_minutes reached: this step was the last

    def count_step(self, loss: float, images: int, seconds: float) -> None:
        self.step += 1
        self.last_loss = loss
        self.steps_this_run += 1
        self.last_images_per_sec = images / max(seconds, 1e-9)
        if self.steps_this_run > WARMUP_STEPS:
            self.timed_images += images
            self.timed_seconds += seconds

    def state_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.CHECKPOINTED}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in self.CHECKPOINTED:
            setattr(self, key, state.get(key, getattr(self, key)))


class SaveClock:
    """Wall-clock checkpoint cadence: due once `minutes` have passed since the start or the last save."""

    def __init__(self, minutes: float | None) -> None:
        self.interval = minutes * 60.0 if minutes else None  # 0 / None: off
        self.last = time.monotonic()

    def due(self) -> bool:
        return self.interval is not None and time.monotonic() - self.last >= self.interval

    def saved(self) -> None:
        self.last = time.monotonic()
