"""The worker's background thread: its workers row, idle heartbeats and the reaper.

While a run is supervised, the supervisor's poll loop beats for the run (run.heartbeat_at and the
workers row together), so a stuck supervisor stops beating and its run gets reaped. When idle, this
thread keeps the workers row fresh. Either way it runs the reaper every `interval`, so a run whose
worker died is marked interrupted within heartbeat_timeout (+ one interval) as long as any worker
or the API server is alive.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from server.runs.interruptions import reap_interrupted_runs
from server.storage.engine import session_scope
from server.workers import queries as worker_queries
from worker.identity import WorkerIdentity, WorkerState

log = logging.getLogger(__name__)


def register_worker(engine: Engine, identity: WorkerIdentity) -> None:
    with session_scope(engine) as session:
        worker_queries.upsert_worker(
            session,
            name=identity.name,
            hostname=identity.hostname,
            queues=list(identity.queues),
            gpus=list(identity.reported_gpus),
            pid=identity.pid,
        )


def unregister_worker(engine: Engine, identity: WorkerIdentity) -> None:
    with session_scope(engine) as session:
        worker_queries.remove_worker(session, name=identity.name)


class HeartbeatThread(threading.Thread):
    def __init__(
        self,
        engine: Engine,
        identity: WorkerIdentity,
        state: WorkerState,
        *,
        interval: float,
        heartbeat_timeout: float,
    ) -> None:
        super().__init__(name="lowdino-heartbeat", daemon=True)
        self.engine = engine
        self.identity = identity
        self.state = state
        self.interval = interval
        self.heartbeat_timeout = heartbeat_timeout
        self._stopped = threading.Event()

    def beat_once(self) -> list[str]:
        """One idle heartbeat (skipped while a run is supervised) and one reaper pass; reaped run ids."""
        if self.state.current_run_id is None:
            with session_scope(self.engine) as session:
                worker_queries.heartbeat(session, worker_name=self.identity.name, run_id=None)
        reaped = reap_interrupted_runs(self.engine, heartbeat_timeout=self.heartbeat_timeout)
        for run_id in reaped:
            log.warning("run %s: no heartbeat for %.0f s; marked interrupted", run_id, self.heartbeat_timeout)
        return reaped

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.beat_once()
            except SQLAlchemyError as exc:
                # The database is down or locked: beat again next time rather than kill the thread.
                log.warning(
                    "heartbeat failed (%s); retrying in %.1f s", exc.__class__.__name__, self.interval
                )

    def stop(self) -> None:
        self._stopped.set()
