"""`pretrain(config)`: the DINO / BYOL training loop, in the spirit of facebookresearch/dino main_dino.py.

Reading order: `pretrain` resolves where the run lives and joins the process group; `prepare`
runs every builder and check (nothing is written until all of them pass); `_open_outputs` creates
the run directory files; `_train` is the loop; `train_step` is one optimiser step:

    uint8 batch -> multi-crop on the device -> method.training_loss (teacher under no_grad)
    -> backward (AMP) -> per-tensor grad clipping -> freeze the head's last layer early on
    -> AdamW step -> teacher EMA update -> one metrics record

Only rank 0 writes (metrics, logs, TensorBoard, checkpoints, summary); every rank takes the same
decisions (kNN / checkpoint / stop) from the step count and one all-reduce per step.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from lowdino.backbones import count_parameters
from lowdino.config import PretrainConfig
from lowdino.config.loading import dump_config
from lowdino.contract.callbacks import TrainerCallback
from lowdino.contract.metrics_log import MetricsWriter, truncate_metrics
from lowdino.contract.rundir import RunDir, atomic_write_text
from lowdino.data import LabeledImages, iterate_batches, steps_per_epoch
from lowdino.data.loader import StreamingBatches
from lowdino.data.types import CropBatch
from lowdino.devices import (
    Precision,
    out_of_memory_error,
    resolve_device,
    resolve_device_ids,
    resolve_precision,
)
from lowdino.errors import LowDinoError
from lowdino.methods import Method, TrainingNeeds, training_needs
from lowdino.train import builders
from lowdino.train.checkpoint import (
    capture_rng_state,
    check_compatible,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from lowdino.train.collapse import CollapseDetector
from lowdino.train.distributed import (
    DistContext,
    all_gather_objects,
    any_ranks,
    barrier,
    broadcast_module_state,
    context_from_env,
    destroy_process_group,
    init_process_group,
)
from lowdino.train.kinds import (
    TrainConfig,
    labels_used,
    method_name,
    model_name,
    run_kind,
)
from lowdino.train.knn_monitor import KnnMonitor
from lowdino.train.memory_check import plan_cpu_memory, refusal
from lowdino.train.optim import (
    Schedules,
    apply_schedules,
    build_optimizer,
    build_schedules,
    clip_gradients_per_tensor,
)
from lowdino.train.progress import ProgressBar, close_logging, setup_logging
from lowdino.train.syncbn import sync_batchnorm_children

# Steps left out of the steady-state images/s (start-up: allocator, kernel selection, caches).
WARMUP_STEPS = 5


class TrainingDivergedError(LowDinoError):
    """The loss became NaN or infinite."""


@dataclass
class Prepared:
    """Everything built before the first file is written."""

    config: TrainConfig
    ctx: DistContext
    device: torch.device
    precision: Precision
    run_dir: RunDir
    datasets: builders.Datasets
    per_rank_batch: int
    needs: TrainingNeeds  # what the method declares: EMA, temperature, frozen last layer, collapse watch
    schedules: Schedules
    method: Method
    optimizer: torch.optim.AdamW
    scaler: torch.amp.GradScaler
    augmentation: nn.Module
    knn: KnnMonitor | None
    device_ids: list[int] | None
    checkpoint: dict[str, Any] | None
    stream: StreamingBatches | None = None  # DataLoader workers of a streamed training set


@dataclass
class Progress:
    """Counters of the loop; those in CHECKPOINTED carry over to a resumed run."""

    CHECKPOINTED = ("best_knn", "last_knn", "wall_time", "last_loss", "collapse_warning")

    step: int = 0  # optimiser steps done
    best_knn: float | None = None
    last_knn: float | None = None
    wall_time: float = 0.0
    last_loss: float | None = None
    collapse_warning: str | None = None
    # This process only: the steady-state throughput and the last step's rate.
    timed_images: int = field(default=0, repr=False)
    timed_seconds: float = field(default=0.0, repr=False)
    steps_this_run: int = field(default=0, repr=False)
    last_images_per_sec: float = field(default=0.0, repr=False)

    def count_step(self, loss: float, images: int, seconds: float) -> None:
        self.step += 1
        self.last_loss = loss
        self.steps_this_run += 1
        self.last_images_per_sec = images / max(seconds, 1e-9)
        if self.steps_this_run > WARMUP_STEPS:
            self.timed_images += images
            self.timed_seconds += seconds

    def state_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.CHECKPOINTED}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in self.CHECKPOINTED:
            setattr(self, key, state.get(key, getattr(self, key)))


def pretrain(config: PretrainConfig, *, callbacks: Sequence[TrainerCallback] = ()) -> dict[str, Any]:
    """Self-supervised pretraining (DINO / BYOL); see `train`."""
    return train(config, callbacks=callbacks)


def train(config: TrainConfig, *, callbacks: Sequence[TrainerCallback] = ()) -> dict[str, Any]:
    """Train `config` (pretrain or distill) to completion (or until stopped) and return the summary.

    Raises a LowDinoError subclass, before anything is written, for bad input: an existing run in
    the output directory, a missing dataset, a batch larger than the dataset, crops too small for
    the backbone, CUDA without a GPU, an incompatible checkpoint.
    """
    ctx = context_from_env()
    device = resolve_device(config.device, local_rank=ctx.local_rank if ctx.distributed else None)
    precision = resolve_precision(config.precision, device)
    init_process_group(ctx, device)
    try:
        config = config.model_copy(update={"output_dir": str(_agree_on_output_dir(config, ctx))})
        prepared = prepare(config, ctx, device, precision)
        check_cpu_memory(prepared)
        return _run(prepared, callbacks)
    finally:
        destroy_process_group()


def _agree_on_output_dir(config: TrainConfig, ctx: DistContext) -> Path:
    """The run directory; the default's timestamp is rank 0's, so every process writes to the same one."""
    path = [str(config.output_dir or builders.default_output_dir(config))]
    if ctx.distributed:
        dist.broadcast_object_list(path, src=0)
    return Path(path[0])


def prepare(config: TrainConfig, ctx: DistContext, device: torch.device, precision: Precision) -> Prepared:
    """Run every check and builder; nothing is written (benchmarks reuse it to time bare steps)."""
    run_dir = RunDir(Path(config.output_dir or "."))
    builders.check_run_dir(run_dir, resume=config.resume)
    builders.check_crop_sizes(config)
    per_rank_batch = builders.check_per_rank_batch(config, ctx)
    device_ids = (
        resolve_device_ids(config.device_ids, device, distributed=ctx.distributed)
        if config.device_ids
        else None
    )
    checkpoint = None
    if config.resume:
        checkpoint = load_checkpoint(run_dir.checkpoint)
        check_compatible(checkpoint, config.model_dump(mode="json"), run_dir.checkpoint)

    datasets = builders.load_datasets(config)
    spe = steps_per_epoch(len(datasets.train), config.batch_size, world_size=1, drop_last=True)
    needs = training_needs(config)
    schedules = build_schedules(config, needs, spe)

    # Same seed on every rank for the networks; each rank then draws its own augmentations.
    seed_everything(config.seed)
    method = builders.build_training_method(config, device, num_classes=len(datasets.train.classes))
    if config.channels_last:
        # Before the optimiser and any wrapper see the parameters: the conversion keeps each
        # Parameter object and swaps its storage, so every later reference sees the new layout.
        method.to(memory_format=torch.channels_last)
    if ctx.distributed and device.type == "cuda":
        # BatchNorm statistics over the global batch, as in single-GPU training (SyncBN needs GPUs).
        # timm's converter: torch's drops the activation of timm's fused BatchNormAct2d layers.
        sync_batchnorm_children(method)  # type: ignore[arg-type]
    optimizer = build_optimizer(method)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.use_scaler)
    seed_everything(config.seed + ctx.rank)
    augmentation = builders.build_augmentation(config, device)
    return Prepared(
        config=config,
        ctx=ctx,
        device=device,
        precision=precision,
        run_dir=run_dir,
        datasets=datasets,
        per_rank_batch=per_rank_batch,
        needs=needs,
        schedules=schedules,
        method=method,
        optimizer=optimizer,
        scaler=scaler,
        augmentation=augmentation,
        knn=builders.build_knn_monitor(config, datasets, device) if ctx.is_main else None,
        device_ids=device_ids,
        checkpoint=checkpoint,
        stream=builders.build_stream(config, datasets, augmentation, ctx, device),
    )


def check_cpu_memory(p: Prepared) -> None:
    """Refuse a CPU run whose batch would not fit in memory (lowdino.train.memory_check), before step 1."""
    plan = plan_cpu_memory(p)
    # Every rank refuses together (one rank alone would leave the others waiting at a collective).
    (refuse,) = any_ranks([plan is not None and not plan.fits], p.ctx, p.device)
    if refuse:
        raise refusal(plan, batch_size=p.config.batch_size)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _run(p: Prepared, callbacks: Sequence[TrainerCallback]) -> dict[str, Any]:
    # Every rank has passed every check: from here on files are written.
    barrier(p.ctx)
    progress = Progress()
    detector = build_collapse_detector(p.needs)
    if p.checkpoint is not None:
        _restore(p, p.checkpoint, progress, detector)
    logger, writer = _open_outputs(p, progress.step, callbacks)
    try:
        _wrap_for_devices(p)
        _log_start(p, progress, logger)
        status = _train(p, progress, detector, writer, callbacks, logger)
        summary = _summary(p, progress, status)
        if p.ctx.is_main:
            atomic_write_text(p.run_dir.summary, _json(summary))
            logger.info("run %s: %s", status, _json(summary))
        return summary
    finally:
        if writer is not None:
            writer.close()
        close_logging(logger)


def build_collapse_detector(needs: TrainingNeeds) -> CollapseDetector | None:
    """A detector watching the metric the method names, for methods with a prototype output."""
    watch = needs.collapse
    return None if watch is None else CollapseDetector(out_dim=watch.out_dim, loss_metric=watch.loss_metric)


def _restore(
    p: Prepared, checkpoint: dict[str, Any], progress: Progress, detector: CollapseDetector | None
) -> None:
    p.method.load_state_dict(checkpoint["method"])
    p.optimizer.load_state_dict(checkpoint["optimizer"])
    if checkpoint.get("scaler"):
        p.scaler.load_state_dict(checkpoint["scaler"])
    progress.step = int(checkpoint["step"])
    state = checkpoint.get("trainer_state") or {}
    progress.load_state_dict(state)
    if detector is not None and "collapse" in state:
        detector.load_state_dict(state["collapse"])
    rng_states = checkpoint.get("rng") or []
    if len(rng_states) == p.ctx.world_size:
        restore_rng_state(rng_states[p.ctx.rank])
    else:
        # Another world size: the exact augmentation stream cannot be replayed; stay deterministic.
        seed_everything(p.config.seed + p.ctx.rank + progress.step)


def _open_outputs(
    p: Prepared, start_step: int, callbacks: Sequence[TrainerCallback]
) -> tuple[logging.Logger, MetricsWriter | None]:
    if not p.ctx.is_main:
        return setup_logging(None, enabled=False), None
    p.run_dir.path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p.run_dir.config, dump_config(p.config))
    if p.config.resume:
        truncate_metrics(p.run_dir.metrics, start_step)
    logger = setup_logging(p.run_dir.log)
    tensorboard_dir = Path(p.config.tensorboard_dir)
    if not tensorboard_dir.is_absolute():
        tensorboard_dir = p.run_dir.path / tensorboard_dir
    writer = MetricsWriter(
        p.run_dir.metrics, tensorboard_dir=tensorboard_dir, callbacks=callbacks, purge_step=start_step + 1
    )
    return logger, writer


def _wrap_for_devices(p: Prepared) -> None:
    """Broadcast rank 0's weights, then route the student's forward through DDP or DataParallel."""
    if p.ctx.distributed:
        broadcast_module_state(p.method, p.ctx)  # type: ignore[arg-type]
        device_ids = [p.device.index] if p.device.type == "cuda" else None
        p.method.wrap_student(
            lambda student: nn.parallel.DistributedDataParallel(student, device_ids=device_ids)
        )
    elif p.device_ids is not None:
        # On CPU, nn.DataParallel has no GPU to scatter to and calls the backbone unchanged.
        ids = p.device_ids or None
        p.method.wrap_backbone(lambda backbone: nn.DataParallel(backbone, device_ids=ids))
    if p.config.compile:
        _compile_backbones(p)


def _compile_backbones(p: Prepared) -> None:
    """torch.compile the backbones' forward (the modules, hence checkpoints, stay as they are)."""

    def compiled(module: nn.Module) -> nn.Module:
        # Static shapes: one graph per crop resolution. With dynamic shapes, inductor (torch 2.14)
        # failed on mobilevit_xxs once the second resolution arrived (benchmarks/compile_speed.py).
        return cast(nn.Module, torch.compile(module, dynamic=False))

    p.method.wrap_backbone(compiled)
    wrap_teacher = getattr(p.method.teacher, "wrap_backbone", None)
    if callable(wrap_teacher):
        wrap_teacher(compiled)


