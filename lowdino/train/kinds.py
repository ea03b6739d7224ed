"""What differs between the two training run kinds that share the trainer: pretrain and distill.

Everything else (loop, schedules, checkpoints, resume, metrics, devices, memory check) is common, so
the trainer, its builders and the memory check ask these functions instead of branching on the
config type themselves.
"""

from __future__ import annotations

from torch import nn

from lowdino.augment import MultiCropAugmentation, SingleViewAugmentation
from lowdino.backbones import create_backbone, get_spec
from lowdino.config import DistillConfig, PretrainConfig
from lowdino.methods import BackboneFactory, MethodClass, TrainingNeeds, get_method
from lowdino.methods.teacher import is_checkpoint_path

TrainConfig = PretrainConfig | DistillConfig


def run_kind(config: TrainConfig) -> str:
    return "distill" if isinstance(config, DistillConfig) else "pretrain"


def model_name(config: TrainConfig) -> str:
    """The backbone the run trains (and evaluates): the student when distilling."""
    return config.student if isinstance(config, DistillConfig) else config.backbone


def method_name(config: TrainConfig) -> str:
    """The method as logs and summaries name it (distill-kl, distill-cosine, ...)."""
    return f"distill-{config.loss}" if isinstance(config, DistillConfig) else config.method


def method_key(config: TrainConfig) -> str:
    """The name of the method in `lowdino.methods.METHODS` that trains `config`."""
    return "distill" if isinstance(config, DistillConfig) else config.method


def training_method(config: TrainConfig) -> MethodClass:
    return get_method(method_key(config))


def training_needs(config: TrainConfig) -> TrainingNeeds:
    """What the trainer schedules and checks for the method `config` trains, as that method declares it."""
    return training_method(config).training_needs(config)


def backbone_factory(config: TrainConfig) -> BackboneFactory:
    """The trained backbone: a fresh student when distilling, else the backbone (pretrained when asked)."""
    if isinstance(config, DistillConfig):
        return lambda: create_backbone(config.student)
    return lambda: create_backbone(config.backbone, pretrained=config.pretrained, weights=config.weights)


def eval_image_size(config: TrainConfig) -> int:
    """Side of the images the kNN monitor feeds the trained backbone."""
    return config.crop_size if isinstance(config, DistillConfig) else config.global_crop_size


def input_sizes(config: TrainConfig) -> list[int]:
    """Every input side the trained backbone sees during training."""
    if isinstance(config, DistillConfig):
        return [config.crop_size]
    return sorted({config.global_crop_size, config.local_crop_size})


def network_inputs(config: TrainConfig) -> list[tuple[str, int]]:
    """(registry backbone, input side) of every network of the run whose input size can be checked:
    the trained backbone at each of its sizes, and a distillation's registry teacher at its own size."""
    inputs = [(model_name(config), size) for size in input_sizes(config)]
    if (
        isinstance(config, DistillConfig)
        and config.teacher_image_size is not None
        and not is_checkpoint_path(config.teacher)
    ):
        inputs.append((config.teacher, config.teacher_image_size))
    return inputs


def step_crops(config: TrainConfig) -> list[tuple[str, int]]:
    """(config field, side) of every crop one training step feeds per image, in the order the
    augmentation returns them: a distillation's one view is seen by the student and the teacher."""
    if isinstance(config, DistillConfig):
        return [("crop_size", config.crop_size)] * 2
    return [("global_crop_size", config.global_crop_size)] * 2 + [
        ("local_crop_size", config.local_crop_size)
    ] * config.n_local_crops


def build_augmentation(config: TrainConfig) -> nn.Module:
    """The training augmentation: one view per image when distilling, else DINO's multi-crop."""
    spec = get_spec(model_name(config))
    if isinstance(config, DistillConfig):
        return SingleViewAugmentation(config.crop_size, (config.crop_scale_min, 1.0), spec.mean, spec.std)
    return MultiCropAugmentation(
        global_size=config.global_crop_size,
        local_size=config.local_crop_size,
        n_local=config.n_local_crops,
        global_scale=(config.global_crop_scale_min, 1.0),
        local_scale=(0.05, config.local_crop_scale_max),
        mean=spec.mean,
        std=spec.std,
    )


def labels_used(config: TrainConfig) -> float:
    """Fraction of the training labels the run learned from: 1.0 for distillation with a label loss
    (every training label), else 0.0. An evaluation at 10 % / 30 % labels of such a run is not a
    low-label result, so the figure travels with the checkpoint, its summary and every comparison."""
    if isinstance(config, DistillConfig) and config.label_loss_weight > 0:
        return 1.0
    return 0.0
