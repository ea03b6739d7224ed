"""Process-wide state of a running worker, tied to Celery's worker lifecycle signals.

    worker_ready          -> migrate the database, register the workers row, start the heartbeat thread
    worker_shutting_down  -> tell a supervised run to checkpoint and stop (it ends `interrupted`)
    worker_shutdown       -> stop the heartbeat thread, remove the workers row

Built lazily from `Settings` and the LOWDINO_WORKER_* environment, so importing the task module
(which the API never does) has no side effects.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from celery import signals
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from server.settings import Settings, get_settings
from server.storage.engine import create_db_engine, upgrade_database
from worker.heartbeat import HeartbeatThread, register_worker, unregister_worker
from worker.identity import WorkerIdentity, WorkerState
from worker.supervisor import SupervisorOptions

log = logging.getLogger(__name__)


@dataclass
class WorkerRuntime:
    settings: Settings
    engine: Engine
    identity: WorkerIdentity
    state: WorkerState
    options: SupervisorOptions
    heartbeat: HeartbeatThread | None = None

    @classmethod
    def from_environment(cls) -> WorkerRuntime:
        settings = get_settings()
        return cls(
            settings=settings,
            engine=create_db_engine(settings.database_url),
            identity=WorkerIdentity.from_env(),
            state=WorkerState(),
            options=SupervisorOptions(
                runs_root=settings.run_root, heartbeat_interval=settings.heartbeat_interval
            ),
        )

    def start(self) -> None:
        """Schema, workers row, heartbeat thread. Retries while a fresh database is being created."""
        # Celery sets the root logger to INFO; alembic's per-migration chatter is noise in a worker log.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        # Validating a run's config checks its backbone against the registry, which imports torch: do
        # that once here, before the first claim, not while a claimed run waits for its first heartbeat.
        import lowdino.backbones  # noqa: F401

        for attempt in range(5):
            try:
                upgrade_database(self.engine)
                break
            except SQLAlchemyError:
                # The API may be creating the same schema right now; its transaction wins, ours retries.
                if attempt == 4:
                    raise
                time.sleep(1.0)
        register_worker(self.engine, self.identity)
        self.heartbeat = HeartbeatThread(
            self.engine,
            self.identity,
            self.state,
            interval=self.settings.heartbeat_interval,
            heartbeat_timeout=self.settings.heartbeat_timeout,
        )
        self.heartbeat.start()
        log.info(
            "lowdino worker %s ready: queues %s, gpus %s, database %s",
            self.identity.name,
            ",".join(self.identity.queues),
            "all" if self.identity.gpus is None else ",".join(map(str, self.identity.gpus)) or "none",
            self.engine.url.render_as_string(hide_password=True),
        )

    def stop(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        try:
            unregister_worker(self.engine, self.identity)
        except SQLAlchemyError as exc:
            log.warning("could not remove worker row %s (%s)", self.identity.name, exc.__class__.__name__)


_runtime: WorkerRuntime | None = None
_lock = threading.Lock()


def get_runtime() -> WorkerRuntime:
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = WorkerRuntime.from_environment()
        return _runtime


@signals.worker_ready.connect
def _on_worker_ready(**_: Any) -> None:
    get_runtime().start()


@signals.worker_shutting_down.connect
def _on_worker_shutting_down(**_: Any) -> None:
    # Runs inside a signal handler: only set a flag; the supervisor's poll loop does the work.
    if _runtime is not None:
        _runtime.state.shutdown.set()


@signals.worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    if _runtime is not None:
        _runtime.stop()
