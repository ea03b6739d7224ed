"""Response bodies of /api/compare."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from server.reporting.schemas import ReportLatency
from server.schemas import PlotlyFigure
from server.vocabulary import RunKind, RunStatus


class CompareRunPublic(BaseModel):
    """One measured run; every figure is one look at its final checkpoint, with its protocol named."""

    id: str
    name: str | None
    label: str
    kind: RunKind
    status: RunStatus
    backbone: str | None
    params: int | None
    final_metrics: dict[str, Any]
    best_metrics: dict[str, Any] = Field(description="Best value per metric over the run (not its result).")
    scores: dict[str, float | None] = Field(description="kNN / 10 % labels / 30 % labels: top-1 (%).")
    score_protocols: dict[str, str | None] = Field(description="The protocol behind each score.")
    results: dict[str, float] = Field(description="Every eval result, '<protocol>@<label fraction>' -> mean.")
    best_val_knn_top1: float | None = Field(description="Best kNN of the training monitor, on validation.")
    image_size: int | None = Field(description="Resolution the figures were measured at (px).")
    labels_used: float = Field(description="Fraction of the training labels the run itself learned from.")
    latency: ReportLatency | None = Field(
        None,
        description="ms per image at batch 1, one thread (an eval run's, or a training run's evaluation's).",
    )
    published: Literal[False]


class CompareReferencePublic(BaseModel):
    """A published model on the same dataset, never measured here."""

    model: str
    params_millions: float | None
    source: str | None
    scores: dict[str, float | None]
    backbone: str | None = None
    latency: ReportLatency | None = Field(
        None,
        description="Measured here for the same backbone by a compared run (the accuracy stays published).",
    )
    published: Literal[True]


class ComparePublic(BaseModel):
    dataset: str = Field(description="The dataset most of the runs used; published rows are for it.")
    runs: list[CompareRunPublic]
    references: list[CompareReferencePublic]
    differing_config: dict[str, dict[str, Any]] = Field(
        description="option -> {run id: value}, differing only."
    )
    versus_dinov2: list[str] = Field(
        default_factory=list,
        description="Per small model timed here, against DINOv2 ViT-S/14 timed here: the speed ratio at batch 1 "
        "on this CPU and the kNN difference (published DINOv2 accuracy said so).",
    )
    figures: dict[str, PlotlyFigure]
