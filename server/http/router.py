"""The /api router: every capability's routes, with the token check each needs."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from server.campaigns import routes as campaign_routes
from server.campaigns import search_routes
from server.http import catalog_routes, health_routes, session_routes
from server.http.security import require_token, require_token_or_query
from server.metrics import routes as metric_routes
from server.reporting import compare_routes
from server.reporting import routes as report_routes
from server.runs import artifact_routes, event_routes, log_routes
from server.runs import routes as run_routes

api_router = APIRouter(prefix="/api")
api_router.include_router(health_routes.router)  # open: probes and load balancers carry no token
api_router.include_router(session_routes.router)  # open: it is where the dashboard logs in
for module in (
    run_routes,
    campaign_routes,
    search_routes,
    metric_routes,
    log_routes,
    compare_routes,
    catalog_routes,
):
    api_router.include_router(module.router, dependencies=[Depends(require_token)])
# Opened by the browser without custom headers (EventSource, download links): ?token= / cookie too.
# The report is one too: its format=csv|md answers are the page's export links.
for router in (
    event_routes.router,
    artifact_routes.router,
    metric_routes.download_router,
    report_routes.router,
):
    api_router.include_router(router, dependencies=[Depends(require_token_or_query)])
