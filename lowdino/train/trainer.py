"""`train(config)`: the DINO / BYOL / distillation training loop, in the spirit of facebookresearch/dino
main_dino.py (`train_dino` prepares and loops over epochs, `train_one_epoch` runs the steps).

Reading order: `train` resolves where the run lives and joins the process group; `prepare` runs
every builder and check (nothing is written until all of them pass, the CPU memory check included);
`_open_outputs` creates the run directory files; `_train` loops over epochs; `train_one_epoch`
over the steps of one, each an optimiser step (`lowdino.train.step.train_step`) followed by its
record, kNN look, checkpoint and stop decisions (`_finish_step`).

Only rank 0 writes (metrics, logs, TensorBoard, checkpoints, summary); every rank takes the same
decisions (kNN / checkpoint / stop) from the step count and one all-reduce per step.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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
from lowdino.data.types import CropBatch
from lowdino.devices import Precision, resolve_device, resolve_device_ids, resolve_precision
from lowdino.methods import TrainingNeeds
from lowdino.resources import apply_threads
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
    training_needs,
)
from lowdino.train.memory_check import check_cpu_memory, refusal
from lowdino.train.optim import Schedules, build_optimizer, build_schedules
from lowdino.train.progress import ProgressBar, close_logging, setup_logging
from lowdino.train.state import Prepared, Progress, SaveClock
from lowdino.train.step import parameters_outside_student, train_step, trained_parameters
from lowdino.train.syncbn import sync_batchnorm_children
from lowdino.train.system_monitor import SystemMonitor


def pretrain(config: PretrainConfig, *, callbacks: Sequence[TrainerCallback] = ()) -> dict[str, Any]:
    """Self-supervised pretraining (DINO / BYOL); see `train`."""
    return train(config, callbacks=callbacks)


def train(config: TrainConfig, *, callbacks: Sequence[TrainerCallback] = ()) -> dict[str, Any]:
    """Train `config` (pretrain or distill) to completion (or until stopped) and return the summary.

    Raises a LowDinoError subclass, before anything is written, for bad input: an existing run in
    the output directory, a missing dataset, a batch larger than the dataset or smaller than the
    method accepts, crops too small for the backbone, CUDA without a GPU, an incompatible checkpoint,
    a batch that does not fit in CPU memory.
    """
    ctx = context_from_env()
    device = resolve_device(config.device, local_rank=ctx.local_rank if ctx.distributed else None)
    precision = resolve_precision(config.precision, device)
    init_process_group(ctx, device)
    try:
        config = config.model_copy(update={"output_dir": str(_agree_on_output_dir(config, ctx))})
        prepared = prepare(config, ctx, device, precision)
        memory = check_cpu_memory(prepared)
        # Every rank refuses together (one rank alone would leave the others waiting at a collective).
        (refuse,) = any_ranks([memory.refuses], prepared.ctx, prepared.device)
        if refuse:
            raise refusal(memory.plan, batch_size=config.batch_size)
        return _run(prepared, callbacks, memory_note=memory.note)
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
    needs = training_needs(config)
    per_rank_batch = builders.check_per_rank_batch(config, ctx, min_batch=needs.min_batch)
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
    resources = builders.plan_run_resources(config, datasets, device)
    apply_threads(resources)
    spe = steps_per_epoch(len(datasets.train), config.batch_size, world_size=1, drop_last=True)
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
        stream=builders.build_stream(config, datasets, augmentation, ctx, device, resources),
        resources=resources,
    )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _run(p: Prepared, callbacks: Sequence[TrainerCallback], *, memory_note: str = "") -> dict[str, Any]:
    # Every rank has passed every check: from here on files are written.
    barrier(p.ctx)
    progress = Progress()
    detector = build_collapse_detector(p.needs, p.schedules)
    if p.checkpoint is not None:
        _restore(p, p.checkpoint, progress, detector)
    logger, writer = _open_outputs(p, progress.step, callbacks)
    every = p.config.system_metrics_every_seconds
    monitor = SystemMonitor(every, p.device).start() if p.ctx.is_main and every > 0 else None
    try:
        _wrap_for_devices(p)
        _log_start(p, progress, logger)
        if memory_note:
            logger.info("%s", memory_note)
        loop = Loop(
            detector=detector,
            writer=writer,
            callbacks=callbacks,
            logger=logger,
            extra_sync=parameters_outside_student(p.method, p.optimizer, p.ctx),
            bar=ProgressBar(total=p.schedules.total_steps, initial=progress.step, enabled=p.ctx.is_main),
            clock=SaveClock(p.config.checkpoint_every_minutes),
            started=time.perf_counter() - progress.wall_time,
            monitor=monitor,
        )
        if progress.step == 0 and p.knn is not None:
            _measure_init_knn(p, progress, loop)
        status = _train(p, progress, loop)
        summary = _summary(p, progress, status)
        if p.ctx.is_main:
            atomic_write_text(p.run_dir.summary, _json(summary))
            logger.info("run %s: %s", status, _json(summary))
        return summary
    finally:
        if monitor is not None:
            monitor.close()
        if writer is not None:
            writer.close()
        close_logging(logger)


def build_collapse_detector(
    needs: TrainingNeeds, schedules: Schedules | None = None
) -> CollapseDetector | None:
    """A detector watching the metric the method names, for methods with a prototype output.

    With `schedules`, a loss at ln(out_dim) counts only after the teacher-temperature warm-up and
    one pass over the data (DINO's starting point; see lowdino.train.collapse).
    """
    watch = needs.collapse
    if watch is None:
        return None
    warmup = 0 if schedules is None else max(schedules.teacher_temp_warmup_steps, schedules.steps_per_epoch)
    return CollapseDetector(
        out_dim=watch.out_dim,
        loss_metric=watch.loss_metric,
        warmup_steps=warmup,
        settle_steps=watch.settle_steps,
    )


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
        compile_backbones(p)


def compile_backbones(p: Prepared) -> None:
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
    if p.resources is not None:
        logger.info("%s", p.resources.describe())
    if p.datasets.loading:
        logger.info("%s", p.datasets.loading)


@dataclass
class Loop:
    """What the loop needs besides the prepared run and its progress: outputs and cadences."""

    detector: CollapseDetector | None
    writer: MetricsWriter | None  # rank 0 only
    callbacks: Sequence[TrainerCallback]
    logger: logging.Logger
    extra_sync: list[nn.Parameter]  # trained parameters DDP does not cover (parameters_outside_student)
    bar: ProgressBar
    clock: SaveClock
    started: float  # perf_counter() at which this run's wall time would be 0 (resumed runs count on)
    monitor: SystemMonitor | None = None  # rank 0 only, unless system_metrics_every_seconds is 0


def _train(p: Prepared, progress: Progress, loop: Loop) -> str:
    """The loop over epochs; returns 'completed' or 'cancelled'."""
    try:
        while progress.step < p.schedules.total_steps and not progress.out_of_time:
            if train_one_epoch(p, progress.step // p.schedules.steps_per_epoch, progress, loop):
                return "cancelled"
    finally:
        loop.bar.close()
    return "completed"


def train_one_epoch(p: Prepared, epoch: int, progress: Progress, loop: Loop) -> bool:
    """The steps of `epoch` left to do (all, unless resuming mid-epoch), up to the run's last step;
    True when a stop was requested (the checkpoint is saved)."""
    spe = p.schedules.steps_per_epoch
    asked = time.perf_counter()  # when the loop asked for the next batch
    for images, labels in _epoch_batches(p, epoch, start_batch=progress.step - epoch * spe):
        tick = time.perf_counter()
        loss, metrics = train_step(p, images, progress.step, loop.extra_sync, labels)
        loss = _mean_over_ranks(loss, p)
        done = time.perf_counter()
        progress.count_step(loss, p.config.batch_size, done - tick)
        if loop.monitor is not None:
            loop.monitor.note_step(tick - asked, done - asked)
        if _finish_step(p, progress, loss, metrics, loop):
            return True
        asked = time.perf_counter()
        if progress.step == p.schedules.total_steps or progress.out_of_time:
            break  # max_steps or max_minutes can end the run mid-epoch
    return False


def _finish_step(p: Prepared, progress: Progress, loss: float, metrics: dict[str, float], loop: Loop) -> bool:
    """Record the step just taken, look at collapse and kNN when due, save when due; True to stop."""
    c, s = p.config, p.schedules
    spe, total = s.steps_per_epoch, s.total_steps
    done = progress.step
    periodic = done % spe == 0 and (done // spe) % c.logging_freq == 0
    last = done == total or _out_of_time(p, progress, loop)

    record = _record(p, done, loss, metrics, progress.last_images_per_sec)
    if p.stream is not None:
        record["skipped_images"] = p.stream.skipped  # unreadable files met by this rank
    if loop.detector is not None:
        loop.detector.observe(metrics)
        if done % max(1, min(spe * c.logging_freq, total // 10)) == 0 or last:
            _check_collapse(loop.detector, record, progress, loop.logger)
    knn_due = bool(c.knn_every_steps) and done % (c.knn_every_steps or 1) == 0
    if p.knn is not None and (periodic or last or knn_due):
        _measure_knn(p, record, progress, loop.logger)
    if loop.monitor is not None:
        if last:
            loop.monitor.sample_now()
        record.update(loop.monitor.take())
    progress.wall_time = time.perf_counter() - loop.started
    if loop.writer is not None:
        loop.writer.write(record)  # callbacks see the record before they are asked to stop
    loop.bar.update(record)

    # Rank 0's clock and STOP file decide for every rank, in one all-reduce.
    stop, time_due = any_ranks(
        [p.ctx.is_main and _stop_requested(p, loop.callbacks), p.ctx.is_main and loop.clock.due()],
        p.ctx,
        p.device,
    )
    every = c.checkpoint_every_steps
    if periodic or last or stop or time_due or (every and done % every == 0):
        _save(p, progress, loop.detector, periodic_epoch=done // spe if periodic else None)
        loop.clock.saved()
    if stop:
        loop.logger.info("stop requested: checkpoint saved at step %d", done)
        if p.ctx.is_main:
            p.run_dir.stop_request.unlink(missing_ok=True)
    return bool(stop)


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


def _out_of_time(p: Prepared, progress: Progress, loop: Loop) -> bool:
    """True once max_minutes of training have passed: this step is then the run's last, measured and
    saved like the one at max_steps. Rank 0's clock decides for every rank (one all-reduce, only when a
    time budget is set), so that all ranks take the same last step."""
    budget = p.config.max_minutes
    if not budget:
        return False
    late = p.ctx.is_main and time.perf_counter() - loop.started >= budget * 60
    [late] = any_ranks([late], p.ctx, p.device)
    if late:
        progress.out_of_time = True
        loop.logger.info("time budget of %g minutes reached: step %d is the last", budget, progress.step)
    return late


def _stop_requested(p: Prepared, callbacks: Sequence[TrainerCallback]) -> bool:
    return p.run_dir.stop_requested() or any(callback.should_stop() for callback in callbacks)


def _check_collapse(
    detector: CollapseDetector, record: dict[str, Any], progress: Progress, logger: logging.Logger
) -> None:
    warning = detector.end_interval(record["step"])
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


def _measure_init_knn(p: Prepared, progress: Progress, loop: Loop) -> None:
    """The kNN monitor before the first update, recorded at step 0 like every later look: the run's own
    random-init figure, which the final one is read against (a resumed run keeps its original one)."""
    assert p.knn is not None
    knn = p.knn(p.method.eval_backbone())
    progress.init_knn = knn  # not a candidate for best_knn: the best is over trained states
    total = p.schedules.total_steps
    record = {"step": 0, "epoch": 0.0, "time": time.time(), "total_steps": total, "knn_top1": knn}
    progress.wall_time = time.perf_counter() - loop.started
    if loop.writer is not None:
        loop.writer.write(record)
    loop.logger.info("step 0 (random init): validation kNN top-1 %.2f%%", knn)


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
        # only given beside it, on the validation split it was measured on. The step-0 look is the
        # untrained network's: final minus init is what the training gained, and it is never the
        # "best" (a run that only lost ground has no trained state better than its start).
        "init_knn_top1": progress.init_knn,
        "final_knn_top1": progress.last_knn,
        "best_val_knn_top1": progress.best_knn,
        "knn_split": "val" if p.knn is not None else None,
        "labels_used": labels_used(p.config),
        "images_per_sec": progress.timed_images / progress.timed_seconds if timed else None,
        "params": count_parameters(backbone),
        "trainable_params": sum(param.numel() for param in trained_parameters(p.optimizer)),
        "wall_time_sec": progress.wall_time,
        "collapse_warning": progress.collapse_warning,
        "world_size": p.ctx.world_size,
        "device": str(p.device),
        "output_dir": str(p.run_dir.path),
    }


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, default=str)
