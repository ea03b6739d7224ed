"""Hooks through which other code follows a training run in the same process.

The trainer calls every callback with each metrics record as it is written, and asks them whether
to stop between steps. Out-of-process followers (the Celery worker) read the run directory instead.
"""

from __future__ import annotations

from typing import Any, Protocol


class TrainerCallback(Protocol):
    def on_metrics(self, record: dict[str, Any]) -> None:
        """A metrics record, exactly as appended to metrics.jsonl."""

    def should_stop(self) -> bool:
        """True asks the trainer to checkpoint and stop after the current step (status cancelled)."""
