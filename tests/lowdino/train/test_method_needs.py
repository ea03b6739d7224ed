"""Each method declares what the trainer schedules and checks for it; the schedules stay as they were.

`pinned_schedules.json` holds the schedules the trainer built before the methods declared their
needs (when it branched on the config kind); the values must not move.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _train_utils import tiny_config

from lowdino.config import DistillConfig, PretrainConfig
from lowdino.errors import ConfigError
from lowdino.methods.base import CollapseWatch, TemperatureWarmup, TrainingNeeds
from lowdino.train.kinds import TrainConfig, training_needs
from lowdino.train.optim import build_schedules
from lowdino.train.trainer import build_collapse_detector, pretrain

PINNED = json.loads((Path(__file__).parent / "pinned_schedules.json").read_text())

COMMON = {
    "dataset": "synthetic",
    "batch_size": 64,
    "n_epochs": 4,
    "warmup_epochs": 1,
    "lr": 5e-4,
    "min_lr": 1e-6,
    "weight_decay": 0.04,
    "weight_decay_end": 0.4,
}


def _configs() -> dict[str, TrainConfig]:
    return {
        "dino": PretrainConfig.model_validate(
            {
                **COMMON,
                "backbone": "resnet5m",
                "method": "dino",
                "momentum_teacher": 0.99,
                "warmup_teacher_temp": 0.02,
                "teacher_temp": 0.05,
                "warmup_teacher_temp_epochs": 2,
                "max_steps": 10,  # compressed: the warm-up durations shrink with it
            }
        ),
        "byol": PretrainConfig.model_validate(
            {
                **COMMON,
                "backbone": "resnet5m",
                "method": "byol",
                "momentum_teacher": 0.98,
                "warmup_teacher_temp": 0.03,
                "teacher_temp": 0.04,
                "warmup_teacher_temp_epochs": 1,
            }
        ),
        "distill": DistillConfig.model_validate({**COMMON, "student": "resnet5m", "teacher": "resnet50"}),
    }


@pytest.mark.parametrize("kind", ["dino", "byol", "distill"])
def test_schedules_are_the_ones_the_trainer_built_before(kind: str) -> None:
    config = _configs()[kind]
    schedules = build_schedules(config, training_needs(config), steps_per_epoch=3)
    pinned = PINNED[kind]
    assert schedules.total_steps == pinned["total_steps"]
    for name in ("lr", "weight_decay", "momentum", "teacher_temp"):
        assert [float(value) for value in getattr(schedules, name)] == pinned[name], name


def test_each_method_declares_its_needs() -> None:
    configs = _configs()
    dino_config = configs["dino"]
    assert isinstance(dino_config, PretrainConfig)
    assert training_needs(dino_config) == TrainingNeeds(
        ema_momentum=0.99,
        teacher_temp=TemperatureWarmup(start=0.02, end=0.05, warmup_epochs=2),
        freeze_last_layer_epochs=1,
        # The center starts at zero and follows the teacher with momentum 0.9: 30 steps to settle.
        collapse=CollapseWatch(loss_metric="dino_loss", out_dim=dino_config.out_dim, settle_steps=30),
    )
    sinkhorn = dino_config.model_copy(update={"centering": "sinkhorn_knopp"})
    assert training_needs(sinkhorn).collapse == CollapseWatch(
        "dino_loss", dino_config.out_dim, settle_steps=0
    )
    # KoLeo compares each image with another of the same crop: one image per process cannot train.
    assert training_needs(dino_config.model_copy(update={"koleo_weight": 0.1})).min_batch == 2
    byol = training_needs(configs["byol"])
    assert byol.ema_momentum == 0.98
    assert byol.freeze_last_layer_epochs == 0  # no prototype layer
    assert byol.collapse is None  # no loss value marks a BYOL collapse
    assert training_needs(configs["distill"]) == TrainingNeeds()  # a frozen teacher: nothing to schedule


def test_collapse_detector_follows_the_declared_watch() -> None:
    configs = _configs()
    detector = build_collapse_detector(training_needs(configs["dino"]))
    assert detector is not None
    assert detector.loss_metric == "dino_loss"
    assert build_collapse_detector(training_needs(configs["byol"])) is None
    assert build_collapse_detector(training_needs(configs["distill"])) is None


def test_a_batch_below_the_methods_smallest_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(
        ConfigError,
        match=r"^dino needs at least 2 images per process and step, got 1; use --batch-size 2 or more$",
    ):
        pretrain(tiny_config(out, batch_size=1, koleo_weight=0.1))
    assert not out.exists()
