"""Request and response bodies of the REST API (OpenAPI at /docs)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lowdino.eval.references import ReferenceResult
from server.models import RUN_KINDS, Run, RunStatus

# The OpenAPI enum of run kinds, built from the library's config models (server.models.RUN_KINDS).
RunKind = StrEnum("RunKind", {kind: kind for kind in RUN_KINDS})  # type: ignore[misc]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[^\x00-\x1f,]+$")]


class _Body(BaseModel):
    # Unknown top-level keys are errors, like unknown config options: a typo must not vanish silently.
    model_config = ConfigDict(extra="forbid")


EVALUATE_DESCRIPTION = (
    "pretrain / distill only: eval options (GET /api/schema/eval, without checkpoint or backbone) to run "
    "on the final checkpoint when the run completes; dataset and data_path default to the run's own. "
    "The eval run is linked to this one (its parent_id)."
)


class RunCreate(_Body):
    kind: RunKind = Field(description="Which command runs (a config model of the library).")
    name: str | None = Field(None, max_length=200, description="Free-text label shown in lists.")
    tags: list[Tag] = Field(default_factory=list, max_length=20, description="Labels to filter by.")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Options of the kind's config model (its JSON schema: GET /api/schema/{kind}, or the "
        "<Kind>Config component of this document); unset ones take defaults.",
    )
    evaluate: dict[str, Any] | None = Field(None, description=EVALUATE_DESCRIPTION)


class RunClone(_Body):
    name: str | None = Field(None, max_length=200, description="Name of the copy (default: '<name> (copy)').")
    tags: list[Tag] | None = Field(
        None, max_length=20, description="Tags of the copy (default: the original's)."
    )
    config: dict[str, Any] = Field(default_factory=dict, description="Options that differ from the original.")


class RunProgress(BaseModel):
    step: int | None = None
    total_steps: int | None = None
    fraction: float | None = Field(None, description="step / total_steps, 0-1.")
    eta_seconds: float | None = None


class RunPublic(BaseModel):
    id: str
    kind: RunKind
    name: str | None
    tags: list[str]
    status: RunStatus
    config: dict[str, Any]
    backbone: str | None
    queue: str | None
    output_dir: str | None
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker_name: str | None
    progress: RunProgress
    params: int | None = Field(description="Parameter count of the backbone, once the run reports it.")
    latest_metrics: dict[str, Any]
    best_metrics: dict[str, Any] = Field(description="key -> {value, step, goal} for losses and accuracies.")
    error: str | None
    exit_code: int | None
    cancel_requested: bool
    attempt: int
    parent_id: str | None = Field(
        description="The run this one evaluates (kind eval, chained) or was cloned from (same kind)."
    )
    sweep_id: str | None = Field(None, description="The sweep or study this run belongs to.")
    evaluate: dict[str, Any] | None = Field(
        None, description="The chained evaluation's options, run on the final checkpoint on completion."
    )
    evaluation_id: str | None = Field(None, description="The chained eval run, once it was queued.")
    last_event_id: int | None = Field(
        None,
        description="Newest event id (detail view): pass it to /events?last_event_id= to get only newer ones.",
    )
    warning: str | None = Field(
        None, description="Set on submission when no live worker takes the run's queue (it still queues)."
    )

    @classmethod
    def from_run(cls, run: Run, *, last_event_id: int | None = None) -> RunPublic:
        return cls(
            id=run.id,
            kind=run.kind,
            name=run.name,
            tags=list(run.tags or []),
            status=run.status,
            config=dict(run.config or {}),
            backbone=run.backbone,
            queue=run.queue,
            output_dir=run.output_dir,
            created_at=run.created_at,
            queued_at=run.queued_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            heartbeat_at=run.heartbeat_at,
            worker_name=run.worker_name,
            progress=RunProgress(
                step=run.step, total_steps=run.total_steps, fraction=run.fraction, eta_seconds=run.eta_seconds
            ),
            params=run.params,
            latest_metrics=dict(run.latest_metrics or {}),
            best_metrics=dict(run.best_metrics or {}),
            error=run.error,
            exit_code=run.exit_code,
            cancel_requested=bool(run.cancel_requested),
            attempt=run.attempt,
            parent_id=run.parent_id,
            sweep_id=run.sweep_id,
            evaluate=run.evaluate,
            evaluation_id=run.evaluation_id,
            last_event_id=last_event_id,
        )


class RunsPublic(BaseModel):
    data: list[RunPublic]
    count: int = Field(description="Runs matching the filters, over all pages.")


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


class LogsPublic(BaseModel):
    run_id: str
    lines: list[str]
    source: Literal["events", "file", "none"]


class ArtifactPublic(BaseModel):
    name: str = Field(
        description="Path relative to the run directory; GET .../artifacts/{name} downloads it."
    )
    size: int
    modified_at: datetime


class ArtifactsPublic(BaseModel):
    data: list[ArtifactPublic]
    count: int


class ComponentHealth(BaseModel):
    ok: bool
    detail: str | None = None


class WorkerPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    hostname: str | None
    queues: list[str]
    gpus: list[int]
    current_run_id: str | None
    last_seen: datetime
    pid: int | None


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    detail: str | None = Field(None, description="Why the status is degraded, one cause per '; '.")
    version: str
    database: ComponentHealth
    broker: ComponentHealth
    workers: list[WorkerPublic] = Field(description="Workers heard from within the heartbeat timeout.")


class Message(BaseModel):
    detail: str = Field(description="One line: what is wrong and how to fix it.")
    field_errors: dict[str, str] | None = Field(
        None,
        description="Config field -> message, when the error concerns given fields (forms show them there).",
    )


class BackbonePublic(BaseModel):
    """A registered backbone (lowdino.backbones.BackboneInfo, which needs torch; the API's schema must not)."""

    name: str
    family: str
    params: int = Field(description="Measured from the built network.")
    num_features: int = Field(description="Feature size D of (B, D), read from the network.")
    description: str
    pretrained_available: bool
    input_multiple: int = Field(description="Image sides must be a multiple of this (ViTs: the patch size).")
    min_input_size: int
    default_eval_size: int = Field(description="Resolution its pretrained weights were trained at.")
    timm_model_id: str | None


class PresetPublic(BaseModel):
    name: str = Field(description="File name of the recipe (configs/<name>.yaml) without .yaml.")
    kind: RunKind
    description: str = Field(description="First sentence of the recipe's header: what it is for.")
    config: dict[str, Any] = Field(description="Options of the kind's config model the recipe sets.")


class MethodsPublic(BaseModel):
    pretrain: list[str]
    distill: list[str]


class CatalogPublic(BaseModel):
    """What can be run. Rows are the library's own records (one definition each), so they cannot drift."""

    backbones: list[BackbonePublic]
    datasets: list[str]
    methods: MethodsPublic
    kinds: list[RunKind]
    statuses: list[RunStatus] = Field(description="Every run status, in lifecycle order (for filters).")
    presets: list[PresetPublic]
    references: list[ReferenceResult] = Field(description="Published figures, never measured here.")


class PlotlyFigure(BaseModel):
    """A Plotly figure as JSON: `Plotly.newPlot(div, data, layout)` draws it as it is."""

    data: list[dict[str, Any]]
    layout: dict[str, Any]


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
    published: Literal[False]


class CompareReferencePublic(BaseModel):
    """A published model on the same dataset, never measured here."""

    model: str
    params_millions: float | None
    source: str | None
    scores: dict[str, float | None]
    published: Literal[True]


class ComparePublic(BaseModel):
    dataset: str = Field(description="The dataset most of the runs used; published rows are for it.")
    runs: list[CompareRunPublic]
    references: list[CompareReferencePublic]
    differing_config: dict[str, dict[str, Any]] = Field(
        description="option -> {run id: value}, differing only."
    )
    figures: dict[str, PlotlyFigure]


SweepValues = Annotated[list[Any], Field(min_length=1, max_length=1000)]


class SweepCreate(_Body):
    """runs = overrides x product(grid values), each applied to `config`; validated all before any run."""

    kind: RunKind = Field(description="The kind of every run of the sweep.")
    name: str | None = Field(None, max_length=200, description="Prefix of every run's name.")
    tags: list[Tag] = Field(default_factory=list, max_length=20, description="Added to every run.")
    config: dict[str, Any] = Field(default_factory=dict, description="The base config every run starts from.")
    grid: dict[str, SweepValues] | None = Field(
        None,
        max_length=20,
        description='Option -> values; every combination is one run, e.g. {"backbone": ["a", "b"], "seed": [0, 1]}.',
    )
    overrides: list[dict[str, Any]] | None = Field(
        None, max_length=1000, description="Explicit option sets, one run each (times the grid, if both)."
    )
    evaluate: dict[str, Any] | None = Field(None, description=EVALUATE_DESCRIPTION)


class StudyCreate(_Body):
    study: str = Field(
        "reproduce_original_table", max_length=100, description="A study preset (GET /api/studies)."
    )
    scale: str = Field("smoke", max_length=50, description="How long it runs: one of the study's scales.")
    name: str | None = Field(None, max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    pretrain: dict[str, Any] = Field(
        default_factory=dict,
        description="Pretrain options over the study's and the scale's (e.g. dataset, data_path, max_steps).",
    )
    evaluate: dict[str, Any] = Field(
        default_factory=dict, description="Eval options over the study's and the scale's."
    )


class StudyScalePublic(BaseModel):
    name: str
    description: str
    pretrain: dict[str, Any]
    evaluate: dict[str, Any]


class StudyBaselinePublic(BaseModel):
    label: str
    backbone: str
    available: bool = Field(description="Its weights are present here (else the study skips it).")
    reason: str | None = Field(None, description="Why it would be skipped.")


class StudyPublic(BaseModel):
    name: str
    title: str
    description: str
    dataset: str
    backbones: list[str]
    pretrain: dict[str, Any]
    evaluate: dict[str, Any]
    scales: list[StudyScalePublic]
    baselines: list[StudyBaselinePublic]


class StudiesPublic(BaseModel):
    data: list[StudyPublic]


class SweepPublic(BaseModel):
    id: str
    name: str | None
    kind: RunKind
    study: str | None
    config: dict[str, Any]
    grid: dict[str, Any] | None
    overrides: list[dict[str, Any]] | None
    evaluate: dict[str, Any] | None
    tags: list[str]
    skipped: dict[str, str] = Field(description="Rows a study could not run here: model -> reason.")
    created_at: datetime
    run_ids: list[str] = Field(description="Every run of the sweep, chained evaluations included.")
    status_counts: dict[str, int] = Field(description="Runs per status.")
    total: int
    done: bool = Field(
        description="Every run finished and every chained evaluation that is due has finished too."
    )


class SweepsPublic(BaseModel):
    data: list[SweepPublic]
    count: int
