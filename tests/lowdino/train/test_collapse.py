"""Collapse detection (lowdino/train/collapse.py) and the metric each method has it watch."""

from __future__ import annotations

import math

import pytest
import torch

from lowdino.config import PretrainConfig
from lowdino.train.builders import build_training_method
from lowdino.train.collapse import CollapseDetector
from lowdino.train.kinds import training_needs
from lowdino.train.trainer import build_collapse_detector


def test_collapse_detector_needs_several_intervals_and_resets() -> None:
    detector = CollapseDetector(out_dim=1024, patience=3)
    log_k = math.log(1024)
    for _ in range(2):
        detector.observe({"dino_loss": log_k, "teacher_entropy": log_k, "teacher_batch_entropy": log_k})
        assert detector.end_interval() is None
    detector.observe({"dino_loss": log_k + 1e-4})
    warning = detector.end_interval()
    assert warning is not None
    assert "ln(out_dim)" in warning
    detector.observe({"dino_loss": 3.0, "teacher_entropy": 2.0, "teacher_batch_entropy": 5.0})
    assert detector.end_interval() is None
    assert detector.collapsed_intervals == 0


def test_collapse_detector_flags_constant_teacher() -> None:
    detector = CollapseDetector(out_dim=64, patience=1)
    detector.observe({"dino_loss": 2.0, "teacher_entropy": 1e-5, "teacher_batch_entropy": 1e-4})
    warning = detector.end_interval()
    assert warning is not None
    assert "teacher entropy" in warning
    assert "same output for every image" in warning


@pytest.mark.parametrize("method", ["dino", "byol"])
def test_each_method_names_the_metric_the_collapse_detector_watches(method: str) -> None:
    config = PretrainConfig.model_validate(
        {"dataset": "synthetic", "backbone": "resnet5m", "batch_size": 64, "n_epochs": 10, "method": method}
        | {"n_crops": 2, "out_dim": 64, "hidden_dim": 64, "bottleneck_dim": 32, "koleo_weight": 1.0}
    )
    built = build_training_method(config, torch.device("cpu"))
    detector = build_collapse_detector(training_needs(config))
    if method == "byol":
        assert detector is None  # BYOL has no prototype output whose uniform loss is ln(K)
        return
    assert detector is not None
    # Identical prototypes: every output is uniform, the DINO term is exactly ln(64); the total
    # loss also holds KoLeo (weight 1), which is what the detector used to look at.
    for network in (built.student, built.teacher):
        weight = network.head.last_layer.parametrizations.weight.original1
        with torch.no_grad():
            weight.copy_(weight[:1].expand_as(weight))
    torch.manual_seed(0)
    crops = [torch.rand(8, 3, 32, 32), torch.rand(8, 3, 32, 32)]
    loss, metrics = built.training_loss(crops, step=0, teacher_temp=0.04)
    assert metrics["dino_loss"] == pytest.approx(math.log(64), rel=1e-5)
    assert abs(float(loss.detach()) - math.log(64)) > 0.01 * math.log(64)
    detector.patience = 1
    detector.observe(metrics)
    warning = detector.end_interval()
    assert warning is not None
    assert "dino_loss" in warning
