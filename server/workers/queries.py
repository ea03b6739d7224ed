"""Worker rows: registration and heartbeats (which also keep their current run's heartbeat fresh)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from server.storage.models import Run, Worker, utcnow
from server.vocabulary import RunStatus


def upsert_worker(
    session: Session,
    *,
    name: str,
    hostname: str | None = None,
    queues: Sequence[str] = (),
    gpus: Sequence[int] = (),
    pid: int | None = None,
    current_run_id: str | None = None,
) -> Worker:
    """Create or refresh the worker's row (last_seen = now). Commits."""
    worker = session.get(Worker, name)
    if worker is None:
        worker = Worker(name=name)
        session.add(worker)
    worker.hostname = hostname
    worker.queues = list(queues)
    worker.gpus = [int(gpu) for gpu in gpus]
    worker.pid = pid
    worker.current_run_id = current_run_id
    worker.last_seen = utcnow()
    session.commit()
    return worker


def heartbeat(session: Session, *, worker_name: str, run_id: str | None = None) -> None:
    """The worker is alive and busy with `run_id` (or idle): stamps worker.last_seen and run.heartbeat_at.

    A worker that has no row yet gets a minimal one. Only a `running` run's heartbeat is touched, so a
    late beat cannot revive a run that the reaper has already marked interrupted.
    """
    now = utcnow()
    updated = session.execute(
        update(Worker).where(Worker.name == worker_name).values(last_seen=now, current_run_id=run_id)
    )
    if updated.rowcount == 0:  # type: ignore[attr-defined]
        session.add(Worker(name=worker_name, queues=[], gpus=[], last_seen=now, current_run_id=run_id))
    if run_id is not None:
        session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == RunStatus.RUNNING)
            .values(heartbeat_at=now, worker_name=worker_name)
        )
    session.commit()


def list_workers(session: Session, *, seen_within: float | None = None) -> list[Worker]:
    """Workers, newest heartbeat first; with `seen_within` seconds, only those heard from since."""
    query = select(Worker).order_by(Worker.last_seen.desc())
    if seen_within is not None:
        query = query.where(Worker.last_seen >= utcnow() - timedelta(seconds=seen_within))
    return list(session.scalars(query))


def remove_worker(session: Session, *, name: str) -> None:
    """Forget a worker (on clean shutdown). Commits."""
    session.execute(delete(Worker).where(Worker.name == name))
    session.commit()
