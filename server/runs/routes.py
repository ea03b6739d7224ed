"""/api/runs: submit, list, inspect, cancel, resume, clone and delete runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status

from server.deps import CeleryDep, SessionDep, SettingsDep
from server.events import queries as event_queries
from server.runs import lifecycle
from server.runs import queries as run_queries
from server.runs.queries import SORTABLE_FIELDS
from server.runs.schemas import RunClone, RunCreate, RunPublic, RunsPublic, RunUpdate
from server.runs.where import MAX_WHERE_CHARS
from server.schemas import CONFLICT_DESCRIPTION, Message
from server.vocabulary import RunKind, RunStatus
from server.workers.liveness import queue_warning

router = APIRouter(prefix="/runs", tags=["runs"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Message, "description": "No run with this id."}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Message, "description": "The run's state does not allow this."}
}
INVALID: dict[int | str, dict[str, Any]] = {
    409: {"model": Message, "description": CONFLICT_DESCRIPTION},
    422: {"model": Message, "description": "Invalid config (the message names the field)."},
}
# Filters reach SQL as text: control characters (NUL above all) are refused before they reach the database.
PRINTABLE = r"^[^\x00-\x1f]*$"
ID = r"^[A-Za-z0-9_-]+$"
if TYPE_CHECKING:
    SortField = str
else:  # built from the crud's list, so that the OpenAPI schema and validation name every choice
    SortField = Literal[tuple(SORTABLE_FIELDS + tuple(f"-{name}" for name in SORTABLE_FIELDS))]


@router.post(
    "",
    response_model=RunPublic,
    status_code=status.HTTP_201_CREATED,
    responses={**INVALID, 503: {"model": Message}},
)
def create_run(
    body: RunCreate, session: SessionDep, settings: SettingsDep, celery_app: CeleryDep
) -> RunPublic:
    """Validate the config with the library's model, create the run `queued` and send it to a worker."""
    run = lifecycle.submit_run(
        session,
        celery_app,
        settings,
        kind=body.kind,
        config=body.config,
        name=body.name,
        tags=body.tags,
        evaluate=body.evaluate,
    )
    public = RunPublic.from_run(run)
    public.warning = queue_warning(session, settings, run.queue)
    return public


@router.get(
    "",
    response_model=RunsPublic,
    responses={
        409: {
            "model": Message,
            "description": "A `where` the query grammar cannot read (no JSON Schema states it): the "
            "message names the offending token and its position.",
        }
    },
)
def list_runs(
    session: SessionDep,
    status_: Annotated[list[RunStatus] | None, Query(alias="status", description="Any of these.")] = None,
    kind: Annotated[RunKind | None, Query()] = None,
    tag: Annotated[str | None, Query(max_length=50, pattern=PRINTABLE)] = None,
    backbone: Annotated[str | None, Query(max_length=200, pattern=PRINTABLE)] = None,
    sweep: Annotated[str | None, Query(max_length=32, pattern=ID, description="Runs of this sweep.")] = None,
    parent: Annotated[
        str | None, Query(max_length=32, pattern=ID, description="Runs evaluating or cloned from it.")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=PRINTABLE, description="Substring of the name or id.")
    ] = None,
    where: Annotated[
        str | None,
        Query(
            max_length=MAX_WHERE_CHARS,
            pattern=PRINTABLE,
            description="A query over run fields, config options and metrics, e.g. "
            "`backbone = 'resnet5m' and knn_top1 > 30` (grammar: README, 'Notes, tags and queries'). "
            "A query it cannot read is a 409 naming the offending token and its position.",
        ),
    ] = None,
    sort: Annotated[SortField, Query(description="Field, '-' prefix for descending.")] = "-created_at",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> RunsPublic:
    rows, count = run_queries.list_runs(
        session,
        status=status_,
        kind=kind,
        tag=tag,
        backbone=backbone,
        sweep=sweep,
        parent=parent,
        search=q,
        where=where,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    return RunsPublic(data=[RunPublic.from_run(run) for run in rows], count=count)


@router.get("/{run_id}", response_model=RunPublic, responses=NOT_FOUND)
def get_run(run_id: str, session: SessionDep) -> RunPublic:
    run = run_queries.require_run(session, run_id=run_id)
    return RunPublic.from_run(run, last_event_id=event_queries.latest_event_id(session, run_id=run_id))


@router.patch(
    "/{run_id}",
    response_model=RunPublic,
    responses={**NOT_FOUND, 422: {"model": Message, "description": "A field of the wrong form (named)."}},
)
def update_run(run_id: str, body: RunUpdate, session: SessionDep) -> RunPublic:
    """Rename a run, write its notes (Markdown) or replace its tags, in any status; other fields stay."""
    run = run_queries.update_run_details(session, run_id=run_id, changes=body.model_dump(exclude_unset=True))
    return RunPublic.from_run(run, last_event_id=event_queries.latest_event_id(session, run_id=run_id))


@router.post("/{run_id}/cancel", response_model=RunPublic, responses={**NOT_FOUND, **CONFLICT})
def cancel_run(run_id: str, session: SessionDep, settings: SettingsDep) -> RunPublic:
    """Queued: cancelled at once. Running: asks the trainer to checkpoint and stop (cancel_requested)."""
    return RunPublic.from_run(lifecycle.cancel_run(session, settings, run_id=run_id))


@router.post("/{run_id}/resume", response_model=RunPublic, responses={**NOT_FOUND, **CONFLICT})
def resume_run(run_id: str, session: SessionDep, settings: SettingsDep, celery_app: CeleryDep) -> RunPublic:
    """A failed, cancelled or interrupted run with a checkpoint continues in its own directory."""
    return RunPublic.from_run(lifecycle.resume_run(session, celery_app, settings, run_id=run_id))


@router.post(
    "/{run_id}/clone",
    response_model=RunPublic,
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, **INVALID, 503: {"model": Message}},
)
def clone_run(
    run_id: str,
    session: SessionDep,
    settings: SettingsDep,
    celery_app: CeleryDep,
    body: RunClone | None = None,
) -> RunPublic:
    """A new queued run with the same config, updated by `config` overrides."""
    body = body or RunClone()
    run = lifecycle.clone_run(
        session, celery_app, settings, run_id=run_id, overrides=body.config, name=body.name, tags=body.tags
    )
    return RunPublic.from_run(run)


@router.delete(
    "/{run_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_run(run_id: str, session: SessionDep, settings: SettingsDep) -> Response:
    """Delete the run, its metrics, events and run directory (not while it runs)."""
    lifecycle.delete_run(session, settings, run_id=run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
