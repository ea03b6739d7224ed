"""/api/health: database, broker and live workers. Needs no token (for load balancers and probes).

`degraded` (still HTTP 200, so probes that only want the process up keep working) when the database
or the broker is unreachable, or when no live worker exists; `detail` names each cause.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from sqlalchemy import text

from lowdino import __version__
from server.deps import SessionDep, SettingsDep
from server.http.schemas import ComponentHealth, HealthPublic, WorkerPublic
from server.workers.broker import broker_reachable
from server.workers.liveness import live_workers, no_worker_detail

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic)
def health(request: Request, session: SessionDep, settings: SettingsDep) -> HealthPublic:
    workers: list[WorkerPublic] = []
    try:
        session.execute(text("SELECT 1"))
        database = ComponentHealth(ok=True, detail=session.get_bind().dialect.name)
        workers = [WorkerPublic.model_validate(worker) for worker in live_workers(session, settings)]
    except Exception as exc:
        database = ComponentHealth(ok=False, detail=f"{exc.__class__.__name__}: {exc}"[:300])
    ok, error = broker_reachable(request.app.state.celery)
    broker = ComponentHealth(ok=ok, detail=error)
    problems = [
        *([f"database: {database.detail}"] if not database.ok else []),
        *([f"broker: {broker.detail}"] if not broker.ok else []),
        *([no_worker_detail()] if database.ok and not workers else []),
    ]
    status: Literal["ok", "degraded"] = "degraded" if problems else "ok"
    return HealthPublic(
        status=status,
        detail="; ".join(problems) or None,
        version=__version__,
        database=database,
        broker=broker,
        workers=workers,
    )
