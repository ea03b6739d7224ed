"""The /api router: every resource router, with the token check each needs."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from server.api.routes import (
    artifacts,
    catalog,
    compare,
    events,
    health,
    logs,
    metrics,
    report,
    runs,
    session,
    sweeps,
)
from server.security import require_token, require_token_or_query

api_router = APIRouter(prefix="/api")
api_router.include_router(health.router)  # open: probes and load balancers carry no token
api_router.include_router(session.router)  # open: it is where the dashboard logs in
for module in (runs, sweeps, metrics, logs, compare, catalog):
    api_router.include_router(module.router, dependencies=[Depends(require_token)])
# Opened by the browser without custom headers (EventSource, download links): ?token= / cookie too.
# The report is one too: its format=csv|md answers are the page's export links.
for router in (events.router, artifacts.router, metrics.download_router, report.router):
    api_router.include_router(router, dependencies=[Depends(require_token_or_query)])
