"""CPU out-of-memory preflight: refuse a run whose batch cannot fit before the kernel kills it.

On a GPU an oversized batch raises torch.OutOfMemoryError, which the trainer turns into a one-line
error. On the CPU nothing raises: the kernel's out-of-memory killer ends the process with SIGKILL,
before Python can print a word (a distillation at the default batch 1024 / 224 px was killed after
111 s on a 24 GiB machine with nothing in train.log). So before the first step on a CPU device:

1. measure the peak resident-memory growth of one forward + backward on probe batches of 1 and 3
   images at the run's real crop sizes (after one unmeasured warm-up step), on a copy of the networks (the run's weights, buffers and
   RNG streams are untouched). Linux resets the peak (VmHWM) when "5" is written to
   /proc/self/clear_refs; glibc's malloc_trim first hands freed memory back, so growth is real;
2. fit growth = fixed + per_image x images through the two probes and scale it to the per-process
   batch, add AdamW's state (two copies of the trained weights, plus one for the update's temporaries),
   times the processes of this run on this machine (torchrun's LOCAL_WORLD_SIZE);
3. compare with the memory available: MemAvailable from /proc/meminfo, lowered to the cgroup's
   limit minus its usage when the process runs in a memory-limited container. The environment
   variable LOWDINO_AVAILABLE_MEMORY_GB replaces that reading (to plan for a smaller machine, and
   to make the check testable).

The estimate errs high: a resnet5m step at batch 32 / 224 px was estimated at 3.2 GiB and grew the
process by 2.6 GiB. Too big -> InsufficientMemoryError naming needed vs available GiB and the largest batch (and the
crop size at this batch) that fits. Skipped with `memory_check: false` (--no-memory-check), for
batches no larger than the probe, when even a generous bound on the step fits easily (obviously_fits), for streamed datasets and where /proc/self/clear_refs is missing.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import functools
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from lowdino.config import DistillConfig
from lowdino.data.types import LabeledImages
from lowdino.errors import DeviceError

if TYPE_CHECKING:
    from lowdino.train.trainer import Prepared

AVAILABLE_MEMORY_ENV = "LOWDINO_AVAILABLE_MEMORY_GB"
PROBE_SIZES = (1, 3)
GIB = 1024**3


# A generous upper bound of a training step's bytes per byte of fp32 input crops: measured steps keep
# ~60x (resnet5m, 224/96 px crops; saved activations of student and teacher). Below a quarter of the
# available memory even at this bound, the probe is not worth its seconds.
ACTIVATION_FACTOR = 2000


class InsufficientMemoryError(DeviceError):
    """The run's batch needs more memory than the machine has available."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one training step adds to the process: fixed + per_image x images (from the probes)."""

    fixed: int
    per_image: int

    def needed(self, images: int) -> int:
        return self.fixed + self.per_image * images


def obviously_fits(*, input_bytes: int, weight_bytes: int, available: int) -> bool:
    """True when even ACTIVATION_FACTOR x the step's input crops (+ AdamW) is far below `available`."""
    return ACTIVATION_FACTOR * input_bytes + 4 * weight_bytes < available // 4


