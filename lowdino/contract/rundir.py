"""The run directory: the contract between the trainer, the CLI, the worker and the server.

Everything a run produces lives under one folder so that another process (the Celery worker, the
dashboard) can follow it with nothing but file reads:

    config.yaml             resolved config (what `--config` reads back)
    metrics.jsonl           one JSON object per line: {"step", "epoch", "time", "total_steps", ...}
    logs/                   TensorBoard events (config.tensorboard_dir)
    checkpoint.pth          latest checkpoint (written to a temp file, then renamed)
    checkpoint_eNNNN.pth    periodic checkpoints
    summary.json            written at the end: status, images_per_sec, final loss, params, wall time
    train.log               human-readable log lines
    STOP                    created by another process to ask the trainer to checkpoint and stop

Metric records are keyed by `step`: after a resume the trainer truncates records past the
checkpoint's step so that every step appears exactly once.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pth"
SUMMARY_FILE = "summary.json"
LOG_FILE = "train.log"
STDOUT_FILE = "stdout.log"  # the child's stdout and stderr, written by whoever launched it (the worker)
RESULTS_JSON = "results.json"  # an evaluation's results (lowdino.eval.results)
RESULTS_CSV = "results.csv"
STOP_FILE = "STOP"

# Process exit codes the worker maps to run states.
EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_CANCELLED = 75


class SummaryStatus(StrEnum):
    """summary.json's `status`: how the process itself ended (the service's RunStatus adds the rest)."""

    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def log(self) -> Path:
        return self.path / LOG_FILE

    @property
    def stop_request(self) -> Path:
        return self.path / STOP_FILE

    def periodic_checkpoint(self, epoch: int) -> Path:
        return self.path / f"checkpoint_e{epoch:04d}.pth"

    def stop_requested(self) -> bool:
        return self.stop_request.exists()

    def request_stop(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.stop_request.touch()

    def read_summary(self) -> dict[str, Any] | None:
        if not self.summary.is_file():
            return None
        return json.loads(self.summary.read_text())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def read_metrics(path: Path, *, start_offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Complete records from byte `start_offset` on, and the offset after the last complete line.

    A line still being written (no trailing newline) is left for the next call, so a follower that
    polls this file sees every record exactly once.
    """
    if not path.is_file():
        return [], start_offset
    with path.open("rb") as handle:
        handle.seek(start_offset)
        chunk = handle.read()
    end = chunk.rfind(b"\n")
    if end < 0:
        return [], start_offset
    records = [json.loads(line) for line in chunk[: end + 1].splitlines() if line.strip()]
    return records, start_offset + end + 1
