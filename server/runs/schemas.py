"""Request and response bodies of /api/runs (submit, clone, list, detail, logs, artifacts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from server.schemas import StrictBody, Tag
from server.storage.models import Run
from server.vocabulary import RunKind, RunStatus

EVALUATE_DESCRIPTION = (
    "pretrain / distill only: eval options (GET /api/schema/eval, without checkpoint or backbone) to run "
    "on the final checkpoint when the run completes; dataset and data_path default to the run's own. "
    "The eval run is linked to this one (its parent_id)."
)


class RunCreate(StrictBody):
    kind: RunKind = Field(description="Which command runs (a config model of the library).")
    name: str | None = Field(None, max_length=200, description="Free-text label shown in lists.")
    tags: list[Tag] = Field(default_factory=list, max_length=20, description="Labels to filter by.")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Options of the kind's config model (its JSON schema: GET /api/schema/{kind}, or the "
        "<Kind>Config component of this document); unset ones take defaults.",
    )
    evaluate: dict[str, Any] | None = Field(None, description=EVALUATE_DESCRIPTION)


class RunClone(StrictBody):
    name: str | None = Field(None, max_length=200, description="Name of the copy (default: '<name> (copy)').")
    tags: list[Tag] | None = Field(
        None, max_length=20, description="Tags of the copy (default: the original's)."
    )
    config: dict[str, Any] = Field(default_factory=dict, description="Options that differ from the original.")


NOTES_MAX_CHARS = 20_000


class RunUpdate(StrictBody):
    """What may change on a run after the fact; only the fields sent change (null clears name or notes)."""

    name: str | None = Field(
        None, max_length=200, description="Free-text label shown in lists; null clears it."
    )
    notes: str | None = Field(
        None,
        max_length=NOTES_MAX_CHARS,
        description="Markdown (headings, emphasis, code, lists, links); the dashboard renders it without HTML. "
        "Searchable with GET /api/runs?q=. Null clears it.",
    )
    tags: list[Tag] | None = Field(
        None, max_length=20, description="The run's whole tag list (replaces it); duplicates are dropped."
    )


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
    notes: str | None = Field(None, description="Markdown notes added after the fact (PATCH).")
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
            notes=run.notes,
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
