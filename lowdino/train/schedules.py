"""Per-step schedules as pure functions (values indexed by optimiser step).

Schedules are computed once for the whole run, so resuming at step `s` reads exactly the value
the uninterrupted run would have used.
"""

from __future__ import annotations

import math

import numpy as np


def cosine_schedule(
    base: float,
    final: float,
    total_steps: int,
    warmup_steps: int = 0,
    warmup_start: float = 0.0,
) -> np.ndarray:
    """Linear warm-up from `warmup_start` to `base`, then cosine from `base` to `final`.

    value[t] = warmup_start + (base - warmup_start) * t / warmup_steps            for t < warmup_steps
    value[t] = final + (base - final) * (1 + cos(pi * u)) / 2, u = (t - w) / (T - w)  otherwise
    The last step reaches exactly `final` (DINO's `cosine_scheduler`). Length: `total_steps`.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    warmup_steps = max(0, min(warmup_steps, total_steps))
    warmup = np.linspace(warmup_start, base, warmup_steps, endpoint=False) if warmup_steps else np.empty(0)
    decay_steps = total_steps - warmup_steps
    if decay_steps == 1:
        decay = np.array([final], dtype=np.float64)
    else:
        progress = np.arange(decay_steps) / max(decay_steps - 1, 1)
        decay = final + 0.5 * (base - final) * (1.0 + np.cos(math.pi * progress))
    schedule = np.concatenate([warmup, decay])
    assert len(schedule) == total_steps
    return schedule


def linear_warmup_constant(start: float, value: float, total_steps: int, warmup_steps: int) -> np.ndarray:
    """Linear from `start` to `value` over `warmup_steps`, then constant (DINO's teacher temperature)."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    warmup_steps = max(0, min(warmup_steps, total_steps))
    warmup = np.linspace(start, value, warmup_steps) if warmup_steps else np.empty(0)
    return np.concatenate([warmup, np.full(total_steps - warmup_steps, value, dtype=np.float64)])
