"""Who this worker is (name, host, queues, GPU set) and what it is doing right now.

`lowdino worker` passes its options to the Celery worker through LOWDINO_WORKER_* environment
variables, so a worker started as plain ``celery -A worker.celery_app worker`` works the same way.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lowdino.errors import ConfigError

ENV_NAME = "LOWDINO_WORKER_NAME"
ENV_GPUS = "LOWDINO_WORKER_GPUS"
ENV_QUEUES = "LOWDINO_WORKER_QUEUES"
DEFAULT_QUEUES = ("cpu", "gpu")


def parse_gpus(text: str | None) -> tuple[int, ...] | None:
    """'0,1' -> (0, 1); '' or 'none' -> () (no GPU at all); None -> None (not pinned)."""
    if text is None:
        return None
    cleaned = text.strip().lower()
    if cleaned in ("", "none", "cpu"):
        return ()
    try:
        gpus = tuple(int(part) for part in cleaned.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(
            f"--gpus must be comma-separated GPU indices like 0,1 (or none), got {text!r}"
        ) from exc
    if any(gpu < 0 for gpu in gpus) or len(set(gpus)) != len(gpus):
        raise ConfigError(f"--gpus must list distinct non-negative GPU indices, got {text!r}")
    return gpus


def visible_gpus(env: Mapping[str, str] | None = None, dev: Path = Path("/dev")) -> tuple[int, ...]:
    """The GPUs an unpinned worker's children would see, found without initialising CUDA here.

    CUDA_VISIBLE_DEVICES when set (by position: entries may be UUIDs), else the NVIDIA device files
    /dev/nvidia0, /dev/nvidia1, ... (present on the host and in containers given GPUs).
    """
    env = os.environ if env is None else env
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return tuple(range(len([part for part in listed.split(",") if part.strip()])))
    try:
        names = [
            entry.name.removeprefix("nvidia") for entry in dev.iterdir() if entry.name.startswith("nvidia")
        ]
    except OSError:
        return ()
    return tuple(sorted(int(name) for name in names if name.isdigit()))


def parse_queues(text: str | None) -> tuple[str, ...]:
    if text is None:
        return DEFAULT_QUEUES
    queues = tuple(part.strip() for part in text.split(",") if part.strip())
    if not queues:
        raise ConfigError("--queues needs at least one queue name, e.g. cpu,gpu")
    return queues


def default_name(gpus: tuple[int, ...] | None, hostname: str, pid: int) -> str:
    tag = "gpu" + "-".join(map(str, gpus)) if gpus else "cpu"
    # The pid keeps two workers on one host apart; the name is the workers table's primary key.
    return f"{tag}-{pid}@{hostname}"


@dataclass(frozen=True)
class WorkerIdentity:
    name: str
    hostname: str
    queues: tuple[str, ...]
    gpus: tuple[int, ...] | None  # None: not pinned, children see whatever the worker sees
    pid: int

    @property
    def reported_gpus(self) -> tuple[int, ...]:
        """The GPUs this worker offers runs (its pinned set, else what its children would see)."""
        return self.gpus if self.gpus is not None else visible_gpus()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerIdentity:
        env = os.environ if env is None else env
        hostname = socket.gethostname()
        pid = os.getpid()
        gpus = parse_gpus(env.get(ENV_GPUS))
        name = env.get(ENV_NAME) or default_name(gpus, hostname, pid)
        return cls(name=name, hostname=hostname, queues=parse_queues(env.get(ENV_QUEUES)), gpus=gpus, pid=pid)


@dataclass
class WorkerState:
    """Shared between the task thread and the heartbeat thread of one worker process."""

    current_run_id: str | None = None
    # Set when Celery starts a warm/cold shutdown: the supervisor then stops its child with a checkpoint.
    shutdown: threading.Event = field(default_factory=threading.Event)
