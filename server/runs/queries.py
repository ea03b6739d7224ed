"""Run rows: create, read, list, status transitions, cancel requests and the heartbeat reaper.

Every function takes the session first and keyword-only arguments after it, and commits its own
unit of work, so the API and the worker call them the same way. A status change always appends a
`status` event in the same transaction, so SSE followers see it exactly when it is committed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, text, update
from sqlalchemy.orm import Session

from server.errors import RunNotFoundError
from server.events.queries import add_event
from server.runs.where import where_clause
from server.storage.models import Run, utcnow
from server.vocabulary import (
    FINISHED_STATUSES,
    RUN_KINDS,
    RUN_STATUSES,
    TRAINING_KINDS,
    EventType,
    RunKind,
    RunStatus,
)

SORTABLE_FIELDS = (
    "created_at",
    "queued_at",
    "started_at",
    "finished_at",
    "name",
    "status",
    "kind",
    "backbone",
    "params",
    "step",
)
# Columns update_run_status may set besides `status`.
UPDATABLE_FIELDS = frozenset(Run.__table__.columns.keys()) - {"id", "kind", "status", "created_at"}


def backbone_of(
    kind: str, config: dict[str, Any], *, run_of_source: Callable[[str], Run | None] | None = None
) -> str | None:
    """The model a run trains, evaluates or exports: `backbone`, the distillation `student`, or what an
    export's `source` names (that run's backbone when `run_of_source` finds the run, else the name)."""
    if kind == RunKind.EXPORT:
        source = config.get("source")
        named = run_of_source(str(source)) if run_of_source is not None and source else None
        value = named.backbone if named is not None else source
        return None if value is None else str(value)
    value = config.get("student") if kind == RunKind.DISTILL else config.get("backbone")
    if value is None and kind == RunKind.EVAL:
        value = config.get("checkpoint")
    return None if value is None else str(value)


def run_of_path(session: Session, value: str) -> Run | None:
    """The run a `checkpoint` / `source` value names: a run id, or (as the server stores it) that run's
    directory or its checkpoint.pth."""
    if "/" not in value and "\\" not in value:
        return session.get(Run, value) if len(value) <= 32 else None
    path = Path(value)
    folder = path.parent if path.suffix == ".pth" else path
    run = session.get(Run, folder.name) if len(folder.name) <= 32 else None
    if run is None or not run.output_dir or Path(run.output_dir).resolve() != folder.resolve():
        return None
    return run


def add_run(
    session: Session,
    *,
    kind: str,
    config: dict[str, Any],
    name: str | None = None,
    tags: list[str] | None = None,
    run_id: str | None = None,
    output_dir: str | None = None,
    queue: str | None = None,
    parent_id: str | None = None,
    sweep_id: str | None = None,
    evaluate: dict[str, Any] | None = None,
    attempt: int = 1,
) -> Run:
    """Add a `queued` run and its first status event to the session, without committing.

    For callers that create several rows in one transaction (a sweep is created whole or not at all).
    """
    if kind not in RUN_KINDS:
        raise ValueError(f"run kind {kind!r} is not one of {RUN_KINDS}")
    now = utcnow()
    run = Run(
        kind=kind,
        name=_fitted_name(name),
        tags=list(tags or []),
        status=RunStatus.QUEUED,
        config=config,
        backbone=backbone_of(kind, config, run_of_source=lambda value: run_of_path(session, value)),
        output_dir=output_dir,
        queue=queue,
        created_at=now,
        queued_at=now,
        parent_id=parent_id,
        sweep_id=sweep_id,
        evaluate=evaluate,
        attempt=attempt,
        latest_metrics={},
        best_metrics={},
        cancel_requested=False,
    )
    if run_id is not None:
        run.id = run_id
    session.add(run)
    session.flush()  # assigns the id for the event below
    add_event(
        session, run_id=run.id, type=EventType.STATUS, data={"status": RunStatus.QUEUED, "attempt": attempt}
    )
    return run


NAME_LENGTH: int = Run.__table__.c.name.type.length  # type: ignore[attr-defined]


def _fitted_name(name: str | None) -> str | None:
    """A generated name (a sweep's "a=1, b=2, ..." of every changed option, a search prefix with its trial)
    shortened to what the column holds, ending in "…", instead of a database error on PostgreSQL."""
    if name is None or len(name) <= NAME_LENGTH:
        return name
    return name[: NAME_LENGTH - 1] + "…"


def create_run(session: Session, **fields: Any) -> Run:
    """Insert a `queued` run (plus its first status event) and commit; keywords as for `add_run`."""
    run = add_run(session, **fields)
    session.commit()
    return run


def get_run(session: Session, *, run_id: str) -> Run | None:
    return session.get(Run, run_id)


def require_run(session: Session, *, run_id: str) -> Run:
    """`get_run`, raising RunNotFoundError (404) when there is no such run."""
    run = session.get(Run, run_id)
    if run is None:
        raise RunNotFoundError(run_id)
    return run


def list_children(session: Session, *, parent_ids: Collection[str], kind: str | None = None) -> list[Run]:
    """Runs whose `parent_id` is one of `parent_ids` (of `kind` when given), oldest first.

    A chained eval run points at the pretrain/distill run it evaluates; a clone points at its source
    (same kind), so callers after the evaluations of a training run pass kind="eval".
    """
    if not parent_ids:
        return []
    query = select(Run).where(Run.parent_id.in_(list(parent_ids)))
    if kind is not None:
        query = query.where(Run.kind == kind)
    return list(session.scalars(query.order_by(Run.created_at.asc(), Run.id.asc())))


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tag_filter(session: Session, tag: str) -> ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        clause = text("runs.tags @> CAST(:tag_json AS jsonb)").bindparams(tag_json=json.dumps([tag]))
        return clause  # type: ignore[return-value]  # a boolean SQL expression that SQLAlchemy types as text
    each = func.json_each(Run.tags).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == tag))


def _filtered(
    session: Session,
    query: Select[Any],
    *,
    status: str | Collection[str] | None,
    kind: str | None,
    tag: str | None,
    backbone: str | None,
    search: str | None,
    sweep: str | None = None,
    parent: str | None = None,
    where: str | None = None,
) -> Select[Any]:
    if where:
        query = query.where(where_clause(where, dialect=session.get_bind().dialect.name))
    if status:
        statuses = [status] if isinstance(status, str) else list(status)
        query = query.where(Run.status.in_(statuses))
    if kind:
        query = query.where(Run.kind == kind)
    if backbone:
        query = query.where(Run.backbone == backbone)
    if tag:
        query = query.where(_tag_filter(session, tag))
    if sweep:
        query = query.where(Run.sweep_id == sweep)
    if parent:
        query = query.where(Run.parent_id == parent)
    if search:
        pattern = f"%{_escape_like(search)}%"
        query = query.where(
            or_(
                Run.name.ilike(pattern, escape="\\"),
                Run.id.like(pattern, escape="\\"),
                Run.notes.ilike(pattern, escape="\\"),
            )
        )
    return query


def list_runs(
    session: Session,
    *,
    status: str | Collection[str] | None = None,
    kind: str | None = None,
    tag: str | None = None,
    backbone: str | None = None,
    sweep: str | None = None,
    parent: str | None = None,
    search: str | None = None,
    where: str | None = None,
    sort: str = "-created_at",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Run], int]:
    """One page of runs matching every given filter, and the total number that match.

    `sort` is a field of SORTABLE_FIELDS, prefixed with '-' for descending; ties break on id.
    `search` matches a substring of the name or the notes (case-insensitive), or of the id.
    `where` is a query of server.runs.where's grammar (WhereError, 422, when it is not one).
    """
    field = sort.removeprefix("-")
    if field not in SORTABLE_FIELDS:
        raise ValueError(f"cannot sort by {field!r}; use one of {', '.join(SORTABLE_FIELDS)}")
    column = getattr(Run, field)
    order = column.desc() if sort.startswith("-") else column.asc()

    def filtered(query: Select[Any]) -> Select[Any]:
        return _filtered(
            session,
            query,
            status=status,
            kind=kind,
            tag=tag,
            backbone=backbone,
            search=search,
            sweep=sweep,
            parent=parent,
            where=where,
        )

    rows = list(
        session.scalars(filtered(select(Run)).order_by(order, Run.id.asc()).limit(limit).offset(offset))
    )
    count = session.scalar(filtered(select(func.count()).select_from(Run))) or 0
    return rows, int(count)


# What PATCH /api/runs/{id} may change: labels people give a run, never what it ran or recorded.
EDITABLE_FIELDS = frozenset({"name", "notes", "tags"})


def update_run_details(session: Session, *, run_id: str, changes: dict[str, Any]) -> Run:
    """Set the given editable fields (name, notes, tags) of a run in any status. Commits."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValueError(f"update_run_details got fields that are not editable: {sorted(unknown)}")
    run = require_run(session, run_id=run_id)
    for name, value in changes.items():
        if name == "tags":
            value = list(dict.fromkeys(value or []))
        elif isinstance(value, str) and not value.strip():
            value = None  # an emptied name or notes box clears it
        setattr(run, name, value)
    session.commit()
    return run


def _status_event_data(run: Run) -> dict[str, Any]:
    data: dict[str, Any] = {"status": run.status, "attempt": run.attempt}
    for field in ("error", "exit_code", "worker_name", "cancel_requested"):
        value = getattr(run, field)
        if value not in (None, False):
            data[field] = value
    return data


def _known_status(value: str) -> RunStatus:
    try:
        return RunStatus(value)
    except ValueError:
        raise ValueError(f"run status {value!r} is not one of {', '.join(RUN_STATUSES)}") from None


def _status_fields(status: RunStatus, fields: dict[str, Any], *, caller: str) -> dict[str, Any]:
    """`fields` checked and completed with the timestamp `status` stamps (unless the caller gave it).

    running -> started_at and heartbeat_at; queued -> queued_at; a finished status -> finished_at.
    """
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"{caller} got unknown run fields {sorted(unknown)}")
    now = utcnow()
    stamped = dict(fields)
    if status is RunStatus.RUNNING:
        stamped.setdefault("started_at", now)
        stamped.setdefault("heartbeat_at", now)
    elif status is RunStatus.QUEUED:
        stamped.setdefault("queued_at", now)
    elif status in FINISHED_STATUSES:
        stamped.setdefault("finished_at", now)
    return stamped


