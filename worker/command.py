"""The command line and environment of a run's training child process.

One process per run (``python -m lowdino KIND --config RUN_DIR/config.yaml --output-dir RUN_DIR``),
or ``torchrun --nproc_per_node N -m lowdino ...`` when the run asks for several GPUs. The child is a
normal process (not a Celery pool process): DataLoader workers and DDP ranks need an ordinary parent,
and CUDA is first initialised in the child, never in the worker, so nothing CUDA is ever forked.

How a run asks for several GPUs: a training run (pretrain / distill) on a GPU whose config lists
several ``device_ids``. In one process that would be nn.DataParallel; the worker launches it as
DistributedDataParallel instead (one torchrun rank per listed GPU, the config's ``device_ids`` dropped
because the trainer refuses DataParallel under torchrun), which the config's own help recommends
and which keeps ``batch_size`` global. The ids index the worker's GPU set (``lowdino worker --gpus``),
or physical GPUs when the worker is not pinned.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lowdino.contract.rundir import CONFIG_FILE
from lowdino.errors import ConfigError
from server.vocabulary import RUN_KINDS, TRAINING_KINDS


def build_command(
    kind: str,
    run_dir: Path,
    *,
    resume: bool = False,
    nproc: int = 1,
    python: str = sys.executable,
) -> list[str]:
    """argv of the training child; `nproc` > 1 launches one DDP rank per GPU through torchrun."""
    if kind not in RUN_KINDS:
        raise ConfigError(f"run kind {kind!r} is not one of {', '.join(RUN_KINDS)}; fix the run's kind")
    if nproc < 1:
        raise ConfigError(f"a run needs at least one process, got nproc={nproc}; ask for 1 or more GPUs")
    args = [kind, "--config", str(run_dir / CONFIG_FILE), "--output-dir", str(run_dir)]
    if resume:
        args.append("--resume")
    if nproc == 1:
        return [python, "-m", "lowdino", *args]
    # torchrun as a module of the same interpreter: no reliance on a `torchrun` script being on PATH.
    launcher = [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    return [*launcher, "-m", "lowdino", *args]


def child_env(
    gpus: Sequence[int] | None,
    *,
    base: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment of the child: the worker's, pinned to its GPU set, with unbuffered output."""
    env = dict(os.environ if base is None else base)
    if gpus is not None:
        # An empty GPU set hides every GPU, so a CPU worker's child cannot grab one by accident.
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(gpu) for gpu in gpus)
    # Log lines reach stdout.log (and the dashboard) as they are printed, not when a buffer fills.
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class LaunchPlan:
    """How to start one run: processes, the GPUs the child may see, and config values to replace."""

    nproc: int = 1
    visible_gpus: list[int] | None = None  # CUDA_VISIBLE_DEVICES of the child; None keeps the worker's
    config_overrides: dict[str, Any] = field(default_factory=dict)


def plan_launch(kind: str, config: Mapping[str, Any], worker_gpus: Sequence[int] | None) -> LaunchPlan:
    """Single process, or one DDP rank per GPU in the config's `device_ids` (see the module docstring).

    Only training kinds run as several ranks; an eval or an export is always one process."""
    device_ids = [int(index) for index in config.get("device_ids") or []]
    if kind not in TRAINING_KINDS or config.get("device") == "cpu" or len(device_ids) < 2:
        return LaunchPlan(visible_gpus=list(worker_gpus) if worker_gpus is not None else None)
    if worker_gpus is not None:
        outside = [index for index in device_ids if not 0 <= index < len(worker_gpus)]
        if outside:
            raise ConfigError(
                f"the run asks for GPUs {device_ids} but this worker has {len(worker_gpus)} "
                f"(--gpus {','.join(map(str, worker_gpus)) or 'none'}); use device_ids below {len(worker_gpus)} "
                "or send the run to a worker with more GPUs"
            )
        visible = [int(worker_gpus[index]) for index in device_ids]
    else:
        visible = device_ids
    return LaunchPlan(nproc=len(device_ids), visible_gpus=visible, config_overrides={"device_ids": None})


def guarded(argv: Sequence[str], *, nproc: int = 1, python: str = sys.executable) -> list[str]:
    """`argv` wrapped so that it is killed when the worker dies (see worker.orphan_guard).

    A single trainer gets SIGKILL: nothing it could do on the way out is worth racing a resumed
    attempt for the run directory. torchrun gets SIGTERM, which it forwards to its ranks.
    """
    signum = signal.SIGTERM if nproc > 1 else signal.SIGKILL
    return [python, "-m", "worker.orphan_guard", str(os.getpid()), str(int(signum)), "--", *argv]
