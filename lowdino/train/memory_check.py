"""CPU out-of-memory preflight: refuse a run whose batch cannot fit before the kernel kills it.

On a GPU an oversized batch raises torch.OutOfMemoryError, which the trainer turns into a one-line
error. On the CPU nothing raises: the kernel's out-of-memory killer ends the process with SIGKILL,
before Python can print a word (a distillation at the default batch 1024 / 224 px was killed after
111 s on a 24 GiB machine with nothing in train.log). So before the first step on a CPU device:

1. measure the peak resident-memory growth of the trainer's own step (`lowdino.train.step`:
   augmentation, forward, loss, backward, AdamW step, EMA update) on probe batches of 2 and 4
   images (`probe_sizes`: every loss accepts them) at the run's real crop sizes, after one
   unmeasured warm-up step, on a copy of the networks and a fresh optimiser (the run's weights,
   buffers, optimiser state and RNG streams are untouched). Linux resets the peak (VmHWM) when "5"
   is written to /proc/self/clear_refs; glibc's malloc_trim first hands freed memory back, so
   growth is real;
2. fit growth = fixed + per_image x images through the two probes and scale it to the per-process
   batch, add AdamW's state (two copies of the trained weights, plus one for the update's temporaries),
   times the processes of this run on this machine (torchrun's LOCAL_WORLD_SIZE);
3. compare with the memory available: MemAvailable from /proc/meminfo, lowered to the cgroup's
   limit minus its usage when the process runs in a memory-limited container. The environment
   variable LOWDINO_AVAILABLE_MEMORY_GB replaces that reading (to plan for a smaller machine, and
   to make the check testable).

The estimate errs high: a resnet5m step at batch 32 / 224 px was estimated at 3.2 GiB and grew the
process by 2.6 GiB. Too big -> InsufficientMemoryError naming needed vs available GiB and the largest
batch (and the crop size at this batch) that fits. Skipped with `memory_check: false`
(--no-memory-check), for batches no larger than the larger probe, when even a generous bound on the
step fits easily (obviously_fits), for streamed datasets and where /proc/self/clear_refs is missing;
the run's log says which (`MemoryCheck.note`).
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
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from lowdino.data.types import LabeledImages
from lowdino.errors import DeviceError
from lowdino.train.kinds import step_crops
from lowdino.train.optim import build_optimizer
from lowdino.train.state import Prepared
from lowdino.train.step import train_step, trained_parameters

AVAILABLE_MEMORY_ENV = "LOWDINO_AVAILABLE_MEMORY_GB"
GIB = 1024**3


# A generous upper bound of a training step's bytes per byte of fp32 input crops: measured steps keep
# ~60x (resnet5m, 224/96 px crops; saved activations of student and teacher). Below a quarter of the
# available memory even at this bound, the probe is not worth its seconds.
ACTIVATION_FACTOR = 2000


class InsufficientMemoryError(DeviceError):
    """The run's batch needs more memory than the machine has available."""