def update_run_status(session: Session, *, run_id: str, status: RunStatus, **fields: Any) -> Run:
    """Set `status` (and any other run columns given), stamp its timestamp, append a status event. Commits."""
    status = _known_status(status)
    fields = _status_fields(status, fields, caller="update_run_status")
    run = require_run(session, run_id=run_id)
    run.status = status
    for name, value in fields.items():
        setattr(run, name, value)
    add_event(session, run_id=run.id, type=EventType.STATUS, data=_status_event_data(run))
    session.commit()
    return run


def transition_run(
    session: Session,
    *,
    run_id: str,
    from_statuses: Collection[RunStatus],
    status: RunStatus,
    **fields: Any,
) -> Run | None:
    """Atomically move the run to `status` only if it is in `from_statuses` (UPDATE ... WHERE status IN).

    Returns the updated run, or None when its status was something else (another process won the race):
    this is how a queued run is claimed by exactly one worker, or cancelled before a worker claims it.
    """
    status = _known_status(status)
    fields = _status_fields(status, fields, caller="transition_run")
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status.in_([RunStatus(each) for each in from_statuses]))
        .values(status=status, **fields)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return None
    run = session.get(Run, run_id, populate_existing=True)
    assert run is not None
    add_event(session, run_id=run_id, type=EventType.STATUS, data=_status_event_data(run))
    session.commit()
    return run


