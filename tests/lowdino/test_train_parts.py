"""Unit tests of the trainer's parts: schedules, clipping, collapse detection, metrics, checkpoints."""

from __future__ import annotations

import io
import json
import math
import random
import sys

import numpy as np
import pytest
import torch

from lowdino.config import PretrainConfig
from lowdino.contract.metrics_log import MetricsWriter, iter_records, truncate_metrics
from lowdino.devices import resolve_device, resolve_precision
from lowdino.errors import CheckpointError, ConfigError, DeviceError
from lowdino.methods import training_needs
from lowdino.train.builders import build_training_method
from lowdino.train.checkpoint import (
    capture_rng_state,
    check_compatible,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from lowdino.train.collapse import CollapseDetector
from lowdino.train.distributed import context_from_env
from lowdino.train.optim import build_schedules, clip_gradients_per_tensor
from lowdino.train.progress import ProgressBar
from lowdino.train.trainer import build_collapse_detector


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
    config = _config(method=method, n_crops=2, out_dim=64, hidden_dim=64, bottleneck_dim=32, koleo_weight=1.0)
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


def test_metrics_writer_callbacks_and_truncation(tmp_path) -> None:
    seen = []

    class Recorder:
        def on_metrics(self, record):
            seen.append(record)

        def should_stop(self):
            return False

    path = tmp_path / "metrics.jsonl"
    with MetricsWriter(path, callbacks=[Recorder()]) as writer:
        for step in range(1, 6):
            writer.write(
                {"step": step, "epoch": step / 5, "time": 0.0, "total_steps": 5, "loss": float("nan")}
            )
    assert [r["step"] for r in seen] == [1, 2, 3, 4, 5]
    assert seen[0]["loss"] is None  # JSON has no NaN
    with path.open("a") as handle:
        handle.write('{"step": 6, "lo')  # a crash mid-line
    assert truncate_metrics(path, 3) == 3
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3]
    assert [r["step"] for r in iter_records(path)] == [1, 2, 3]


def test_rng_state_round_trip_through_checkpoint_file(tmp_path) -> None:
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    state = capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    path = tmp_path / "checkpoint.pth"
    save_checkpoint([path, tmp_path / "copy.pth"], {"rng": [state], "config": {"backbone": "resnet5m"}})
    assert (tmp_path / "copy.pth").read_bytes() == path.read_bytes()
    loaded = load_checkpoint(path)  # weights_only=True must accept everything we store
    torch.rand(5)
    np.random.rand(5)
    restore_rng_state(loaded["rng"][0])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_checkpoint_errors(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(corrupt)
    payload = {"config": {"backbone": "resnet5m", "method": "dino", "out_dim": 256}}
    with pytest.raises(
        CheckpointError, match=r"backbone 'resnet5m' in the checkpoint vs 'mobilevit_xxs'.*out_dim"
    ):
        check_compatible(payload, {"backbone": "mobilevit_xxs", "method": "dino", "out_dim": 512}, corrupt)
    check_compatible(payload, {"backbone": "resnet5m", "method": "dino", "out_dim": 256, "lr": 1.0}, corrupt)


def test_device_and_precision_resolution(monkeypatch) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_precision("auto", torch.device("cpu")).dtype is None
    assert resolve_precision("bf16", torch.device("cpu")).dtype == torch.bfloat16
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        resolve_precision("fp16", torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(
        DeviceError, match="CUDA was requested but torch sees no GPU; use --device cpu or auto"
    ):
        resolve_device("cuda")


def test_context_from_torchrun_env() -> None:
    ctx = context_from_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"})
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.is_main, ctx.distributed) == (2, 4, 0, False, True)
    assert not context_from_env({}).distributed


class _Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty", [True, False])
def test_progress_bar_draws_only_on_a_terminal(monkeypatch, tty) -> None:
    stream = _Terminal(tty)
    monkeypatch.setattr(sys, "stderr", stream)
    bar = ProgressBar(total=4, initial=2)  # resumed at step 2 of 4
    for _ in range(2):
        bar.update({"epoch": 1.5, "loss": 2.25, "images_per_sec": 120.0})
    bar.close()
    text = stream.getvalue()
    if tty:
        assert "4/4" in text
        assert "epoch=1.50" in text
        assert "loss=2.2500" in text
        assert "img_s=120" in text
    else:
        assert text == ""
