"""The events table: an append-only feed per run whose ids are the Server-Sent-Events ids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from server.storage.models import Event
from server.vocabulary import EventType

# One log event carries at most this many lines; longer bursts are split into several events.
MAX_LOG_LINES_PER_EVENT = 200
# The PostgreSQL channel every event insert notifies ('<run_id>:<event_id>'); server.events.hub listens.
EVENTS_CHANNEL = "lowdino_events"


def add_event(session: Session, *, run_id: str, type: EventType, data: dict[str, Any]) -> Event:
    """Stage an event in the caller's transaction (no commit): it becomes visible with the change it reports.

    On PostgreSQL the same transaction also sends NOTIFY lowdino_events '<run_id>:<event_id>': the
    server delivers notifications at commit, in commit order, and drops them on rollback, so an API
    process that LISTENs learns of the event exactly when a reader can see it (server.events.hub).
    """
    type = EventType(type)  # a caller's typo fails here, not in a dashboard that ignores the event
    event = Event(run_id=run_id, type=type, data=data)
    session.add(event)
    if session.get_bind().dialect.name == "postgresql":
        session.flush()  # assigns event.id
        session.execute(select(func.pg_notify(EVENTS_CHANNEL, f"{run_id}:{event.id}")))
    return event


def append_log(
    session: Session, *, run_id: str, lines: str | Sequence[str], stream: str = "stdout"
) -> list[Event]:
    """Append `log` events ({"lines": [...], "stream": ...}) and commit; returns them (ids set)."""
    items = lines.splitlines() if isinstance(lines, str) else [str(line) for line in lines]
    events = [
        add_event(
            session,
            run_id=run_id,
            type=EventType.LOG,
            data={"lines": items[start : start + MAX_LOG_LINES_PER_EVENT], "stream": stream},
        )
        for start in range(0, len(items), MAX_LOG_LINES_PER_EVENT)
    ]
    session.commit()
    return events


def events_after(
    session: Session, *, run_id: str, after_id: int = 0, limit: int = 500, types: Sequence[str] | None = None
) -> list[Event]:
    """Events of `run_id` with id > `after_id`, oldest first (index ix_events_run_id_id)."""
    query = select(Event).where(Event.run_id == run_id, Event.id > after_id)
    if types:
        query = query.where(Event.type.in_(list(types)))
    return list(session.scalars(query.order_by(Event.id).limit(limit)))


def events_of_runs_after(session: Session, *, cursors: Mapping[str, int], limit: int = 500) -> list[Event]:
    """Events of several runs at once, each after its own cursor (run id -> last id seen), oldest first.

    One statement for any number of runs: the SSE hub reads for all its clients with it (each OR term
    is a range on the (run_id, id) index).
    """
    if not cursors:
        return []
    terms = [and_(Event.run_id == run_id, Event.id > after) for run_id, after in cursors.items()]
    return list(session.scalars(select(Event).where(or_(*terms)).order_by(Event.id).limit(limit)))


def latest_event_id(session: Session, *, run_id: str) -> int | None:
    """The newest event id of the run (what a client passes as Last-Event-ID to get only newer ones)."""
    return session.scalar(select(func.max(Event.id)).where(Event.run_id == run_id))


def log_lines(session: Session, *, run_id: str, tail: int) -> list[str]:
    """The last `tail` lines of the run's `log` events, oldest first."""
    lines: list[str] = []
    query = select(Event.data).where(Event.run_id == run_id, Event.type == "log").order_by(Event.id.desc())
    for data in session.scalars(query.execution_options(yield_per=100)):
        lines[:0] = list(data.get("lines", []))
        if len(lines) >= tail:
            break
    return lines[-tail:] if tail else []
