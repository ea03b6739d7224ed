"""Builders: read a PretrainConfig or DistillConfig and return the plain objects the training loop works with.

Each builder does one thing and raises a one-line LowDinoError on bad input, so that the trainer
can run all of them before it writes a single file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch
from torch import nn

from lowdino.augment import EvalTransform
from lowdino.backbones import check_input_size, get_spec
from lowdino.contract.rundir import RunDir
from lowdino.data import LabeledImages
from lowdino.data.folderstream import FolderSource
from lowdino.data.loader import LoaderOptions, StreamingBatches, StreamSource
from lowdino.data.sources import choose_loading, describe, open_training_data
from lowdino.errors import ConfigError, DataError
from lowdino.methods import Method
from lowdino.resources import Overrides, ResourcePlan, plan_resources, this_machine
from lowdino.train import kinds
from lowdino.train.distributed import DistContext
from lowdino.train.kinds import TrainConfig, eval_image_size, model_name, run_kind
from lowdino.train.knn_monitor import KnnMonitor
from lowdino.train.validation import split_validation, validation_indices


def default_output_dir(config: TrainConfig, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{run_kind(config)}-{model_name(config)}-{stamp}"


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


def check_per_rank_batch(config: TrainConfig, ctx: DistContext, *, min_batch: int = 1) -> int:
    """Images each process takes per step: the global batch split evenly over the processes, at
    least the `min_batch` the method's loss accepts (TrainingNeeds.min_batch)."""
    if config.batch_size % ctx.world_size:
        raise ConfigError(
            f"batch_size {config.batch_size} does not split evenly over {ctx.world_size} processes; "
            f"use a multiple of {ctx.world_size}"
        )
    per_rank = config.batch_size // ctx.world_size
    if per_rank < min_batch:
        raise ConfigError(
            f"{kinds.method_name(config)} needs at least {min_batch} images per process and step, "
            f"got {per_rank}; use --batch-size {min_batch * ctx.world_size} or more"
        )
    return per_rank


def check_crop_sizes(config: TrainConfig) -> None:
    for name, size in kinds.network_inputs(config):
        check_input_size(name, size)


@dataclass(frozen=True)
class Datasets:
    train: LabeledImages | StreamSource  # what the run trains on (without the validation images)
    val: LabeledImages | None  # held out of `train`; only with the kNN monitor
    knn_train: LabeledImages | None = None  # kNN memory bank of a streamed training set (a decoded subset)
    loading: str = ""  # how the training set is read and why (logged at the start of a run)


def load_datasets(config: TrainConfig) -> Datasets:
    """The training split, less a held-out validation split when the kNN monitor needs one.

    The test split is not loaded: nothing that runs during training may look at it. A streamed image
    folder holds its validation files out of the stream; webdataset shards cannot (a record is only
    seen by reading the shard), so they train without the monitor.
    """
    choice = choose_loading(
        config.dataset,
        config.data_path,
        data_loading=config.data_loading,
        memory_limit_gb=config.memory_limit_gb,
    )
    train = open_training_data(
        config.dataset,
        config.data_path,
        shuffle_buffer=config.shuffle_buffer,
        synthetic_size=config.synthetic_size,
        seed=config.seed,
        choice=choice,
    )
    loading = describe(choice, config.dataset)
    val: LabeledImages | None = None
    knn_train: LabeledImages | None = None
    if config.knn_monitor:
        if config.val_fraction <= 0:
            raise ConfigError(
                "the kNN monitor needs a validation split, but val_fraction is 0; "
                "set --val-fraction (e.g. 0.1) or turn the monitor off with --no-knn-monitor"
            )
        try:
            if isinstance(train, LabeledImages):
                train, val = split_validation(train, config.val_fraction)
            elif isinstance(train, FolderSource):
                held_out = validation_indices(train.labels, config.val_fraction, train.classes)
                train, val_files = train.hold_out(held_out)
                size = eval_image_size(config)
                val = val_files.sample_images(config.knn_max_val, size, 1)
                knn_train = train.sample_images(config.knn_max_train, size, 0)
            else:
                raise ConfigError(
                    "the kNN monitor holds out a validation split, which webdataset shards cannot do; "
                    "pass --no-knn-monitor (evaluate checkpoints with `lowdino eval`) or pretrain from the "
                    "image folder"
                )
        except DataError as exc:
            raise DataError(
                f"the kNN monitor's validation split: {exc} (--val-fraction), or use --no-knn-monitor"
            ) from exc
    if config.batch_size > len(train):
        raise DataError(
            f"batch size {config.batch_size} is larger than the {len(train)} training images of "
            f"{config.dataset}; lower --batch-size"
        )
    return Datasets(train=train, val=val, knn_train=knn_train, loading=loading)


def plan_run_resources(config: TrainConfig, datasets: Datasets, device: torch.device) -> ResourcePlan:
    """Threads, loader workers and where augmentation runs for this process (lowdino.resources)."""
    streamed = not isinstance(datasets.train, LabeledImages)
    return plan_resources(this_machine(device.type), Overrides.of(config), streamed=streamed)


def build_stream(
    config: TrainConfig,
    datasets: Datasets,
    augmentation: nn.Module,
    ctx: DistContext,
    device: torch.device,
    resources: ResourcePlan,
) -> StreamingBatches | None:
    """DataLoader workers cutting the crops `augmentation` needs (and, when the plan says so,
    augmenting them), for a streamed training set."""
    if isinstance(datasets.train, LabeledImages):
        return None
    options = LoaderOptions(
        num_workers=resources.loader_workers,
        prefetch_factor=config.prefetch_factor,
        persistent_workers=config.persistent_workers,
    )
    return StreamingBatches(
        datasets.train,
        augmentation.specs(),  # type: ignore[operator]
        config.batch_size // ctx.world_size,
        seed=config.seed,
        rank=ctx.rank,
        world_size=ctx.world_size,
        device=device,
        options=options,
        decode_device=config.decode_device,
        augment_in_workers=augmentation if resources.augment_in_workers else None,
    )


def build_augmentation(config: TrainConfig, device: torch.device) -> nn.Module:
    return kinds.build_augmentation(config).to(device)


def build_knn_monitor(config: TrainConfig, datasets: Datasets, device: torch.device) -> KnnMonitor | None:
    if not config.knn_monitor or datasets.val is None:
        return None
    spec = get_spec(model_name(config))
    knn_train = datasets.knn_train or datasets.train
    assert isinstance(knn_train, LabeledImages)
    return KnnMonitor(
        train_images=knn_train.images,
        train_labels=knn_train.labels,
        query_images=datasets.val.images,
        query_labels=datasets.val.labels,
        num_classes=len(datasets.train.classes),
        transform=EvalTransform(eval_image_size(config), spec.mean, spec.std).to(device),
        batch_size=config.batch_size_eval,
        device=device,
        max_train=config.knn_max_train,
        max_query=config.knn_max_val,
        seed=config.seed,
    )


def build_training_method(
    config: TrainConfig, device: torch.device, num_classes: int | None = None
) -> Method:
    """The method around a fresh (or pretrained) backbone, on `device`, in train mode."""
    entry = kinds.training_method(config)
    method = entry.from_config(config, kinds.backbone_factory(config), num_classes=num_classes)
    method.to(device)
    method.train()
    return method