def probe_sizes(min_batch: int = 1) -> tuple[int, int]:
    """The two probe batches: 2 and 4 images, or the method's smallest batch and twice it.

    Never 1 image, even where the loss would take it: BatchNorm in training mode refuses a single
    value per channel, which a 1-image batch gives a backbone whose last feature map is 1 x 1.
    """
    small = max(2, min_batch)
    return small, 2 * small


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one training step adds to the process: fixed + per_image x images (from the probes)."""

    fixed: int
    per_image: int
    probes: tuple[int, int] = probe_sizes()  # the batches it was measured at

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


def estimate_step_memory(
    step: Callable[[int], None], probes: tuple[int, int] = probe_sizes()
) -> MemoryEstimate | None:
    """Fit fixed + per_image from `step(images)` at the two `probes` (after one unmeasured warm-up
    step at the smaller, which pays one-off costs: oneDNN primitives, lazily built buffers, AdamW's
    moments)."""
    small, large = probes
    step(small)
    grown = [peak_growth(functools.partial(step, size)) for size in (small, large)]
    if grown[0] is None or grown[1] is None:
        return None
    # A noisy (non-increasing) pair falls back to the larger probe's growth spread over its images,
    # which over-estimates (refuses rather than dies).
    slope = (grown[1] - grown[0]) / (large - small)
    if slope <= 0:
        return MemoryEstimate(fixed=0, per_image=math.ceil(grown[1] / large), probes=probes)
    return MemoryEstimate(
        fixed=max(int(grown[1] - slope * large), 0), per_image=math.ceil(slope), probes=probes
    )


@dataclass(frozen=True)
class MemoryPlan:
    """What one step of this run needs on this machine, and what fits instead."""

    needed: int  # bytes, all local processes together
    available: int
    largest_batch: int  # global batch that fits (0: none)
    crop_hint: list[tuple[str, int]]  # (field, largest side that fits at this batch) per crop size
    probes: tuple[int, int] = probe_sizes()  # the probe batches the estimate was measured at

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
        probes=estimate.probes,
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
        f"{plan.needed / GIB:.1f} GiB ({_scaled(plan)}), {plan.available / GIB:.1f} GiB "
        f"is available; {fix}. --no-memory-check skips this check"
    )


def _scaled(plan: MemoryPlan) -> str:
    small, large = plan.probes
    return f"scaled from probes of {small} and {large} images"


@dataclass(frozen=True)
class MemoryCheck:
    """The outcome of the check on a prepared run: a plan, or why there is none (for the run's log)."""

    plan: MemoryPlan | None
    note: str  # one line for train.log; "" where the check does not concern the device (GPUs)

    @property
    def refuses(self) -> bool:
        return self.plan is not None and not self.plan.fits


def check_cpu_memory(p: Prepared) -> MemoryCheck:
    """The memory plan of a prepared CPU run, or why the check does not apply (module docstring)."""
    c, train = p.config, p.datasets.train
    probes = probe_sizes(p.needs.min_batch)
    if p.device.type != "cpu":
        return MemoryCheck(None, "")
    if not c.memory_check:
        return MemoryCheck(None, "memory check: off (memory_check false)")
    if p.per_rank_batch <= max(probes):
        return MemoryCheck(
            None, f"memory check: skipped, {p.per_rank_batch} images per process are no more than its probe"
        )
    if not isinstance(train, LabeledImages):  # streamed sets: batches come from DataLoader workers
        return MemoryCheck(None, "memory check: skipped for a streamed training set")
    if len(train) < max(probes):
        return MemoryCheck(None, "memory check: skipped, fewer training images than its probe")
    available = available_memory_bytes()
    if available is None:
        return MemoryCheck(None, "memory check: skipped, the available memory is unknown")
    weight_bytes = sum(param.numel() * param.element_size() for param in trained_parameters(p.optimizer))
    crops = step_crops(c)
    input_bytes = p.per_rank_batch * sum(3 * side * side * 4 for _, side in crops)  # fp32 crops of one step
    if obviously_fits(input_bytes=input_bytes, weight_bytes=weight_bytes, available=available):
        return MemoryCheck(
            None,
            f"memory check: skipped, even {ACTIVATION_FACTOR}x the step's input crops fits easily in "
            f"the {available / GIB:.1f} GiB available",
        )
    estimate = _measure(p, train, probes)
    if estimate is None:
        return MemoryCheck(None, "memory check: skipped, /proc/self/clear_refs is missing")
    plan = plan_memory(
        estimate,
        per_rank_batch=p.per_rank_batch,
        world_size=p.ctx.world_size,
        local_processes=int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if p.ctx.distributed else 1,
        weight_bytes=weight_bytes,
        available=available,
        crops=list(dict.fromkeys(crops)),
    )
    return MemoryCheck(
        plan,
        f"memory check: one step at batch {c.batch_size} needs about {plan.needed / GIB:.2f} GiB "
        f"({_scaled(plan)}), {available / GIB:.1f} GiB is available",
    )


def _measure(p: Prepared, train: LabeledImages, probes: tuple[int, int]) -> MemoryEstimate | None:
    """`estimate_step_memory` of the trainer's step on a copy of the method and a fresh optimiser."""
    method = copy.deepcopy(p.method)
    probe = replace(
        p,
        method=method,
        optimizer=build_optimizer(method),
        scaler=torch.amp.GradScaler(p.device.type, enabled=p.scaler.is_enabled()),
    )

    def step(images: int) -> None:
        batch = train.images[:images].to(p.device)
        # No extra gradients to all-reduce: each rank measures its own copy.
        train_step(probe, batch, 0, [], train.labels[:images].to(p.device))

    with torch.random.fork_rng(devices=[]):  # the run's augmentation stream is not advanced
        return estimate_step_memory(step, probes)
