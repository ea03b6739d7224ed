"""Which Celery queue a run goes to — the routing rule shared with the worker (`lowdino worker --queues`).

    "gpu"  when the config asks for a GPU: device == "cuda", or device_ids is set (DataParallel);
    "cpu"  otherwise (device "cpu", and "auto", which picks CUDA when the worker that runs it has one).

The embedded `lowdino serve` worker consumes both queues. At scale, GPU machines run
`lowdino worker --gpus 0,1 --queues gpu` and CPU-only machines `--queues cpu`, so a run that needs a
GPU never lands on a machine without one. The task is sent by name ("lowdino.run", TASK_NAME) with
the run id as its only argument; the server never imports worker/.
"""

from __future__ import annotations

from typing import Any

TASK_NAME = "lowdino.run"
GPU_QUEUE = "gpu"
CPU_QUEUE = "cpu"


def queue_for(kind: str, config: dict[str, Any]) -> str:
    """The queue of a run of `kind` with (validated, JSON-dumped) `config`; see the module docstring."""
    del kind  # the rule is the same for every kind today; kept so callers need not change if it differs
    if config.get("device") == "cuda" or config.get("device_ids"):
        return GPU_QUEUE
    return CPU_QUEUE