def _log_start(p: Prepared, progress: Progress, logger: logging.Logger) -> None:
    c = p.config
    logger.info(
        "%s %s %s on %s (%s, world size %d): %d images, batch %d, %d steps/epoch, %d steps total%s",
        "resuming" if progress.step else "starting",
        method_name(c),
        model_name(c),
        p.device,
        p.precision.name,
        p.ctx.world_size,
        len(p.datasets.train),
        c.batch_size,
        p.schedules.steps_per_epoch,
        p.schedules.total_steps,
        f" from step {progress.step}" if progress.step else "",
    )
    logger.info("run directory: %s", p.run_dir.path)
    if p.datasets.loading:
        logger.info("%s", p.datasets.loading)


def _train(
    p: Prepared,
    progress: Progress,
    detector: CollapseDetector | None,
    writer: MetricsWriter | None,
    callbacks: Sequence[TrainerCallback],
    logger: logging.Logger,
) -> str:
    """The loop over epochs and steps; returns 'completed' or 'cancelled'."""
    c, s = p.config, p.schedules
    spe, total = s.steps_per_epoch, s.total_steps
    collapse_every = max(1, min(spe * c.logging_freq, total // 10))
    extra_sync = _parameters_outside_student(p)
    bar = ProgressBar(total=total, initial=progress.step, enabled=p.ctx.is_main)
    started = time.perf_counter() - progress.wall_time
    clock = SaveClock(c.checkpoint_every_minutes)
    try:
        while progress.step < total:
            epoch = progress.step // spe
            for images, labels in _epoch_batches(p, epoch, start_batch=progress.step - epoch * spe):
                tick = time.perf_counter()
                loss, metrics = train_step(p, images, progress.step, extra_sync, labels)
                loss = _mean_over_ranks(loss, p)
                progress.count_step(loss, c.batch_size, time.perf_counter() - tick)
                done = progress.step
                periodic = done % spe == 0 and (done // spe) % c.logging_freq == 0
                last = done == total

                record = _record(p, done, loss, metrics, progress.last_images_per_sec)
                if p.stream is not None:
                    record["skipped_images"] = p.stream.skipped  # unreadable files met by this rank
                if detector is not None:
                    detector.observe(metrics)
                    if done % collapse_every == 0 or last:
                        _check_collapse(detector, record, progress, logger)
                if p.knn is not None and (periodic or last):
                    _measure_knn(p, record, progress, logger)
                progress.wall_time = time.perf_counter() - started
                if writer is not None:
                    writer.write(record)  # callbacks see the record before they are asked to stop
                bar.update(record)

                # Rank 0's clock and STOP file decide for every rank, in one all-reduce.
                stop, time_due = any_ranks(
                    [p.ctx.is_main and _stop_requested(p, callbacks), p.ctx.is_main and clock.due()],
                    p.ctx,
                    p.device,
                )
                every = c.checkpoint_every_steps
                if periodic or last or stop or time_due or (every and done % every == 0):
                    _save(p, progress, detector, periodic_epoch=done // spe if periodic else None)
                    clock.saved()
                if stop:
                    logger.info("stop requested: checkpoint saved at step %d", done)
                    if p.ctx.is_main:
                        p.run_dir.stop_request.unlink(missing_ok=True)
                    return "cancelled"
                if last:
                    break  # max_steps can end the run mid-epoch
    finally:
        bar.close()
    return "completed"


class SaveClock:
    """Wall-clock checkpoint cadence: due once `minutes` have passed since the start or the last save."""

    def __init__(self, minutes: float | None) -> None:
        self.interval = minutes * 60.0 if minutes else None  # 0 / None: off
        self.last = time.monotonic()

    def due(self) -> bool:
        return self.interval is not None and time.monotonic() - self.last >= self.interval

    def saved(self) -> None:
        self.last = time.monotonic()


def _epoch_batches(
    p: Prepared, epoch: int, *, start_batch: int
) -> Iterator[tuple[torch.Tensor | CropBatch, torch.Tensor]]:
    """The batches of ``epoch`` from ``start_batch`` on (> 0 when resuming mid-epoch)."""
    if p.stream is not None:
        return p.stream.epoch(epoch, start_batch)
    assert isinstance(p.datasets.train, LabeledImages)
    return iter(
        iterate_batches(
            p.datasets.train,
            p.per_rank_batch,
            shuffle=True,
            drop_last=True,
            seed=p.config.seed,
            epoch=epoch,
            rank=p.ctx.rank,
            world_size=p.ctx.world_size,
            device=p.device,
            start_batch=start_batch,
        )
    )


def _stop_requested(p: Prepared, callbacks: Sequence[TrainerCallback]) -> bool:
    return p.run_dir.stop_requested() or any(callback.should_stop() for callback in callbacks)


def _check_collapse(
    detector: CollapseDetector, record: dict[str, Any], progress: Progress, logger: logging.Logger
) -> None:
    warning = detector.end_interval()
    if warning:
        record["collapse_warning"] = progress.collapse_warning = warning
        logger.warning("step %d: %s", record["step"], warning)


def _measure_knn(p: Prepared, record: dict[str, Any], progress: Progress, logger: logging.Logger) -> None:
    assert p.knn is not None
    knn = p.knn(p.method.eval_backbone())
    record["knn_top1"] = progress.last_knn = knn
    progress.best_knn = knn if progress.best_knn is None else max(progress.best_knn, knn)
    logger.info(
        "step %d epoch %.2f: loss %.4f, validation kNN top-1 %.2f%%",
        record["step"],
        record["epoch"],
        record["loss"],
        knn,
    )


def train_step(
    p: Prepared,
    images: torch.Tensor | CropBatch,
    step: int,
    extra_sync: list[nn.Parameter],
    labels: torch.Tensor | None = None,
) -> tuple[float, dict[str, float]]:
    """One optimiser step at index `step` (0-based); returns this rank's loss and method metrics."""
    s, c = p.schedules, p.config
    apply_schedules(p.optimizer, s, step)
    try:
        with torch.no_grad():
            crops = p.augmentation(images)
            if c.channels_last:
                crops = [crop.contiguous(memory_format=torch.channels_last) for crop in crops]
        with p.precision.autocast(p.device):
            loss, metrics = p.method.training_loss(
                crops, step=step, teacher_temp=float(s.teacher_temp[step]), labels=labels
            )
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise TrainingDivergedError(
                f"the loss is {loss_value} at step {step + 1}; lower --lr, clip gradients (e.g. --clip-grad 3) "
                "or use --precision fp32"
            )
        p.optimizer.zero_grad(set_to_none=True)
        p.scaler.scale(loss).backward()
        _all_reduce_gradients(extra_sync, p.ctx)
        if c.clip_grad > 0:
            p.scaler.unscale_(p.optimizer)
            clip_gradients_per_tensor(_trained_parameters(p.optimizer), c.clip_grad)
        p.method.cancel_last_layer_gradients(s.schedule_epoch(step), p.needs.freeze_last_layer_epochs)
        p.scaler.step(p.optimizer)
        p.scaler.update()
        p.method.update_target(float(s.momentum[step]))
    except torch.OutOfMemoryError as exc:
        raise out_of_memory_error(c.batch_size, p.device) from exc
    return loss_value, metrics


def _trained_parameters(optimizer: torch.optim.Optimizer) -> list[nn.Parameter]:
    return [param for group in optimizer.param_groups for param in group["params"]]


def _parameters_outside_student(p: Prepared) -> list[nn.Parameter]:
    """Trained parameters DDP does not cover (BYOL's predictor lives beside the student)."""
    if not p.ctx.distributed:
        return []
    in_student = {id(param) for param in p.method.student.parameters()}
    return [param for param in _trained_parameters(p.optimizer) if id(param) not in in_student]


def _all_reduce_gradients(parameters: list[nn.Parameter], ctx: DistContext) -> None:
    grads = [param.grad for param in parameters if param.grad is not None]
    if not grads:
        return
    flat = torch.cat([grad.reshape(-1) for grad in grads])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def _mean_over_ranks(loss: float, p: Prepared) -> float:
    if not p.ctx.distributed:
        return loss
    value = torch.tensor([loss], dtype=torch.float64, device=p.device)
    dist.all_reduce(value)
    return float(value[0]) / p.ctx.world_size


def _record(
    p: Prepared, done: int, loss: float, metrics: dict[str, float], images_per_sec: float
) -> dict[str, Any]:
    s = p.schedules
    index = done - 1  # schedule values used by the step just taken
    record: dict[str, Any] = {
        "step": done,
        "epoch": done / s.steps_per_epoch,
        "time": time.time(),
        "total_steps": s.total_steps,
        "loss": loss,
        "lr": float(s.lr[index]),
        "weight_decay": float(s.weight_decay[index]),
    }
    if p.needs.ema_momentum is not None:
        record["momentum"] = float(s.momentum[index])
    if p.needs.teacher_temp is not None:
        record["teacher_temp"] = float(s.teacher_temp[index])
    record["images_per_sec"] = images_per_sec
    record.update({key: float(value) for key, value in metrics.items()})
    return record


def _save(
    p: Prepared, progress: Progress, detector: CollapseDetector | None, *, periodic_epoch: int | None
) -> None:
    rng = all_gather_objects(capture_rng_state(), p.ctx)
    if not p.ctx.is_main:
        return
    trainer_state = progress.state_dict()
    if detector is not None:
        trainer_state["collapse"] = detector.state_dict()
    payload = {
        "kind": run_kind(p.config),
        "backbone_name": model_name(p.config),
        "backbone": p.method.eval_backbone().state_dict(),
        "method": p.method.state_dict(),
        "optimizer": p.optimizer.state_dict(),
        "scaler": p.scaler.state_dict() if p.scaler.is_enabled() else None,
        "step": progress.step,
        "epoch": progress.step / p.schedules.steps_per_epoch,
        "rng": rng,
        "config": p.config.model_dump(mode="json"),
        "trainer_state": trainer_state,
    }
    paths = [p.run_dir.checkpoint]
    if periodic_epoch is not None:
        paths.append(p.run_dir.periodic_checkpoint(periodic_epoch))
    save_checkpoint(paths, payload)


def _summary(p: Prepared, progress: Progress, status: str) -> dict[str, Any]:
    backbone = p.method.eval_backbone()
    timed = progress.timed_seconds > 0
    return {
        "status": status,
        "kind": run_kind(p.config),
        "backbone": model_name(p.config),
        "method": method_name(p.config),
        "steps": progress.step,
        "total_steps": p.schedules.total_steps,
        "epochs": progress.step / p.schedules.steps_per_epoch,
        "final_loss": progress.last_loss,
        # The run's figure is the final checkpoint's; the best of many looks is optimistic, so it is
        # only given beside it, on the validation split it was measured on.
        "final_knn_top1": progress.last_knn,
        "best_val_knn_top1": progress.best_knn,
        "knn_split": "val" if p.knn is not None else None,
        "labels_used": labels_used(p.config),
        "images_per_sec": progress.timed_images / progress.timed_seconds if timed else None,
        "params": count_parameters(backbone),
        "trainable_params": sum(param.numel() for param in _trained_parameters(p.optimizer)),
        "wall_time_sec": progress.wall_time,
        "collapse_warning": progress.collapse_warning,
        "world_size": p.ctx.world_size,
        "device": str(p.device),
        "output_dir": str(p.run_dir.path),
    }


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, default=str)
