"""Collapse detection (lowdino/train/collapse.py) and the metric each method has it watch."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from _train_utils import StopAtStep, tiny_config

from lowdino.config import PretrainConfig
from lowdino.train.builders import build_training_method
from lowdino.train.collapse import CollapseDetector
from lowdino.train.kinds import training_needs
from lowdino.train.trainer import build_collapse_detector, pretrain


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


# --- warm-up: ln(out_dim) is where DINO starts --------------------------------------------------------

# The 224 px run of issue 21 (lowdino pretrain ... -c 12 -b 16 -o 4096 on the ImageNet-like folder of
# benchmarks/data_speed.py: 10 000 images, 625 steps per epoch) logged dino_loss 8.3174 against
# ln 4096 = 8.3178 for its first steps: DINO's starting point, which the old detector called a collapse.
LOSS_224 = 8.3174
STEPS_PER_EPOCH_224 = 625


def _run_detector(
    detector: CollapseDetector, losses: list[float], every: int, start: int = 1
) -> list[tuple[int, str]]:
    """Feed one loss per step from step `start` on and close an interval every `every` steps, as
    the trainer does; the (step, warning) pairs."""
    warnings = []
    for step, loss in enumerate(losses, start=start):
        detector.observe({"dino_loss": loss, "teacher_entropy": 5.0, "teacher_batch_entropy": 8.0})
        if step % every == 0:
            warning = detector.end_interval(step)
            if warning:
                warnings.append((step, warning))
    return warnings


def test_a_loss_at_ln_k_in_the_first_epoch_is_the_starting_point_not_a_collapse() -> None:
    losses = [LOSS_224 + 1e-4 * ((step * 7) % 5 - 2) for step in range(1, 101)]
    detector = CollapseDetector(out_dim=4096, warmup_steps=STEPS_PER_EPOCH_224)
    assert _run_detector(detector, losses, every=1) == []  # the 14-step run checked every step
    detector = CollapseDetector(out_dim=4096, warmup_steps=STEPS_PER_EPOCH_224)
    assert _run_detector(detector, losses, every=10) == []
    # The same loss once the run has had its epoch: a run that never leaves ln K has collapsed
    # (patience 3: the third armed interval, 630 / 640 / 650, warns).
    after = _run_detector(detector, [LOSS_224] * 700, every=10, start=101)
    assert after[0][0] == 650
    assert "stays at ln(out_dim)" in after[0][1]


def test_a_loss_that_fell_below_ln_k_and_came_back_warns_within_the_warm_up() -> None:
    log_k = math.log(1024)
    detector = CollapseDetector(out_dim=1024, warmup_steps=10_000)
    learning = [log_k * (1 - 0.1 * min(1.0, step / 50)) for step in range(100)]  # down 10 %: learned
    assert _run_detector(detector, learning, every=10) == []
    assert detector.left_log_k
    back = _run_detector(detector, [log_k] * 40, every=10, start=101)
    assert [step for step, _ in back] == [130, 140]  # patience 3: the third interval at ln K warns
    # A dip of 1 % (the center's start-up swing) does not arm it.
    fresh = CollapseDetector(out_dim=1024, warmup_steps=10_000)
    assert _run_detector(fresh, [log_k * 0.99] * 20 + [log_k] * 60, every=10) == []
    assert not fresh.left_log_k


def test_the_warm_up_state_survives_a_resume() -> None:
    detector = CollapseDetector(out_dim=64, warmup_steps=500)
    _run_detector(detector, [math.log(64) * 0.5] * 10, every=10)
    restored = CollapseDetector(out_dim=64, warmup_steps=500)
    restored.load_state_dict(detector.state_dict())
    assert restored.left_log_k
    assert _run_detector(restored, [math.log(64)] * 30, every=10, start=11)


def test_the_trainer_arms_the_detector_after_the_temperature_warm_up_and_one_epoch() -> None:
    from lowdino.train.optim import build_schedules

    config = PretrainConfig.model_validate(
        {"dataset": "synthetic", "n_epochs": 10, "warmup_teacher_temp_epochs": 3, "warmup_teacher_temp": 0.02}
    )
    needs = training_needs(config)
    detector = build_collapse_detector(needs, build_schedules(config, needs, steps_per_epoch=40))
    assert detector is not None
    assert detector.warmup_steps == 120
    short = config.model_copy(update={"warmup_teacher_temp_epochs": 0.5})
    detector = build_collapse_detector(
        needs, build_schedules(short, training_needs(short), steps_per_epoch=40)
    )
    assert detector is not None
    assert detector.warmup_steps == 40


def test_the_centers_start_up_dip_does_not_arm_the_detector() -> None:
    # A 224 px run's first step sat 5.2 % below ln K (the center still at zero), then rose to it.
    log_k = math.log(4096)
    detector = CollapseDetector(out_dim=4096, warmup_steps=STEPS_PER_EPOCH_224, settle_steps=30)
    losses = [0.948 * log_k, 0.988 * log_k] + [LOSS_224] * 98
    assert _run_detector(detector, losses, every=1) == []
    assert not detector.left_log_k
    # The same dip once the center has settled is the loss leaving ln K.
    assert _run_detector(detector, [0.9 * log_k] * 10 + [LOSS_224] * 30, every=10, start=101)


# Recorded: dino_loss / ln(1024) every 4th step (1, 5, ..., 101) of the quickstart preset
# (configs/quickstart.yaml, CPU, 2026-12-06): a little above ln K, then learning.
QUICKSTART_RATIOS = [
    1.0116, 1.005, 1.0051, 0.9938, 0.9836, 0.9801, 0.9679, 0.9531, 0.9361, 0.9123, 0.9118, 0.9057, 0.9076,
    0.8994, 0.9199, 0.9068, 0.9107, 0.9226, 0.9183, 0.923, 0.9179, 0.9276, 0.935, 0.93, 0.9434, 0.9449,
]  # fmt: skip


def test_the_quickstart_is_silent_for_its_first_100_steps() -> None:
    import lowdino
    from lowdino.config.loading import build_config
    from lowdino.train.optim import build_schedules

    config = build_config(PretrainConfig, file=Path(lowdino.__file__).parent / "presets" / "quickstart.yaml")
    needs = training_needs(config)
    spe = (
        int(config.synthetic_size * (1 - config.val_fraction)) // config.batch_size
    )  # the kNN split held out
    schedules = build_schedules(config, needs, spe)
    detector = build_collapse_detector(needs, schedules)
    assert detector is not None
    log_k = math.log(config.out_dim)
    losses = [QUICKSTART_RATIOS[min(step // 4, len(QUICKSTART_RATIOS) - 1)] * log_k for step in range(100)]
    every = max(1, min(spe * config.logging_freq, schedules.total_steps // 10))  # the trainer's cadence
    assert _run_detector(detector, losses, every=every) == []


def test_a_224_px_training_run_at_dinos_starting_point_does_not_warn(tmp_path: Path) -> None:
    """The real trainer on the issue's 224 px settings (out_dim 4096, lr 5e-4, teacher temperature
    0.04, 2 global crops of 224 px; 2 images a step to keep it short): the loss sits at ln K, where
    the detector without a warm-up warned."""
    config = tiny_config(
        tmp_path / "run",
        global_crop_size=224,
        local_crop_size=96,
        n_crops=2,
        batch_size=2,
        synthetic_size=40,  # 20 steps per epoch: the run ends inside its first
        out_dim=4096,
        hidden_dim=2048,
        bottleneck_dim=256,
        lr=5e-4,
        teacher_temp=0.04,
        warmup_teacher_temp=0.04,
        momentum_teacher=0.9995,
        n_epochs=50,
        warmup_epochs=10,
        max_steps=14,
    )
    records = StopAtStep()
    summary = pretrain(config, callbacks=[records])
    assert summary["steps"] == 14
    log_k = math.log(4096)
    near = [r["step"] for r in records.records if abs(r["dino_loss"] - log_k) < 0.005 * log_k]
    assert len(near) >= 3  # at ln K for at least `patience` checks (every step of a 14-step run)
    assert summary["collapse_warning"] is None
    assert not any("collapse_warning" in record for record in records.records)


# --- a real collapse: constant teacher temperature 0.04 ----------------------------------------------

RECORDED_COLLAPSE = Path(__file__).with_name("collapse_constant_teacher_temp.json")


def _replay(record: dict, config: PretrainConfig) -> list[tuple[int, str]]:
    """The recorded metrics through the detector the trainer builds for `config`, at the trainer's cadence."""
    from lowdino.train.optim import build_schedules

    needs = training_needs(config)
    spe = int(config.synthetic_size * (1 - config.val_fraction)) // config.batch_size
    schedules = build_schedules(config, needs, spe)
    detector = build_collapse_detector(needs, schedules)
    assert detector is not None
    every = max(1, min(spe * config.logging_freq, schedules.total_steps // 10))
    warnings = []
    for step, *values in record["rows"]:
        detector.observe(dict(zip(record["columns"][1:], values, strict=True)))
        if step % every == 0:
            warning = detector.end_interval(step)
            if warning:
                warnings.append((step, warning))
    return warnings


def test_the_recorded_constant_004_collapse_is_flagged_and_only_after_the_warm_up() -> None:
    """lightly's collapsing setting (a constant teacher temperature of 0.04), recorded from this trainer
    on the quickstart: its dino_loss never leaves ln 4096, and the detector says so once armed."""
    import lowdino
    from lowdino.config.loading import build_config

    record = json.loads(RECORDED_COLLAPSE.read_text())
    preset = Path(lowdino.__file__).parent / "presets" / "quickstart.yaml"
    config = build_config(PretrainConfig, file=preset, overrides=record["overrides"])
    assert (config.teacher_temp, config.warmup_teacher_temp_epochs, config.out_dim) == (0.04, 0, 4096)
    log_k = math.log(config.out_dim)
    assert min(row[1] for row in record["rows"]) > 0.99 * log_k  # never learned: not 1 % below ln K

    warnings = _replay(record, config)
    assert warnings, "a run stuck at ln(out_dim) for 168 steps must warn"
    first_step, first_warning = warnings[0]
    assert "stays at ln(out_dim)" in first_warning
    spe = int(config.synthetic_size * (1 - config.val_fraction)) // config.batch_size
    assert first_step > spe  # never during DINO's first pass over the data
    assert record["trainer_warning"].startswith("possible collapse")  # what the run itself said


def test_the_same_recording_with_the_loss_leaving_ln_k_is_silent() -> None:
    """The detector reads the loss, not the settings: the same run made to learn (its loss falling 10 %
    below ln K after the warm-up, as the quickstart does) does not warn."""
    import lowdino
    from lowdino.config.loading import build_config

    record = json.loads(RECORDED_COLLAPSE.read_text())
    preset = Path(lowdino.__file__).parent / "presets" / "quickstart.yaml"
    config = build_config(PretrainConfig, file=preset, overrides=record["overrides"])
    log_k = math.log(config.out_dim)
    learning = [
        [step, log_k * (1 - 0.1 * min(1.0, step / 60)), entropy, batch_entropy]
        for step, _loss, entropy, batch_entropy in record["rows"]
    ]
    assert _replay({**record, "rows": learning}, config) == []
