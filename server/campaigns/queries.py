"""Sweep rows and their runs: create a sweep with all its runs in one transaction, read, list, summarise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from server.errors import SweepNotFoundError
from server.runs.queries import add_run
from server.storage.models import Run, Sweep, utcnow
from server.vocabulary import RunStatus


def create_sweep(
    session: Session,
    *,
    sweep_id: str,
    kind: str,
    config: dict[str, Any],
    runs: Sequence[dict[str, Any]],
    name: str | None = None,
    study: str | None = None,
    grid: dict[str, Any] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    evaluate: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    skipped: dict[str, str] | None = None,
) -> tuple[Sweep, list[Run]]:
    """Insert the sweep and every run of it (`runs`: keywords of `add_run`) in one commit: all or none."""
    sweep = Sweep(
        id=sweep_id,
        name=name,
        kind=kind,
        study=study,
        config=config,
        grid=grid,
        overrides=overrides,
        evaluate=evaluate,
        tags=list(tags or []),
        skipped=dict(skipped or {}),
        created_at=utcnow(),
    )
    session.add(sweep)
    try:
        created = [add_run(session, sweep_id=sweep_id, **run) for run in runs]
        session.commit()
    except Exception:
        session.rollback()
        raise
    return sweep, created


def get_sweep(session: Session, *, sweep_id: str) -> Sweep | None:
    return session.get(Sweep, sweep_id)


def require_sweep(session: Session, *, sweep_id: str) -> Sweep:
    """`get_sweep`, raising SweepNotFoundError (404) when there is none."""
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise SweepNotFoundError(sweep_id)
    return sweep


def sweep_runs(session: Session, *, sweep_id: str) -> list[Run]:
    """Every run of the sweep, chained evaluations included, oldest first."""
    query = select(Run).where(Run.sweep_id == sweep_id).order_by(Run.created_at.asc(), Run.id.asc())
    return list(session.scalars(query))


def sweep_run_ids(session: Session, *, sweep_id: str) -> list[str]:
    query = select(Run.id).where(Run.sweep_id == sweep_id).order_by(Run.created_at.asc(), Run.id.asc())
    return list(session.scalars(query))


class RunState(NamedTuple):
    """What a sweep's summary needs of one run: no config, metrics or text columns."""

    id: str
    status: str
    owes_evaluation: bool  # completed with an `evaluate` block whose eval run is not created yet

    @classmethod
    def of(cls, run: Run) -> RunState:
        owes = run.status == RunStatus.COMPLETED and run.evaluate is not None and run.evaluation_id is None
        return cls(run.id, run.status, owes)


def sweep_run_states(session: Session, *, sweep_ids: Sequence[str]) -> dict[str, list[RunState]]:
    """sweep id -> its runs' states, oldest first, in one query for a whole page of sweeps."""
    states: dict[str, list[RunState]] = {sweep_id: [] for sweep_id in sweep_ids}
    if not sweep_ids:
        return states
    owes = and_(Run.status == RunStatus.COMPLETED, Run.evaluate.is_not(None), Run.evaluation_id.is_(None))
    rows = session.execute(
        select(Run.sweep_id, Run.id, Run.status, owes)
        .where(Run.sweep_id.in_(list(sweep_ids)))
        .order_by(Run.created_at.asc(), Run.id.asc())
    )
    for sweep_id, run_id, status, owing in rows:
        states[str(sweep_id)].append(RunState(str(run_id), str(status), bool(owing)))
    return states


def list_sweeps(session: Session, *, limit: int = 50, offset: int = 0) -> tuple[list[Sweep], int]:
    """One page of sweeps, newest first, and how many there are."""
    rows = list(
        session.scalars(
            select(Sweep).order_by(Sweep.created_at.desc(), Sweep.id.asc()).limit(limit).offset(offset)
        )
    )
    count = session.scalar(select(func.count()).select_from(Sweep)) or 0
    return rows, int(count)
