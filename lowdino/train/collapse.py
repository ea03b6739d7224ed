"""Collapse detection for DINO-style training.

DINO collapses in two ways (Caron et al. 2021, section 5.3):

* uniform: the teacher output is flat (over-centering); the student matches it and the loss
  H(P_t, P_s) = -sum_k P_t[k] log P_s[k] sits at log(K), K = out_dim.
* one dimension dominates (over-sharpening): every image gets the same one-hot teacher output,
  so the teacher entropy H(P_t) -> 0 and the entropy of the batch-mean distribution
  H(mean_b P_t) -> 0 (the output no longer varies across the batch).

Signals, averaged over each check interval (a logging interval, or a tenth of a short run):
    loss_at_log_k   |mean L - log K| < loss_tolerance * log K             (0.5 %: within noise of log K)
    entropy_zero    mean teacher_entropy < entropy_floor                 (metric from the method)
    batch_constant  mean teacher_batch_entropy < batch_entropy_floor     (metric from the method)
A warning is raised once `patience` consecutive intervals show any signal, and repeated for every
further such interval, so a recovering run stops warning.

L is the cross-entropy term alone, read from the metric the method names (`TrainingNeeds.collapse`,
DINO: "dino_loss"), never the total loss: with KoLeo (weight w) the total is L + w * KoLeo, which
sits away from log K while L is stuck at it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CollapseDetector:
    out_dim: int
    loss_metric: str = "dino_loss"
    patience: int = 3
    loss_tolerance: float = 0.005
    entropy_floor: float = 1e-3
    batch_entropy_floor: float = 1e-2
    _sums: dict[str, float] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)
    collapsed_intervals: int = 0

    def observe(self, metrics: dict[str, Any]) -> None:
        """One step's method metrics: `loss_metric`, teacher_entropy, teacher_batch_entropy."""
        values = {
            "loss": metrics.get(self.loss_metric),
            **{k: metrics.get(k) for k in ("teacher_entropy", "teacher_batch_entropy")},
        }
        for key, value in values.items():
            if isinstance(value, int | float) and math.isfinite(value):
                self._sums[key] = self._sums.get(key, 0.0) + float(value)
                self._counts[key] = self._counts.get(key, 0) + 1

    def signals(self) -> list[str]:
        """What looks collapsed in the interval observed so far."""
        means = {key: self._sums[key] / self._counts[key] for key in self._sums if self._counts.get(key)}
        found = []
        log_k = math.log(self.out_dim)
        if "loss" in means and abs(means["loss"] - log_k) < self.loss_tolerance * log_k:
            found.append(
                f"{self.loss_metric} {means['loss']:.4f} stays at ln(out_dim) = {log_k:.4f} (uniform output)"
            )
        if "teacher_entropy" in means and means["teacher_entropy"] < self.entropy_floor:
            found.append(f"teacher entropy {means['teacher_entropy']:.2e} ~ 0 (one prototype wins)")
        if "teacher_batch_entropy" in means and means["teacher_batch_entropy"] < self.batch_entropy_floor:
            found.append(
                f"entropy of the batch-mean teacher output {means['teacher_batch_entropy']:.2e} ~ 0 "
                "(the same output for every image)"
            )
        return found

    def end_interval(self) -> str | None:
        """Close one check interval; a warning line when collapse has lasted `patience` intervals."""
        found = self.signals()
        self._sums.clear()
        self._counts.clear()
        if not found:
            self.collapsed_intervals = 0
            return None
        self.collapsed_intervals += 1
        if self.collapsed_intervals < self.patience:
            return None
        return (
            f"possible collapse for {self.collapsed_intervals} check intervals: {'; '.join(found)}. "
            "Try a lower --teacher-temp, a lower --momentum-teacher or a smaller --out-dim"
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "collapsed_intervals": self.collapsed_intervals,
            "sums": dict(self._sums),
            "counts": dict(self._counts),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.collapsed_intervals = int(state.get("collapsed_intervals", 0))
        self._sums = dict(state.get("sums", {}))
        self._counts = dict(state.get("counts", {}))
