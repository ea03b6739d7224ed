"""Human-facing output of a run: log lines (train.log + stderr) and a tqdm progress bar.

The bar only draws when stderr is a terminal, so worker logs and CI output hold plain log lines.
Log lines to stderr go through `tqdm.write` so they never tear a bar that is being drawn.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

LOGGER_NAME = "lowdino.train"


class _TqdmStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


def setup_logging(log_file: Path | None, *, enabled: bool = True) -> logging.Logger:
    """The `lowdino.train` logger writing to `log_file` and stderr; silent when not `enabled` (rank > 0)."""
    logger = logging.getLogger(LOGGER_NAME)
    close_logging(logger)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not enabled:
        logger.addHandler(logging.NullHandler())
        return logger
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    stderr_handler = _TqdmStderrHandler()
    stderr_handler.setFormatter(formatter)
    logger.addHandler(stderr_handler)
    if log_file is not None:
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(formatter)
        logger.addHandler(file_handler)
    return logger


def close_logging(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


class ProgressBar:
    """Steps done of the run's total, with epoch, loss, images/s and tqdm's own ETA."""

    def __init__(self, *, total: int, initial: int, enabled: bool = True) -> None:
        self._bar = tqdm(
            total=total,
            initial=initial,
            unit="step",
            dynamic_ncols=True,
            disable=not (enabled and sys.stderr.isatty()),
            file=sys.stderr,
        )

    def update(self, record: dict[str, Any]) -> None:
        if self._bar.disable:
            return
        self._bar.update(1)
        self._bar.set_postfix(
            epoch=f"{record['epoch']:.2f}",
            loss=f"{record['loss']:.4f}" if record.get("loss") is not None else "nan",
            img_s=f"{record.get('images_per_sec') or 0:.0f}",
            refresh=False,
        )

    def close(self) -> None:
        self._bar.close()
