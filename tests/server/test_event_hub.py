"""One events subscription per API process: many SSE clients, one reader of the events table.

Against a real uvicorn server on SQLite and on PostgreSQL (LISTEN/NOTIFY): 30 concurrent clients of
one run each get every event, in order, with the database's ids; the statements on the events table
while events flow are the hub's reads only (one per hub read whether 1 or 30 clients listen, where
a poll per client would make 30); a client too slow to keep up catches up from the database while
the others keep receiving.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from serverlib import SseReader, serving
from services import private_postgres
from sqlalchemy import Engine, event

from server.events import hub
from server.events import queries as event_queries
from server.events.hub import EventHub
from server.events.sse import event_stream
from server.http.app import create_app
from server.metrics import queries as metric_queries
from server.runs import queries as run_queries
from server.settings import Settings
from server.storage.engine import create_db_engine, session_scope

CLIENTS = 30
STEPS = 12


class StatementCounter:
    """Counts the statements an engine runs on the events table (SQLAlchemy before_cursor_execute)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM events" in statement:
            with self.lock:
                self.count += 1

    def __enter__(self) -> StatementCounter:
        event.listen(self.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self)


@dataclass
class Client:
    """One SSE client: the (id, type, data) of every event it got, in arrival order."""

    events: list[tuple[int, str, dict[str, Any]]]
    first: asyncio.Event


async def read_stream(http: httpx.AsyncClient, url: str, client: Client, count: int) -> None:
    fields: dict[str, str] = {}
    async with http.stream("GET", url) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line == "":
                if "id" in fields:
                    client.events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
                    client.first.set()
                    if len(client.events) == count:
                        return
                fields = {}
            elif not line.startswith(":") and ":" in line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")


def write_steps(engine: Engine, run_id: str, steps: range, *, finish: bool) -> None:
    """What the worker does: one committed metrics batch per step (own engine: not counted)."""
    with session_scope(engine) as session:
        for step in steps:
            metric_queries.ingest_metrics(
                session, run_id=run_id, records=[{"step": step, "loss": 1.0 / step}]
            )
            time.sleep(0.02)
        if finish:
            run_queries.update_run_status(session, run_id=run_id, status="completed", exit_code=0)


async def watch(
    app: FastAPI, base: str, run_id: str, clients: int, writer_engine: Engine, steps: range, expected: int
) -> tuple[list[Client], int, int]:
    """`clients` streams of the run; once all are connected, write `steps`; returns the clients, the
    statements on the events table meanwhile and the hub's reads meanwhile."""
    hub: EventHub = app.state.event_hub
    limits = httpx.Limits(max_connections=clients + 5)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0), limits=limits) as http:
        readers = [Client([], asyncio.Event()) for _ in range(clients)]
        url = f"{base}/api/runs/{run_id}/events"
        tasks = [asyncio.create_task(read_stream(http, url, reader, expected)) for reader in readers]
        await asyncio.wait_for(asyncio.gather(*(reader.first.wait() for reader in readers)), 60)
        with StatementCounter(app.state.engine) as counter:
            reads_before = hub.reads
            await asyncio.to_thread(write_steps, writer_engine, run_id, steps, finish=steps.stop > STEPS)
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
            return readers, counter.count, hub.reads - reads_before


def test_many_clients_one_reader(app: FastAPI, live_server: str, engine: Engine) -> None:
    with session_scope(engine) as session:
        run_id = run_queries.create_run(session, kind="pretrain", config={}).id  # event 1: status queued
    half = STEPS // 2
    # Phase 1: one client; phase 2: thirty clients (from the first event on, catch-up then live).
    one, statements_one, reads_one = asyncio.run(
        watch(app, live_server, run_id, 1, engine, range(1, half + 1), expected=1 + half)
    )
    many, statements_many, reads_many = asyncio.run(
        watch(app, live_server, run_id, CLIENTS, engine, range(half + 1, STEPS + 1), expected=2 + STEPS)
    )
    with session_scope(engine) as session:
        stored = [(item.id, item.type) for item in event_queries.events_after(session, run_id=run_id)]
    assert len(stored) == 2 + STEPS
    assert [(item[0], item[1]) for item in one[0].events] == stored[: 1 + half]
    for client in many:
        assert [(item[0], item[1]) for item in client.events] == stored
        steps = [item[2]["points"][0]["step"] for item in client.events if item[1] == "metric"]
        assert steps == list(range(1, STEPS + 1))
        assert client.events[-1][2]["status"] == "completed"
    # Every statement on the events table while events flowed was a hub read: one per read, for 1
    # client as for 30 (a poll per client would have made 30 per read).
    assert statements_one == reads_one
    assert statements_many == reads_many
    assert reads_many > 0
    if engine.dialect.name == "postgresql":
        # Reads follow the notifications, not a clock: at most one per committed event (+ one on connect).
        assert reads_one <= half + 1
        assert reads_many <= (STEPS - half) + 2


class _Request:
    """The part of a Starlette Request an event stream uses, for driving it without HTTP."""

    async def is_disconnected(self) -> bool:
        return False


