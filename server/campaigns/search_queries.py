"""Search rows and their trials: create, read, lease (one driver at a time), record trial outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from server.errors import SearchNotFoundError
from server.runs.queries import add_run
from server.storage.models import Run, Search, SearchTrial, utcnow
from server.vocabulary import SearchState, TrialState


def create_search(
    session: Session,
    *,
    search_id: str,
    name: str | None,
    kind: str,
    config: dict[str, Any],
    search: dict[str, Any],
    tags: list[str],
) -> Search:
    row = Search(
        id=search_id,
        name=name,
        kind=kind,
        config=config,
        search=search,
        tags=list(tags),
        state=SearchState.RUNNING,
        created_at=utcnow(),
    )
    session.add(row)
    session.commit()
    return row


def require_search(session: Session, *, search_id: str) -> Search:
    row = session.get(Search, search_id)
    if row is None:
        raise SearchNotFoundError(search_id)
    return row


def list_searches(session: Session, *, limit: int = 50, offset: int = 0) -> tuple[list[Search], int]:
    rows = list(
        session.scalars(
            select(Search).order_by(Search.created_at.desc(), Search.id.asc()).limit(limit).offset(offset)
        )
    )
    count = session.scalar(select(func.count()).select_from(Search)) or 0
    return rows, int(count)


def running_search_ids(session: Session) -> list[str]:
    ids = list(session.scalars(select(Search.id).where(Search.state == SearchState.RUNNING)))
    session.commit()
    return ids


def claim_lease(session: Session, *, search_id: str, owner: str, now: datetime, until: datetime) -> bool:
    """Take or renew the right to drive the search until `until`: True for exactly one process at a time
    (a conditional UPDATE: free, expired, or already ours)."""
    result = session.execute(
        update(Search)
        .where(
            Search.id == search_id,
            Search.state == SearchState.RUNNING,
            or_(Search.lease_owner.is_(None), Search.lease_until < now, Search.lease_owner == owner),
        )
        .values(lease_owner=owner, lease_until=until)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release_leases(session: Session, *, owner: str) -> None:
    """Give up every lease `owner` holds (a process shutting down), so another process drives at once."""
    session.execute(
        update(Search).where(Search.lease_owner == owner).values(lease_owner=None, lease_until=None)
    )
    session.commit()


def set_search_state(
    session: Session, *, search_id: str, state: SearchState, error: str | None = None
) -> None:
    values: dict[str, Any] = {"state": state, "lease_owner": None, "lease_until": None}
    if state is not SearchState.RUNNING:
        values["finished_at"] = utcnow()
    if error is not None:
        values["error"] = error
    session.execute(update(Search).where(Search.id == search_id).values(**values))
    session.commit()


def search_trials(session: Session, *, search_id: str) -> list[SearchTrial]:
    query = select(SearchTrial).where(SearchTrial.search_id == search_id).order_by(SearchTrial.number)
    return list(session.scalars(query))


def trials_of(session: Session, *, search_ids: Sequence[str]) -> dict[str, list[SearchTrial]]:
    found: dict[str, list[SearchTrial]] = {search_id: [] for search_id in search_ids}
    if search_ids:
        query = select(SearchTrial).where(SearchTrial.search_id.in_(list(search_ids)))
        for trial in session.scalars(query.order_by(SearchTrial.number)):
            found[trial.search_id].append(trial)
    return found


def add_trial(
    session: Session,
    *,
    search_id: str,
    number: int,
    trial_id: int,
    params: dict[str, Any],
    run: dict[str, Any] | None,
    reason: str | None = None,
) -> tuple[SearchTrial, Run | None]:
    """The trial and its run (`run`: keywords of `add_run`) in one commit; without a run, a failed trial."""
    created = add_run(session, **run) if run is not None else None
    trial = SearchTrial(
        search_id=search_id,
        number=number,
        trial_id=trial_id,
        run_id=created.id if created is not None else None,
        params=params,
        state=TrialState.RUNNING if created is not None else TrialState.FAIL,
        last_step=-1,
        reason=reason,
        created_at=utcnow(),
        finished_at=None if created is not None else utcnow(),
    )
    session.add(trial)
    try:
        session.commit()
    except Exception:
        session.rollback()
        raise
    return trial, created


def update_trial(session: Session, *, search_id: str, number: int, **fields: Any) -> None:
    if fields.get("state") not in (None, TrialState.RUNNING):
        fields.setdefault("finished_at", utcnow())
    session.execute(
        update(SearchTrial)
        .where(SearchTrial.search_id == search_id, SearchTrial.number == number)
        .values(**fields)
    )
    session.commit()


def runs_by_id(session: Session, *, run_ids: Sequence[str]) -> dict[str, Run]:
    if not run_ids:
        return {}
    return {run.id: run for run in session.scalars(select(Run).where(Run.id.in_(list(run_ids))))}
