"""The FastAPI application: `create_app(settings)`; `uvicorn --factory server.http.app:create_app`.

At creation the app opens the database and runs `alembic upgrade head`, so a fresh LOWDINO_HOME
or an empty PostgreSQL database just works. While it runs, a background loop marks running runs
whose worker stopped sending heartbeats as interrupted (every heartbeat_interval seconds), another
queues the evaluation that each completed chained run owes (every chain_poll_interval seconds), and a
third drives the running recipe searches it holds the lease of (every search_poll_interval seconds).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from lowdino import __version__
from server.campaigns.search_driver import drive_searches, release
from server.events.hub import EventHub
from server.http.catalog import catalog
from server.http.contract import install_error_handlers, install_openapi
from server.http.protections import install_protections
from server.http.router import api_router
from server.http.security import BodySizeLimit
from server.http.web import mount_frontend
from server.runs.chains import queue_owed_evaluations
from server.runs.interruptions import reap_interrupted_runs
from server.settings import Settings, get_settings
from server.storage.engine import create_db_engine, make_session_factory, upgrade_database
from server.workers.broker import make_celery

log = logging.getLogger("lowdino.server")
CATALOG_WARMUP_WAIT_S = 30.0
SHUTDOWN_WAIT_S = 5.0


def _reap(app: FastAPI) -> list[str]:
    """One pass of the heartbeat reaper (every worker runs it too): stale running runs -> interrupted."""
    settings: Settings = app.state.settings
    changed = reap_interrupted_runs(app.state.engine, heartbeat_timeout=settings.heartbeat_timeout)
    for run_id in changed:
        log.warning("run %s: no heartbeat for %.0f s, marked interrupted", run_id, settings.heartbeat_timeout)
    return changed


async def _reaper(app: FastAPI) -> None:
    while True:
        await asyncio.sleep(app.state.settings.heartbeat_interval)
        try:
            await run_in_threadpool(_reap, app)
        except Exception:  # a database hiccup must not end the loop
            log.exception("heartbeat reaper failed; retrying")


def _chain(app: FastAPI) -> list[str]:
    with app.state.session_factory() as session:
        return queue_owed_evaluations(session, app.state.celery, app.state.settings)


async def _chainer(app: FastAPI) -> None:
    """Queue the evaluations that completed chained runs owe (server.runs.chains), until shutdown."""
    while True:
        try:
            await run_in_threadpool(_chain, app)
        except Exception:  # a database hiccup must not end the loop
            log.exception("queueing chained evaluations failed; retrying")
        await asyncio.sleep(app.state.settings.chain_poll_interval)


def _drive(app: FastAPI) -> None:
    drive_searches(app.state.session_factory, app.state.celery, app.state.settings, owner=app.state.owner)


async def _search_driver(app: FastAPI) -> None:
    """Drive the running searches (server.campaigns.search_driver), until shutdown."""
    while True:
        try:
            await run_in_threadpool(_drive, app)
        except Exception:  # a database hiccup must not end the loop
            log.exception("driving searches failed; retrying")
        await asyncio.sleep(app.state.settings.search_poll_interval)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Runs left `running` by a crash of everything (API and workers) are interrupted from the start.
    await run_in_threadpool(_reap, app)
    task = asyncio.create_task(_reaper(app), name="heartbeat-reaper")
    chainer = asyncio.create_task(_chainer(app), name="chain-loop")
    searcher = asyncio.create_task(_search_driver(app), name="search-driver")
    # Building every backbone to count its parameters takes seconds: do it before a page asks.
    warm_catalog = threading.Thread(target=catalog, name="lowdino-catalog-warmup", daemon=True)
    warm_catalog.start()
    await app.state.event_hub.start()
    try:
        yield
    finally:
        await app.state.event_hub.stop()
        # A process that exits while torch is building a model aborts ("terminate called without an
        # active exception"): let the warm-up finish first (seconds, and only right after a start).
        await run_in_threadpool(warm_catalog.join, CATALOG_WARMUP_WAIT_S)
        for loop in (task, chainer, searcher):
            loop.cancel()
        # A loop inside a database call ends when that call returns: wait a little, never forever.
        _, stuck = await asyncio.wait((task, chainer, searcher), timeout=SHUTDOWN_WAIT_S)
        for loop in stuck:
            log.warning(
                "background loop %s did not stop within %.0f s; leaving it", loop.get_name(), SHUTDOWN_WAIT_S
            )
        try:
            await run_in_threadpool(release, app.state.session_factory, owner=app.state.owner)
        except Exception:  # the leases then expire by themselves (search_lease_s)
            log.exception("releasing this process's search leases failed")
        app.state.engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="LowDINO",
        version=__version__,
        description="Pretrain, evaluate and compare small self-supervised vision backbones.",
        lifespan=_lifespan,
        # Served by server.http.web from packaged assets: FastAPI's defaults load them from a public CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    # Who holds a search's lease: unique per process, and per app (tests run several in one process).
    app.state.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    app.state.stopping = threading.Event()  # set when the server starts shutting down (ends event streams)
    app.state.engine = create_db_engine(settings.database_url)
    upgrade_database(app.state.engine)
    app.state.session_factory = make_session_factory(app.state.engine)
    app.state.celery = make_celery(settings.broker_url)
    # One events subscription for all of this process's event streams (started by the lifespan).
    app.state.event_hub = EventHub(
        app.state.engine,
        app.state.session_factory,
        poll_interval=settings.sse_poll_interval,
        stopping=app.state.stopping,
    )
    settings.run_root.mkdir(parents=True, exist_ok=True)

    install_error_handlers(app)
    install_openapi(app, auth_enabled=bool(settings.api_token))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_protections(app, settings)  # last: the outermost middleware, before any other work
    app.include_router(api_router)
    mount_frontend(app)
    return app
