"""Worker registration, idle heartbeats and the reaper (worker thread and API share reap_interrupted_runs)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from workerlib import make_run, wait_for

from server.runs import queries as run_queries
from server.runs.interruptions import reap_interrupted_runs
from server.storage.engine import session_scope
from server.storage.models import Worker, utcnow
from worker.heartbeat import HeartbeatThread, register_worker, unregister_worker
from worker.identity import WorkerIdentity, WorkerState


def _running(engine: Engine, runs_root: Path, *, silent_for_s: float) -> str:
    run_id = make_run(engine, runs_root)
    with session_scope(engine) as session:
        run_queries.claim_run(
            session,
            run_id=run_id,
            worker_name="gone@host",
            heartbeat_at=utcnow() - timedelta(seconds=silent_for_s),
        )
    return run_id


def test_reaper_interrupts_only_silent_runs(any_engine: Engine, runs_root: Path) -> None:
    silent = _running(any_engine, runs_root, silent_for_s=120)
    alive = _running(any_engine, runs_root, silent_for_s=1)
    assert reap_interrupted_runs(any_engine, heartbeat_timeout=30) == [silent]
    assert reap_interrupted_runs(any_engine, heartbeat_timeout=30) == []  # idempotent
    with session_scope(any_engine) as session:
        reaped = run_queries.get_run(session, run_id=silent)
        kept = run_queries.get_run(session, run_id=alive)
        assert reaped is not None
        assert kept is not None
        assert reaped.status == "interrupted"
        assert "gone@host stopped sending heartbeats" in (reaped.error or "")
        assert kept.status == "running"


def test_registration_idle_beats_and_removal(sqlite_engine: Engine, runs_root: Path) -> None:
    identity = WorkerIdentity(name="gpu0-1@h", hostname="h", queues=("gpu",), gpus=(0, 1), pid=4242)
    register_worker(sqlite_engine, identity)
    with session_scope(sqlite_engine) as session:
        row = session.get(Worker, identity.name)
        assert row is not None
        assert (row.hostname, row.queues, row.gpus, row.pid) == ("h", ["gpu"], [0, 1], 4242)
        first_seen = row.last_seen
        row.last_seen = first_seen - timedelta(minutes=5)
        session.commit()

    state = WorkerState()
    silent = _running(sqlite_engine, runs_root, silent_for_s=60)
    thread = HeartbeatThread(sqlite_engine, identity, state, interval=0.05, heartbeat_timeout=10)
    assert thread.beat_once() == [silent]
    with session_scope(sqlite_engine) as session:
        row = session.get(Worker, identity.name)
        assert row is not None
        assert row.last_seen >= first_seen  # refreshed by the idle beat
        stale = row.last_seen - timedelta(minutes=5)
        row.last_seen = stale
        session.commit()

    # While a run is supervised the thread leaves the row to the supervisor's beats.
    state.current_run_id = "busy"
    thread.beat_once()
    with session_scope(sqlite_engine) as session:
        row = session.get(Worker, identity.name)
        assert row is not None
        assert row.last_seen == stale

    state.current_run_id = None
    thread.start()
    try:

        def refreshed() -> bool:
            with session_scope(sqlite_engine) as session:
                row = session.get(Worker, identity.name)
                return row is not None and row.last_seen > stale

        wait_for(refreshed, "the heartbeat thread to beat")
    finally:
        thread.stop()
        thread.join(5)
    assert not thread.is_alive()
    unregister_worker(sqlite_engine, identity)
    with session_scope(sqlite_engine) as session:
        assert session.get(Worker, identity.name) is None
