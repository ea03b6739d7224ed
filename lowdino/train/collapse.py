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

ln(out_dim) is also where DINO starts: a fresh network maps every image to nearly the same output,
the center removes it, and the teacher is flat until the student has learned something (a 224 px
run with DINO's default lr sat at 8.3174 against ln 4096 = 8.3178 for its first steps). So the
uniform signal is armed only once the run could have left that point: after `warmup_steps` (the
teacher-temperature warm-up, and at least one pass over the data), or as soon as the loss has once
fallen clearly below ln K (by `left_margin`, 5 %) in an interval that starts after `settle_steps`,
after which a return to ln K is a collapse. Before the center has caught up with the teacher's
output (`settle_steps`) the loss dips below ln K with nothing learned: 1.3 % at the first step of a
CIFAR-10 run, 5.2 % at the first step of a 224 px run. A constant-temperature run that never learns
(lightly's 0.04 case) is flagged after its first epoch.

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
    # Steps before which a loss at ln K is DINO's starting point, not a collapse (see the module doc).
    warmup_steps: int = 0
    settle_steps: int = 0
    left_margin: float = 0.05
    left_log_k: bool = False  # the loss has once fallen below ln K by left_margin
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

    def armed(self, step: int | None) -> bool:
        """Whether a loss at ln K counts as a collapse at `step` (None: no warm-up, as before it existed)."""
        return step is None or step >= self.warmup_steps or self.left_log_k

    def _means(self) -> dict[str, float]:
        return {key: self._sums[key] / self._counts[key] for key in self._sums if self._counts.get(key)}

    def signals(self, step: int | None = None) -> list[str]:
        """What looks collapsed in the interval observed so far, ending at `step` (steps done)."""
        means = self._means()
        found = []
        log_k = math.log(self.out_dim)
        at_log_k = "loss" in means and abs(means["loss"] - log_k) < self.loss_tolerance * log_k
        if at_log_k and self.armed(step):
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

    def end_interval(self, step: int | None = None) -> str | None:
        """Close one check interval ending at `step` (steps done); a warning line when collapse has
        lasted `patience` intervals."""
        loss = self._means().get("loss")
        started = None if step is None else step - self._counts.get("loss", 0) + 1
        settled = started is None or started > self.settle_steps
        if settled and loss is not None and loss < (1 - self.left_margin) * math.log(self.out_dim):
            self.left_log_k = True
        found = self.signals(step)
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
            "left_log_k": self.left_log_k,
            "sums": dict(self._sums),
            "counts": dict(self._counts),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.collapsed_intervals = int(state.get("collapsed_intervals", 0))
        self.left_log_k = bool(state.get("left_log_k", False))
        self._sums = dict(state.get("sums", {}))
        self._counts = dict(state.get("counts", {}))