async def _take(stream: AsyncIterator[str], count: int) -> list[int]:
    ids: list[int] = []
    while len(ids) < count:
        text = await asyncio.wait_for(anext(stream), 30)
        if text.startswith("id: "):
            ids.append(int(text.split("\n", 1)[0][4:]))
    return ids


@pytest.fixture
def small_queues(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(hub, "QUEUE_SIZE", 3)
    return 3


def test_slow_client_catches_up_from_the_database(app: FastAPI, engine: Engine, small_queues: int) -> None:
    with session_scope(engine) as session:
        run_id = run_queries.create_run(session, kind="pretrain", config={}).id
    total = 1 + 4 * small_queues

    async def scenario() -> tuple[list[int], list[int], bool]:
        hub = EventHub(engine, app.state.session_factory, poll_interval=0.05)
        await hub.start()
        try:

            def stream() -> AsyncIterator[str]:
                return event_stream(
                    _Request(),
                    app.state.session_factory,
                    hub=hub,
                    run_id=run_id,
                    last_event_id=0,  # type: ignore[arg-type]
                )

            fast, slow = stream(), stream()
            await anext(fast), await anext(slow)  # the retry: lines
            fast_ids = await _take(fast, 1)
            slow_ids = await _take(slow, 1)
            # The fast client keeps reading while the slow one reads nothing: its queue overflows.
            writer = asyncio.create_task(
                asyncio.to_thread(write_steps, engine, run_id, range(1, total), finish=False)
            )
            fast_ids += await _take(fast, total - 1)
            await writer
            lagging = any(item.overflows for item in hub.subscriptions(run_id))
            slow_ids += await _take(slow, total - 1)
            await fast.aclose()
            await slow.aclose()
            return fast_ids, slow_ids, lagging
        finally:
            await hub.stop()

    fast_ids, slow_ids, lagging = asyncio.run(scenario())
    with session_scope(engine) as session:
        stored = [item.id for item in event_queries.events_after(session, run_id=run_id)]
    assert lagging, "the slow client's bounded queue should have overflowed"
    assert fast_ids == stored
    assert slow_ids == stored


@pytest.mark.services
def test_streams_go_on_after_a_postgres_restart(tmp_path: Path) -> None:
    """The hub's LISTEN connection dies with the database; it reconnects and reads what it missed."""
    with private_postgres() as postgres:
        settings = Settings(
            home=tmp_path / "home",
            database_url=postgres.url,
            broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
            api_token=None,
        )
        app = create_app(settings)
        writer = create_db_engine(postgres.url)
        try:
            with session_scope(writer) as session:
                run_id = run_queries.create_run(session, kind="pretrain", config={}).id
            with (
                serving(app) as base,
                httpx.Client(timeout=httpx.Timeout(30.0)) as http,
                http.stream("GET", f"{base}/api/runs/{run_id}/events") as response,
            ):
                reader = SseReader(response)
                assert reader.take(1)[0].type == "status"
                postgres.stop("fast")
                postgres.start()
                writer.dispose()  # its pooled connections died with the server
                write_steps(writer, run_id, range(1, 4), finish=True)
                live = reader.take(4)
            assert [item.type for item in live] == ["metric", "metric", "metric", "status"]
            assert [item.data["points"][0]["step"] for item in live[:3]] == [1, 2, 3]
        finally:
            writer.dispose()
            app.state.engine.dispose()


def test_shutdown_is_bounded_when_a_read_never_returns(app: FastAPI, engine: Engine) -> None:
    """A hub read stuck in the database (a lock that is never released) must not hang the server's stop.

    With reads in the loop's default executor, asyncio.run() joined that thread without a limit when the
    loop closed: the lifespan shutdown of a TestClient then waited forever with the event loop idle.
    """
    with session_scope(engine) as session:
        run_id = run_queries.create_run(session, kind="pretrain", config={}).id
    entered, release = threading.Event(), threading.Event()

    class StuckHub(EventHub):
        def _read(self, cursors: dict[str, int]) -> list[Any]:
            entered.set()
            release.wait(60)
            return []

    async def scenario() -> None:
        hub = StuckHub(engine, app.state.session_factory, poll_interval=0.01)
        await hub.start()
        async with hub.subscribe(run_id):
            # A new event makes the hub read on either database (SQLite polls; PostgreSQL is notified).
            await asyncio.to_thread(write_steps, engine, run_id, range(1, 2), finish=False)
            await asyncio.to_thread(entered.wait, 10)
            assert entered.is_set(), "the hub never started a read"
            await hub.stop(timeout=0.5)

    finished = threading.Event()

    def run_loop() -> None:
        asyncio.run(scenario())
        finished.set()

    loop_thread = threading.Thread(target=run_loop, daemon=True)
    started = time.monotonic()
    loop_thread.start()
    try:
        loop_thread.join(15)
        assert finished.is_set(), "the event loop did not close while a hub read was stuck"
        assert time.monotonic() - started < 15
    finally:
        release.set()
