"""Builders: read a PretrainConfig and return the plain objects the training loop works with.

Each builder does one thing and raises a one-line LowDinoError on bad input, so that the trainer
can run all of them before it writes a single file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch
from torch import nn

from lowdino.augment import EvalTransform, MultiCropAugmentation
from lowdino.backbones import check_input_size, create_backbone, get_spec
from lowdino.config import PretrainConfig
from lowdino.data import LabeledImages, load_dataset
from lowdino.errors import ConfigError, DataError
from lowdino.methods import Method, build_method
from lowdino.train.distributed import DistContext
from lowdino.train.knn_monitor import KnnMonitor
from lowdino.train.rundir import RunDir


def default_output_dir(config: PretrainConfig, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"pretrain-{config.backbone}-{stamp}"


def check_run_dir(run_dir: RunDir, *, resume: bool) -> None:
    """A fresh start must not mix with an earlier run's files; a resume needs its checkpoint.

    A folder holding only config.yaml (written by the worker before it starts the trainer) is a
    fresh run directory.
    """
    if resume:
        return  # load_checkpoint names the missing file
    if run_dir.checkpoint.exists() or (run_dir.metrics.exists() and run_dir.metrics.stat().st_size > 0):
        raise ConfigError(
            f"{run_dir.path} already holds a run; pass --resume to continue it or choose another --output-dir"
        )


def check_per_rank_batch(config: PretrainConfig, ctx: DistContext) -> int:
    """Images each process takes per step: the global batch split evenly over the processes."""
    if config.batch_size % ctx.world_size:
        raise ConfigError(
            f"batch_size {config.batch_size} does not split evenly over {ctx.world_size} processes; "
            f"use a multiple of {ctx.world_size}"
        )
    return config.batch_size // ctx.world_size


def check_crop_sizes(config: PretrainConfig) -> None:
    for size in sorted({config.global_crop_size, config.local_crop_size}):
        check_input_size(config.backbone, size)


@dataclass(frozen=True)
class Datasets:
    train: LabeledImages
    test: LabeledImages | None  # only loaded for the kNN monitor


def load_datasets(config: PretrainConfig) -> Datasets:
    def load(split: str) -> LabeledImages:
        return load_dataset(
            config.dataset, config.data_path, split, synthetic_size=config.synthetic_size, seed=config.seed
        )

    train = load("train")
    if config.batch_size > len(train.labels):
        raise DataError(
            f"batch size {config.batch_size} is larger than the {len(train.labels)} training images of "
            f"{config.dataset}; lower --batch-size"
        )
    return Datasets(train=train, test=load("test") if config.knn_monitor else None)


def build_augmentation(config: PretrainConfig, device: torch.device) -> MultiCropAugmentation:
    spec = get_spec(config.backbone)
    augmentation = MultiCropAugmentation(
        global_size=config.global_crop_size,
        local_size=config.local_crop_size,
        n_local=config.n_local_crops,
        global_scale=(config.global_crop_scale_min, 1.0),
        local_scale=(0.05, config.local_crop_scale_max),
        mean=spec.mean,
        std=spec.std,
    )
    return augmentation.to(device)


def build_knn_monitor(config: PretrainConfig, datasets: Datasets, device: torch.device) -> KnnMonitor | None:
    if not config.knn_monitor or datasets.test is None:
        return None
    spec = get_spec(config.backbone)
    return KnnMonitor(
        train_images=datasets.train.images,
        train_labels=datasets.train.labels,
        test_images=datasets.test.images,
        test_labels=datasets.test.labels,
        num_classes=len(datasets.train.classes),
        transform=EvalTransform(config.global_crop_size, spec.mean, spec.std).to(device),
        batch_size=config.batch_size_eval,
        device=device,
        max_train=config.knn_max_train,
        max_test=config.knn_max_test,
        seed=config.seed,
    )


def build_training_method(config: PretrainConfig, device: torch.device) -> Method:
    """The method around a fresh (or pretrained) backbone, on `device`, in train mode."""

    def backbone_factory() -> nn.Module:
        return create_backbone(config.backbone, pretrained=config.pretrained, weights=config.weights)

    method = build_method(config, backbone_factory)
    method.to(device)
    method.train()
    return method