def claim_run(session: Session, *, run_id: str, worker_name: str, **fields: Any) -> Run | None:
    """queued -> running for `worker_name`, atomically; None if the run is not queued (never runs twice)."""
    return transition_run(
        session,
        run_id=run_id,
        from_statuses=(RunStatus.QUEUED,),
        status=RunStatus.RUNNING,
        worker_name=worker_name,
        **fields,
    )


def run_control_flags(session: Session, *, run_id: str) -> tuple[str, bool, str | None] | None:
    """(status, cancel_requested, worker_name) of the run, None when it was deleted; ends the read.

    The supervisor polls this every few hundred ms: three columns, and no snapshot held between polls.
    """
    row = session.execute(
        select(Run.status, Run.cancel_requested, Run.worker_name).where(Run.id == run_id)
    ).one_or_none()
    session.commit()
    return None if row is None else (str(row[0]), bool(row[1]), row[2])


def set_cancel_requested(session: Session, *, run_id: str, prune_reason: str | None = None) -> Run:
    """Flag a running run for cooperative cancellation (the worker sees it and writes STOP). Commits.

    With `prune_reason` the stop is a search's pruning: the worker ends the run pruned, not cancelled."""
    run = require_run(session, run_id=run_id)
    run.cancel_requested = True
    if prune_reason is not None:
        run.prune_reason = prune_reason
    add_event(session, run_id=run_id, type=EventType.STATUS, data=_status_event_data(run))
    session.commit()
    return run


