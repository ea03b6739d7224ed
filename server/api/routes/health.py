"""/api/health: database, broker and live workers. Needs no token (for load balancers and probes)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from sqlalchemy import text

from lowdino import __version__
from server import crud
from server.broker import broker_reachable
from server.deps import SessionDep, SettingsDep
from server.schemas import ComponentHealth, HealthPublic, WorkerPublic

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic)
def health(request: Request, session: SessionDep, settings: SettingsDep) -> HealthPublic:
    workers: list[WorkerPublic] = []
    try:
        session.execute(text("SELECT 1"))
        database = ComponentHealth(ok=True, detail=session.get_bind().dialect.name)
        workers = [
            WorkerPublic.model_validate(worker)
            for worker in crud.list_workers(session, seen_within=settings.heartbeat_timeout)
        ]
    except Exception as exc:
        database = ComponentHealth(ok=False, detail=f"{exc.__class__.__name__}: {exc}"[:300])
    ok, error = broker_reachable(request.app.state.celery)
    broker = ComponentHealth(ok=ok, detail=error)
    status: Literal["ok", "degraded"] = "ok" if database.ok and broker.ok else "degraded"
    return HealthPublic(status=status, version=__version__, database=database, broker=broker, workers=workers)
