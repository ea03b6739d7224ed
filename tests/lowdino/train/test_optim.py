"""The optimiser's per-step schedules and DINO's per-tensor gradient clipping (lowdino/train/optim.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lowdino.config import PretrainConfig
from lowdino.train.kinds import training_needs
from lowdino.train.optim import build_schedules, clip_gradients_per_tensor


def _config(**overrides: object) -> PretrainConfig:
    values = {"dataset": "synthetic", "backbone": "resnet5m", "batch_size": 64, "n_epochs": 10}
    values.update(overrides)
    return PretrainConfig.model_validate(values)


def test_schedules_scale_lr_with_batch_and_anneal() -> None:
    config = _config(lr=5e-4, min_lr=1e-6, warmup_epochs=2, batch_size=512, momentum_teacher=0.99)
    schedules = build_schedules(config, training_needs(config), steps_per_epoch=10)
    assert schedules.total_steps == 100
    peak = 5e-4 * 512 / 256
    assert schedules.lr[0] == pytest.approx(0.0)
    assert schedules.lr[20] == pytest.approx(peak)
    assert schedules.lr.max() == pytest.approx(peak)
    assert np.all(np.diff(schedules.lr[:20]) > 0)
    assert schedules.lr[-1] == pytest.approx(1e-6)
    assert schedules.momentum[0] == pytest.approx(0.99)
    assert schedules.momentum[-1] == pytest.approx(1.0)
    assert np.all(schedules.weight_decay == config.weight_decay)  # no weight_decay_end: constant


def test_max_steps_compresses_every_schedule() -> None:
    config = _config(
        warmup_epochs=2,
        max_steps=30,
        weight_decay=0.04,
        weight_decay_end=0.4,
        warmup_teacher_temp=0.02,
        teacher_temp=0.04,
        warmup_teacher_temp_epochs=5,
    )
    schedules = build_schedules(config, training_needs(config), steps_per_epoch=10)
    assert schedules.total_steps == 30
    assert len(schedules.lr) == len(schedules.momentum) == len(schedules.teacher_temp) == 30
    # 2 of 10 epochs of warm-up -> 20 % of the 30 steps.
    assert int(np.argmax(schedules.lr)) == 6
    assert schedules.lr[-1] == pytest.approx(config.min_lr)
    assert schedules.weight_decay[-1] == pytest.approx(0.4)
    assert schedules.momentum[-1] == pytest.approx(1.0)
    assert schedules.teacher_temp[0] == pytest.approx(0.02)
    assert schedules.teacher_temp[15] == pytest.approx(0.04)
    assert schedules.schedule_epoch(15) == pytest.approx(5.0)


def test_per_tensor_clipping_leaves_small_gradients_alone() -> None:
    big = torch.nn.Parameter(torch.zeros(4))
    small = torch.nn.Parameter(torch.zeros(3))
    big.grad = torch.tensor([30.0, 40.0, 0.0, 0.0])  # norm 50
    small.grad = torch.tensor([0.3, 0.4, 0.0])  # norm 0.5
    clip_gradients_per_tensor([big, small], 2.0)
    assert float(big.grad.norm()) == pytest.approx(2.0, rel=1e-4)
    assert torch.allclose(big.grad / big.grad.norm(), torch.tensor([0.6, 0.8, 0.0, 0.0]))
    assert torch.equal(small.grad, torch.tensor([0.3, 0.4, 0.0]))
