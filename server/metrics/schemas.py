"""Response bodies of /api/runs/{id}/metrics."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class MetricSeriesPublic(BaseModel):
    key: str
    x: list[float | None] = Field(description="Values on the requested axis (step, epoch or time).")
    y: list[float]
    step: list[int]
    downsampled: bool = Field(description="True when points were dropped (min/max per bucket kept).")


class MetricsPublic(BaseModel):
    run_id: str
    x: Literal["step", "epoch", "time"]
    max_points: int
    series: list[MetricSeriesPublic]
