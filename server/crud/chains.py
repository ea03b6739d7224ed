"""Chains in the database: which completed runs still owe their evaluation, and claiming one exactly once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.crud.runs import add_run
from server.models import CHAINABLE_KINDS, Run, RunStatus


def runs_owing_evaluation(session: Session, *, limit: int = 20) -> list[Run]:
    """Completed runs with an `evaluate` block whose evaluation has not been created yet."""
    query = (
        select(Run)
        .where(
            Run.status == RunStatus.COMPLETED,
            Run.kind.in_(CHAINABLE_KINDS),
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
