"""Shared helpers of the trainer tests: the smallest real pretraining configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lowdino.config import PretrainConfig

# 40 synthetic images, batch 8: 5 steps per epoch; mobilevit_xxs at 32/16 px with a tiny head.
TINY: dict[str, Any] = {
    "backbone": "mobilevit_xxs",
    "dataset": "synthetic",
    "synthetic_size": 40,
    "global_crop_size": 32,
    "local_crop_size": 16,
    "n_crops": 4,
    "batch_size": 8,
    "n_epochs": 2,
    "warmup_epochs": 1,
    "out_dim": 64,
    "hidden_dim": 64,
    "bottleneck_dim": 32,
    "momentum_teacher": 0.99,
    "device": "cpu",
    "knn_monitor": False,
    "knn_max_train": 40,
    "knn_max_val": 20,
    "batch_size_eval": 64,
}


def pretrain_module_args(recipe: Path, output_dir: Path) -> list[str]:
    """`-m lowdino pretrain --config RECIPE --output-dir DIR`: after `python` or `torchrun`."""
    return ["-m", "lowdino", "pretrain", "--config", str(recipe), "--output-dir", str(output_dir)]


def tiny_config(output_dir: Path, **overrides: Any) -> PretrainConfig:
    return PretrainConfig.model_validate({**TINY, "output_dir": str(output_dir), **overrides})


class StopAtStep:
    """A callback that records every metrics record and asks to stop once `step` is reached."""

    def __init__(self, step: int | None = None) -> None:
        self.step = step
        self.records: list[dict[str, Any]] = []

    def on_metrics(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def should_stop(self) -> bool:
        return self.step is not None and bool(self.records) and self.records[-1]["step"] >= self.step
