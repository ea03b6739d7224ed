"""What differs between the two training run kinds that share the trainer: pretrain and distill.

Everything else (loop, schedules, checkpoints, resume, metrics, devices) is common, so the trainer
asks these functions instead of branching on the config type itself.
"""

from __future__ import annotations

from lowdino.config import DistillConfig, PretrainConfig

TrainConfig = PretrainConfig | DistillConfig


def run_kind(config: TrainConfig) -> str:
    return "distill" if isinstance(config, DistillConfig) else "pretrain"


def model_name(config: TrainConfig) -> str:
    """The backbone the run trains (and evaluates): the student when distilling."""
    return config.student if isinstance(config, DistillConfig) else config.backbone


def method_name(config: TrainConfig) -> str:
    return f"distill-{config.loss}" if isinstance(config, DistillConfig) else config.method


def eval_image_size(config: TrainConfig) -> int:
    """Side of the images the kNN monitor feeds the trained backbone."""
    return config.crop_size if isinstance(config, DistillConfig) else config.global_crop_size


def input_sizes(config: TrainConfig) -> list[int]:
    """Every input side the trained backbone sees during training."""
    if isinstance(config, DistillConfig):
        return [config.crop_size]
    return sorted({config.global_crop_size, config.local_crop_size})


def labels_used(config: TrainConfig) -> float:
    """Fraction of the training labels the run learned from: 1.0 for distillation with a label loss
    (every training label), else 0.0. An evaluation at 10 % / 30 % labels of such a run is not a
    low-label result, so the figure travels with the checkpoint, its summary and every comparison."""
    if isinstance(config, DistillConfig) and config.label_loss_weight > 0:
        return 1.0
    return 0.0