def prune_reason(session: Session, *, run_id: str) -> str | None:
    """Why a search asked the run to stop (None: a plain cancel, or no such run); ends the read."""
    reason = session.scalar(select(Run.prune_reason).where(Run.id == run_id))
    session.commit()
    return reason


def delete_run(session: Session, *, run_id: str) -> None:
    """Delete the row; metrics and events go with it (ON DELETE CASCADE). Files are the caller's job."""
    run = require_run(session, run_id=run_id)
    session.delete(run)
    session.commit()


def mark_interrupted_runs(session: Session, *, older_than: float | timedelta) -> list[str]:
    """Running runs whose last heartbeat (else start) is older than `older_than` -> interrupted.

    Returns the ids it changed. Each run moves with a conditional UPDATE, so a worker that reports
    completion at the same moment wins cleanly instead of being overwritten.
    """
    age = older_than if isinstance(older_than, timedelta) else timedelta(seconds=float(older_than))
    cutoff: datetime = utcnow() - age
    last_sign = func.coalesce(Run.heartbeat_at, Run.started_at, Run.queued_at)
    stale = list(
        session.execute(
            select(Run.id, Run.heartbeat_at, Run.worker_name).where(
                and_(Run.status == RunStatus.RUNNING, last_sign < cutoff)
            )
        )
    )
    changed = []
    for run_id, heartbeat_at, worker_name in stale:
        seen = heartbeat_at.isoformat(timespec="seconds") if heartbeat_at else "never"
        message = (
            f"worker {worker_name or '?'} stopped sending heartbeats (last: {seen}); "
            "resume the run (POST /api/runs/{id}/resume) to continue from its last checkpoint"
        ).replace("{id}", run_id)
        if transition_run(
            session,
            run_id=run_id,
            from_statuses=(RunStatus.RUNNING,),
            status=RunStatus.INTERRUPTED,
            error=message,
        ):
            changed.append(run_id)
    return changed


# Chains: which completed runs still owe their evaluation, and claiming one exactly once.
def runs_owing_evaluation(session: Session, *, limit: int = 20) -> list[Run]:
    """Completed runs with an `evaluate` block whose evaluation has not been created yet."""
    query = (
        select(Run)
        .where(
            Run.status == RunStatus.COMPLETED,
            Run.kind.in_(TRAINING_KINDS),
            Run.evaluate.is_not(None),
            Run.evaluation_id.is_(None),
        )
        .order_by(Run.finished_at.asc(), Run.id.asc())
        .limit(limit)
    )
    rows = list(session.scalars(query))
    session.commit()  # end the read: the claim below runs in its own transaction
    return rows


def claim_evaluation(session: Session, *, parent_id: str, evaluation: dict[str, Any]) -> Run | None:
    """Create the parent's evaluation run (`evaluation`: keywords of `add_run`) if nobody did yet.

    The conditional UPDATE (evaluation_id IS NULL) and the insert commit together, so of several API
    processes racing on the same parent exactly one creates a run, and a crash leaves either both or
    neither. Returns the new run, or None when another process had claimed it.
    """
    run_id = evaluation["run_id"]
    result = session.execute(
        update(Run)
        .where(Run.id == parent_id, Run.evaluation_id.is_(None), Run.status == RunStatus.COMPLETED)
        .values(evaluation_id=run_id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return None
    try:
        run = add_run(session, parent_id=parent_id, **evaluation)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return run
