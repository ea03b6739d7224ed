"""The terminal picture of a followed run: one progress line redrawn in place on a terminal, or a line
per tenth of the run (and per status) when the output is a file or a pipe, so logs stay readable."""

from __future__ import annotations

import shutil
import time
from typing import Any, TextIO

BAR_WIDTH = 24
# Shown first when a run records them; other numeric metrics follow in name order.
PREFERRED_METRICS = ("loss", "knn_top1", "images_per_sec")
MAX_METRICS = 4
# Metrics that are progress bookkeeping, already drawn as the bar and the ETA.
BOOKKEEPING = frozenset({"step", "epoch", "time", "wall_time", "total_steps", "eta_seconds", "params"})


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"
    return f"{seconds // 3600:.0f} h {(seconds % 3600) // 60:02.0f} min"


def bar(fraction: float | None) -> str:
    filled = round((fraction or 0.0) * BAR_WIDTH)
    return "[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]"


def metric_text(metrics: dict[str, Any]) -> str:
    numeric = {
        key: value
        for key, value in metrics.items()
        if key not in BOOKKEEPING and isinstance(value, int | float) and not isinstance(value, bool)
    }
    keys = [key for key in PREFERRED_METRICS if key in numeric]
    keys += sorted(key for key in numeric if key not in keys)
    return "  ".join(f"{key} {numeric[key]:.4g}" for key in keys[:MAX_METRICS])


class ProgressDisplay:
    def __init__(self, out: TextIO, *, interactive: bool, label: str) -> None:
        self.out = out
        self.interactive = interactive
        self.label = label
        self.status = ""
        self.progress: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        self.printed_tenth = -1
        self.drawn = False
        self.last_draw = 0.0

    def line(self) -> str:
        fraction = self.progress.get("fraction")
        step, total = self.progress.get("step"), self.progress.get("total_steps")
        parts = [self.label, self.status]
        if fraction is not None:
            parts.append(f"{bar(fraction)} {fraction * 100:5.1f} %")
        if step is not None:
            parts.append(f"step {step}" + (f"/{total}" if total else ""))
        if self.progress.get("eta_seconds") is not None:
            parts.append(f"ETA {duration(self.progress['eta_seconds'])}")
        metrics = metric_text(self.metrics)
        if metrics:
            parts.append(metrics)
        return "  ".join(part for part in parts if part)

    def update_run(self, run: dict[str, Any]) -> None:
        changed = run.get("status") != self.status
        self.status = str(run.get("status") or "")
        self.progress = dict(run.get("progress") or {})
        self.metrics.update(run.get("latest_metrics") or {})
        self.draw(force=changed)

    def metric_event(self, data: dict[str, Any]) -> None:
        for key in ("step", "total_steps", "fraction", "eta_seconds"):
            if key in data:
                self.progress[key] = data[key]
        for point in data.get("points") or []:
            self.metrics[point["key"]] = point["value"]
        self.draw()

    def draw(self, *, force: bool = False) -> None:
        if self.interactive:
            now = time.monotonic()
            if not force and now - self.last_draw < 0.1:
                return  # a fast run sends hundreds of events a second; a terminal needs ~10 frames
            self.last_draw = now
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.out.write("\r" + self.line()[:width].ljust(width))
            self.drawn = True
        else:
            tenth = int((self.progress.get("fraction") or 0.0) * 10)
            if not force and tenth <= self.printed_tenth:
                return
            self.printed_tenth = max(tenth, self.printed_tenth)
            self.out.write(self.line() + "\n")
        self.out.flush()

    def finish(self, run: dict[str, Any]) -> None:
        self.update_run(run)
        if self.interactive and self.drawn:
            self.out.write("\n")
        if run.get("error"):
            self.out.write(f"{self.label}: {run['error']}\n")
        self.out.flush()
