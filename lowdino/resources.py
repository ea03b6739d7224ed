"""Where a run's CPU work goes: torch threads, loader workers and where augmentation runs.

One rule for training, evaluation and the data path (`plan_resources`, a pure function of the
machine and the user's overrides), so that no core idles on a dedicated machine and no process
takes more than its share on a shared one. Every run logs the plan and why (`ResourcePlan.describe`).

This process's share is the cores it may run on (`os.sched_getaffinity`: a container's or taskset's
limit, not the machine's) divided by the DDP processes started on this machine (torchrun's
LOCAL_WORLD_SIZE). Then:

* GPU device: the model and the augmentation run on the GPU; the CPU only has to decode and cut
  crops, so every core of the share but one (which drives the GPU) is a loader worker, and the
  training process keeps one torch thread. Images per CPU-second decide how fast a small backbone
  is fed from a handful of cores.
* CPU device: the model step dominates (at 224 px about 160 ms of CPU per image against about
  10 ms for the whole data path), so the training process gets a torch thread per core of its
  share. A streamed dataset adds loader workers, one per four cores (at least one, at most 8), that
  decode, cut *and* augment, handing over uint8 views that the training process only normalises:
  the augmentation no longer waits for the model step (it runs beside it), and uint8 views are a
  quarter of the bytes of float ones. With one core there is nothing to run beside the step, so
  augmentation stays in the training process.
* In-memory datasets have no loader workers: their augmentation runs in the training process, on
  its device.

Inter-op threads: one. These graphs are sequential, and a second pool only competes for cores.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

GPU_MAX_WORKERS = 16  # past this, more workers only add memory at these decode rates
CPU_MAX_WORKERS = 8
CPU_CORES_PER_WORKER = 4


@dataclass(frozen=True)
class Machine:
    """What the plan depends on, read once (`this_machine`) or stated (tests, benchmarks)."""

    cores: int  # cores this process may run on (os.sched_getaffinity)
    local_world_size: int = 1  # DDP processes on this machine (torchrun's LOCAL_WORLD_SIZE)
    device_type: str = "cpu"  # "cpu" or "cuda"
    gpus: int = 0  # GPUs torch sees on this machine

    @property
    def share(self) -> int:
        """This process's cores: the machine's divided among its DDP processes, at least one."""
        return max(1, self.cores // max(1, self.local_world_size))


@dataclass(frozen=True)
class Overrides:
    """The user's choices (flags / config); None leaves the decision to the plan."""

    threads: int | None = None
    num_workers: int | None = None
    augment_in_workers: bool | None = None
    threads_from: str = "--threads"  # where `threads` came from, for the plan's reason

    @classmethod
    def of(cls, options: object, environ: Mapping[str, str] | None = None) -> Overrides:
        """From a run's config (its `threads`, `num_workers` and `augment_in` options, where it has
        them); an OMP_NUM_THREADS in the environment stands for --threads when that is unset, as
        OpenMP programs read it (the test suite sets 1 on its shared cores)."""
        augment_in = getattr(options, "augment_in", "auto")
        threads = getattr(options, "threads", None)
        source = "--threads"
        omp = (os.environ if environ is None else environ).get("OMP_NUM_THREADS", "").strip()
        if threads is None and omp.isdigit() and int(omp) > 0:
            threads, source = int(omp), "OMP_NUM_THREADS"
        return cls(
            threads=threads,
            threads_from=source,
            num_workers=getattr(options, "num_workers", None),
            augment_in_workers=None if augment_in == "auto" else augment_in == "workers",
        )


@dataclass(frozen=True)
class ResourcePlan:
    torch_threads: int  # intra-op threads of the training (or evaluating) process
    loader_workers: int  # DataLoader worker processes of a streamed dataset (0: none)
    augment_in_workers: bool  # the loader workers augment; the training process only normalises
    interop_threads: int
    reason: str  # why, in words: the machine and the overrides the plan followed

    def describe(self) -> str:
        """'threads: 2 torch, 1 loader worker, augmentation in workers: 2 cores, CPU device, no other rank'."""
        workers = f"{self.loader_workers} loader worker{'' if self.loader_workers == 1 else 's'}"
        where = "in workers" if self.augment_in_workers else "in the training process"
        return f"threads: {self.torch_threads} torch, {workers}, augmentation {where}: {self.reason}"


def plan_resources(
    machine: Machine, overrides: Overrides = Overrides(), *, streamed: bool = True
) -> ResourcePlan:
    """The plan for one process of a run on `machine` (see the module doc); `streamed`: the
    dataset is read by loader workers (an image folder or shards) rather than held in memory."""
    share = machine.share
    gpu = machine.device_type == "cuda"
    if not streamed:
        workers, in_workers = 0, False
    elif gpu:
        workers, in_workers = min(GPU_MAX_WORKERS, max(1, share - 1)), False
    else:
        workers = min(CPU_MAX_WORKERS, max(1, share // CPU_CORES_PER_WORKER))
        in_workers = share >= 2
    threads = 1 if gpu else share
    notes = _reason(machine)
    if overrides.threads is not None:
        threads = overrides.threads
        notes.append(f"{overrides.threads_from} {threads}")
    if streamed and overrides.num_workers is not None:
        workers = overrides.num_workers
        notes.append(f"--num-workers {workers}")
    if streamed and overrides.augment_in_workers is not None and not gpu:
        in_workers = overrides.augment_in_workers
        notes.append(f"--augment-in {'workers' if in_workers else 'process'}")
    if gpu and overrides.augment_in_workers:
        notes.append("augmentation stays on the GPU (--augment-in workers applies to CPU training)")
    if not streamed:
        notes.append("dataset in memory")
    # Workers need a process to hand their views to: with none, the training process augments.
    in_workers = in_workers and workers > 0
    return ResourcePlan(
        torch_threads=max(1, threads),
        loader_workers=workers,
        augment_in_workers=in_workers,
        interop_threads=1,
        reason=", ".join(notes),
    )


def _reason(machine: Machine) -> list[str]:
    cores = f"{machine.cores} core{'' if machine.cores == 1 else 's'}"
    if machine.device_type == "cuda":
        device = f"GPU device ({machine.gpus} GPU{'' if machine.gpus == 1 else 's'} on this machine)"
    else:
        device = "CPU device"
    others = machine.local_world_size - 1
    ranks = "no other rank" if others == 0 else f"{others} other rank{'' if others == 1 else 's'} here"
    notes = [cores, device, ranks]
    if machine.share < machine.cores:
        notes.append(f"{machine.share} for this one")
    return notes


def available_cores() -> int:
    """Cores this process may run on: its affinity mask (a container's or taskset's limit)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def this_machine(device_type: str = "cpu") -> Machine:
    """The machine this process runs on, for a run on `device_type`."""
    gpus = 0
    if device_type == "cuda":
        import torch  # only where a GPU run asks: the plan itself needs no torch

        gpus = torch.cuda.device_count()
    return Machine(
        cores=available_cores(),
        local_world_size=max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))),
        device_type=device_type,
        gpus=gpus,
    )


def apply_threads(plan: ResourcePlan) -> None:
    """Set this process's torch thread pools to the plan."""
    import torch

    torch.set_num_threads(plan.torch_threads)
    if torch.get_num_interop_threads() != plan.interop_threads:
        # torch fixes the inter-op pool once it has run inter-op work; then it keeps the one it has.
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(plan.interop_threads)