def _status_kib(field: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return None


def _meminfo_available() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def _cgroup_headroom() -> int | None:
    """Limit minus usage of this process's memory cgroup (v2, then v1); None when unlimited."""
    pairs = (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    )
    for limit_file, usage_file in pairs:
        with contextlib.suppress(OSError, ValueError):
            limit_text = Path(limit_file).read_text().strip()
            if limit_text == "max":
                return None
            limit = int(limit_text)
            if limit >= 1 << 60:  # cgroup v1 spells "unlimited" as a huge number
                return None
            return max(limit - int(Path(usage_file).read_text().strip()), 0)
    return None


def available_memory_bytes(env: dict[str, str] | None = None) -> int | None:
    """Memory this process may still take: the override, else MemAvailable capped by the cgroup."""
    env = dict(os.environ) if env is None else env
    override = env.get(AVAILABLE_MEMORY_ENV)
    if override:
        try:
            return int(float(override) * GIB)
        except ValueError as exc:
            raise InsufficientMemoryError(
                f"{AVAILABLE_MEMORY_ENV}={override!r} is not a number of GiB; set it like 16 or 0.5, or unset it"
            ) from exc
    readings = [value for value in (_meminfo_available(), _cgroup_headroom()) if value is not None]
    return min(readings) if readings else None


def _trim_heap() -> None:
    """Hand memory freed by earlier steps back to the kernel, so the next peak counts real growth."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def peak_growth(call: Callable[[], None]) -> int | None:
    """Peak resident memory during `call` minus the resident memory before it; None if unmeasurable."""
    _trim_heap()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    except OSError:
        return None
    before = _status_kib("VmRSS")
    call()
    peak = _status_kib("VmHWM")
    if before is None or peak is None:
        return None
    return max(peak - before, 0)


def estimate_step_memory(step: Callable[[int], None]) -> MemoryEstimate | None:
    """Fit fixed + per_image from `step(images)` at PROBE_SIZES (after one unmeasured warm-up step,
    which pays one-off costs: oneDNN primitives, lazily built buffers)."""
    step(1)
    small, large = PROBE_SIZES
    grown = [peak_growth(functools.partial(step, size)) for size in (small, large)]
    if grown[0] is None or grown[1] is None:
        return None
    # The larger probe bounds the slope from below; a noisy (non-increasing) pair falls back to the
    # larger probe's growth spread over its images, which over-estimates (refuses rather than dies).
    slope = (grown[1] - grown[0]) / (large - small)
    if slope <= 0:
        return MemoryEstimate(fixed=0, per_image=math.ceil(grown[1] / large))
    return MemoryEstimate(fixed=max(int(grown[1] - slope * large), 0), per_image=math.ceil(slope))


@dataclass(frozen=True)
class MemoryPlan:
    """What one step of this run needs on this machine, and what fits instead."""

    needed: int  # bytes, all local processes together
    available: int
    largest_batch: int  # global batch that fits (0: none)
    crop_hint: list[tuple[str, int]]  # (field, largest side that fits at this batch) per crop size

    @property
    def fits(self) -> bool:
        return self.needed <= self.available


def plan_memory(
    estimate: MemoryEstimate,
    *,
    per_rank_batch: int,
    world_size: int,
    local_processes: int,
    weight_bytes: int,
    available: int,
    crops: list[tuple[str, int]],
) -> MemoryPlan:
    """Scale the probe's estimate to the run (see the module docstring) and find what would fit."""
    optimizer = 3 * weight_bytes  # AdamW's two moments + the update's temporaries
    per_process = estimate.needed(per_rank_batch) + optimizer
    needed = per_process * local_processes
    budget = available // local_processes - estimate.fixed - optimizer
    fit_per_rank = max(budget // max(estimate.per_image, 1), 0)
    crop_hint: list[tuple[str, int]] = []
    if budget > 0 and estimate.per_image > 0:
        # Activations grow with the pixels of every crop: scale all sides by the same factor.
        scale = math.sqrt(budget / (estimate.per_image * per_rank_batch))
        if scale < 1:
            crop_hint = [(name, int(side * scale) // 8 * 8) for name, side in crops]
    return MemoryPlan(
        needed=needed,
        available=available,
        largest_batch=int(fit_per_rank) * world_size,
        crop_hint=crop_hint,
    )


def refusal(plan: MemoryPlan | None, *, batch_size: int) -> InsufficientMemoryError:
    """The one-line error for a plan that does not fit (None: another rank's did not)."""
    if plan is None or plan.fits:
        return InsufficientMemoryError(
            f"not enough memory on the CPU of another process of this run at batch {batch_size}; see its "
            "error for the batch that fits. --no-memory-check skips this check"
        )
    if plan.largest_batch >= 1:
        fix = f"use --batch-size {plan.largest_batch} or smaller"
        if plan.crop_hint and all(side >= 8 for _, side in plan.crop_hint):
            flags = " ".join(f"--{name.replace('_', '-')} {side}" for name, side in plan.crop_hint)
            fix += f" (or keep it with {flags})"
    else:
        fix = "even one image per step does not fit: free memory, or use a smaller backbone or crops"
    return InsufficientMemoryError(
        f"not enough memory on the CPU: one step at batch {batch_size} needs about "
        f"{plan.needed / GIB:.1f} GiB (scaled from a {max(PROBE_SIZES)}-image probe), {plan.available / GIB:.1f} GiB "
        f"is available; {fix}. --no-memory-check skips this check"
    )


def plan_cpu_memory(p: Prepared) -> MemoryPlan | None:
    """The memory plan of a prepared CPU run; None when the check does not apply (module docstring)."""
    c, train = p.config, p.datasets.train
    if (
        p.device.type != "cpu"
        or not c.memory_check
        or p.per_rank_batch <= max(PROBE_SIZES)
        or not isinstance(train, LabeledImages)  # streamed sets: batches come from DataLoader workers
        or len(train) < max(PROBE_SIZES)
    ):
        return None
    available = available_memory_bytes()
    trained = [param for group in p.optimizer.param_groups for param in group["params"]]
    weight_bytes = sum(param.numel() * param.element_size() for param in trained)
    crops = (
        [("crop_size", c.crop_size)] * 2  # the student's view and the teacher's
        if isinstance(c, DistillConfig)
        else [("global_crop_size", c.global_crop_size)] * 2
        + [("local_crop_size", c.local_crop_size)] * c.n_local_crops
    )
    input_bytes = p.per_rank_batch * sum(3 * side * side * 4 for _, side in crops)  # fp32 crops of one step
    if available is None or obviously_fits(
        input_bytes=input_bytes, weight_bytes=weight_bytes, available=available
    ):
        return None
    method = cast(nn.Module, copy.deepcopy(p.method))  # the probe leaves the run's weights and buffers alone
    teacher_temp = float(p.schedules.teacher_temp[0])

    def probe_step(images: int) -> None:
        with torch.no_grad():
            views = p.augmentation(train.images[:images].to(p.device))
            if c.channels_last:
                views = [view.contiguous(memory_format=torch.channels_last) for view in views]
        with p.precision.autocast(p.device):
            loss, _ = method.training_loss(  # type: ignore[operator]
                views, step=0, teacher_temp=teacher_temp, labels=train.labels[:images].to(p.device)
            )
        loss.backward()
        method.zero_grad(set_to_none=True)

    with torch.random.fork_rng(devices=[]):  # the run's augmentation stream is not advanced
        estimate = estimate_step_memory(probe_step)
    if estimate is None:
        return None
    return plan_memory(
        estimate,
        per_rank_batch=p.per_rank_batch,
        world_size=p.ctx.world_size,
        local_processes=int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if p.ctx.distributed else 1,
        weight_bytes=weight_bytes,
        available=available,
        crops=list(dict.fromkeys(crops)),
    )
