"""Metrics writer: one JSON line per optimiser step in metrics.jsonl, TensorBoard scalars, callbacks.

Every record is flushed as soon as it is written so that followers tailing the file (the Celery
worker polls it every ~200 ms) see each step promptly. Non-finite floats become null: JSON has no NaN.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lowdino.contract.callbacks import TrainerCallback
from lowdino.contract.rundir import atomic_write_text

# Bookkeeping fields that are not curves worth a TensorBoard plot.
_NOT_SCALARS = frozenset({"step", "epoch", "time", "total_steps"})


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsWriter:
    """Appends records to metrics.jsonl, mirrors numbers to TensorBoard and forwards to callbacks."""

    def __init__(
        self,
        path: Path,
        *,
        tensorboard_dir: Path | None = None,
        callbacks: Sequence[TrainerCallback] = (),
        purge_step: int | None = None,
    ) -> None:
        self.path = path
        self.callbacks = list(callbacks)
        self._file = path.open("a", encoding="utf-8")
        self._tb: Any = None
        if tensorboard_dir is not None:
            # Imported here: TensorBoard costs a second of start-up that rank > 0 processes never need.
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(tensorboard_dir), purge_step=purge_step)

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        clean = {key: _clean(value) for key, value in record.items()}
        self._file.write(json.dumps(clean, allow_nan=False) + "\n")
        self._file.flush()
        if self._tb is not None:
            step = int(clean["step"])
            for key, value in clean.items():
                if key not in _NOT_SCALARS and isinstance(value, int | float) and not isinstance(value, bool):
                    self._tb.add_scalar(key, value, step)
        for callback in self.callbacks:
            callback.on_metrics(clean)
        return clean

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def truncate_metrics(path: Path, last_step: int) -> int:
    """Drop records with step > `last_step` (and any half-written last line); return how many remain.

    After a resume from a checkpoint at step S, steps S+1... are replayed, so their old records must
    go for every step to appear exactly once.
    """
    if not path.is_file():
        return 0
    kept = [record for record in iter_records(path) if int(record.get("step", 0)) <= last_step]
    atomic_write_text(path, "".join(json.dumps(record) + "\n" for record in kept))
    return len(kept)


def iter_records(path: Path) -> Iterable[dict[str, Any]]:
    """Complete records of a metrics file; an unterminated last line (a crash mid-write) is skipped."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    for line in lines[:-1]:
        if line.strip():
            yield json.loads(line)
