"""Which Celery queue a run goes to — the routing rule shared with the worker (`lowdino worker --queues`).

A run needs as many GPUs as its config lists `device_ids` (DataParallel in one process, or one DDP
rank per GPU when the worker launches it), else one GPU for device == "cuda", else none (and none
for device == "cpu", which ignores device_ids):

    "cpu"    no GPU: device "cpu", and "auto" (which picks CUDA when the worker that runs it has one)
    "gpu"    one GPU
    "gpuN"   N >= 2 GPUs (gpu2, gpu4, ...)

A worker that takes "gpu" and owns G GPUs (`lowdino worker --gpus 0,1,2,3 --queues gpu`, or the GPUs
it sees when not pinned) also takes gpu2 .. gpuG (`expand_gpu_queues`): a run lands only on a worker
with at least the GPUs it asks for, and a worker runs one run at a time on its GPU set. CPU-only
machines run `--queues cpu`. The embedded `lowdino serve` worker takes cpu and gpu. The task is sent
by name ("lowdino.run", TASK_NAME) with the run id as its only argument; the server never imports worker/.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

TASK_NAME = "lowdino.run"
GPU_QUEUE = "gpu"
CPU_QUEUE = "cpu"


def gpus_needed(config: Mapping[str, Any]) -> int:
    """GPUs a run with (validated, JSON-dumped) `config` occupies; 0 for a CPU run."""
    if config.get("device") == "cpu":
        return 0  # the trainer ignores device_ids on the CPU (with a warning)
    device_ids = config.get("device_ids") or []
    if device_ids:
        return len(set(device_ids))
    return 1 if config.get("device") == "cuda" else 0


def gpu_queue(count: int) -> str:
    """The queue of runs that need `count` >= 1 GPUs."""
    return GPU_QUEUE if count == 1 else f"{GPU_QUEUE}{count}"


def queue_for(kind: str, config: Mapping[str, Any]) -> str:
    """The queue of a run of `kind` with (validated, JSON-dumped) `config`; see the module docstring."""
    del kind  # the rule is the same for every kind today; kept so callers need not change if it differs
    count = gpus_needed(config)
    return gpu_queue(count) if count else CPU_QUEUE


def expand_gpu_queues(queues: Sequence[str], gpu_count: int) -> tuple[str, ...]:
    """A worker's queues with gpu2 .. gpuG added when it takes "gpu" and owns G >= 2 GPUs."""
    expanded = list(dict.fromkeys(queues))
    if GPU_QUEUE in expanded:
        expanded += [gpu_queue(n) for n in range(2, gpu_count + 1) if gpu_queue(n) not in expanded]
    return tuple(expanded)


def gpu_capacity(queues: Sequence[str], gpus: Sequence[int]) -> int:
    """How many GPUs a run may ask of a worker: its GPUs, when it takes any GPU queue at all."""
    takes_gpu_runs = any(queue == GPU_QUEUE or queue.startswith(GPU_QUEUE) for queue in queues)
    return len(gpus) if takes_gpu_runs else 0
