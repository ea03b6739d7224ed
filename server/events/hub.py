"""One events subscription per API process, fanned out to all of its Server-Sent-Events clients.

Every open event stream used to poll the events table on its own; a lab's worth of open pages then
meant hundreds of queries a second. Now each process has one `EventHub` (started by the app's
lifespan) that reads new events once and hands each to the asyncio queue of every client of its run:

* PostgreSQL: LISTEN lowdino_events on a dedicated psycopg connection. Every event insert sends
  NOTIFY '<run_id>:<event_id>' in its own transaction (server.events.queries.add_event), so the hub
  reads only after a commit that concerns one of its runs: one query per burst of notifications.
  PostgreSQL rather than Redis pub/sub because the notification is part of the writing transaction
  (sent at commit, never for a rolled-back write, never before the row is visible), writers need no
  second connection, and it works whatever the broker is (Redis, or the SQLite file of the embedded
  mode). After the listening connection drops (database restart) the hub reconnects and reads once
  for all its runs, so nothing committed meanwhile is missed.
* SQLite (embedded default; no notification channel between processes): one poll per
  `sse_poll_interval` for all subscribed runs at once (`event_queries.events_of_runs_after`).

Either way the database work depends on the number of runs being watched, not on the number of
clients. Clients read their catch-up (Last-Event-ID) themselves, then take live events from their
queue (server.events.sse). A queue is bounded: a client too slow to keep up is marked `lagging`, its queue
is emptied, and it catches up from the database instead of holding everyone else back.

Within a run, events are delivered in id order as long as ids are committed in order (true on
SQLite, whose writers are serialized, and for one writer per run on PostgreSQL, the worker); that is
the same guarantee the per-client poll gave.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine, text

from server.events import queries as event_queries
from server.events.queries import EVENTS_CHANNEL
from server.storage.models import Event

log = logging.getLogger("lowdino.server.events")
_Arg = TypeVar("_Arg")
_Result = TypeVar("_Result")

QUEUE_SIZE = 1000  # events a client may have pending before it is switched to a database catch-up
BATCH = 500  # events per hub read; a full batch is followed by another read at once
RUNS_PER_QUERY = 200  # keeps one statement's OR list (and bound parameters) bounded
RETRY_SECONDS = 1.0  # after a failed read or a lost LISTEN connection
# Shutdown waits at most this long for the hub's tasks: a read stuck in the database must not hold the
# server (or a test's TestClient) forever.
STOP_TIMEOUT_S = 5.0
# A hub read waiting on a lock gives up after this (PostgreSQL): it retries, and never blocks shutdown.
READ_LOCK_TIMEOUT = "5s"


@dataclass(frozen=True)
class LiveEvent:
    """One event as every client sends it: formatted once by the hub."""

    id: int
    type: str
    text: str


def format_event(event: Event) -> str:
    """The SSE record of an event: `id`, `event` (its type) and `data` (run_id + the payload)."""
    payload = json.dumps({"run_id": event.run_id, **(event.data or {})}, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.type}\ndata: {payload}\n\n"


@dataclass(eq=False)
class Subscription:
    """A client's view of the hub: live events of one run, or `lagging` when it must re-read the database."""

    run_id: str
    queue: asyncio.Queue[LiveEvent | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    lagging: bool = False
    closed: bool = False
    overflows: int = 0  # times its queue was full (each followed by a database catch-up)

    def offer(self, item: LiveEvent) -> None:
        """Never blocks the hub: a full queue is dropped and the client told to catch up from the database."""
        if self.lagging:
            return  # its catch-up read will include this event
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.lagging = True
            self.overflows += 1
            self._empty()
            self.queue.put_nowait(None)  # wakes the client

    def close(self) -> None:
        self.closed = True
        self._empty()
        self.queue.put_nowait(None)

    def _empty(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()


class EventHub:
    """The per-process fan-out of new events to SSE clients (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        session_factory: Callable[[], Any],
        *,
        poll_interval: float,
        stopping: threading.Event | None = None,
    ) -> None:
        self.engine = engine
        self.session_factory = session_factory
        self.poll_interval = poll_interval
        self.stopping = stopping
        self.listens = engine.dialect.name == "postgresql"
        self.reads = 0  # hub reads of the events table so far (tests compare it with the client count)
        self._subscribers: dict[str, set[Subscription]] = {}
        self._cursors: dict[str, int | None] = {}  # run -> last event id handed out (None: being set)
        self._dirty: set[str] = set()  # runs notified since the last read (PostgreSQL)
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the hub's tasks in the running loop (the app's lifespan; again if that loop ended)."""
        loop = asyncio.get_running_loop()
        if self._tasks and self._loop is loop and not all(task.done() for task in self._tasks):
            return
        self._loop = loop
        self._wake = asyncio.Event()
        # Its own threads, not the loop's default executor: asyncio.run() joins that one without a time
        # limit when the loop closes, so one database read that never returns would hang the shutdown.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="event-hub")
        self._tasks = [asyncio.create_task(self._read_loop(), name="event-hub-read")]
        if self.listens:
            self._tasks.append(asyncio.create_task(self._listen_loop(), name="event-hub-listen"))

    async def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """End every stream and the hub's tasks, waiting at most `timeout` seconds for them."""
        await self.stop_clients()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=timeout)
            for task in stuck:
                log.warning(
                    "event hub: task %s did not stop within %.0f s; leaving it", task.get_name(), timeout
                )
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # -- clients -----------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def subscribe(self, run_id: str) -> AsyncIterator[Subscription]:
        """Live events of `run_id` for one client, from now on; read the catch-up AFTER entering.

        Entering registers the queue first: every event the hub reads later reaches it, and every
        event it read before was committed before, so the client's own catch-up read sees it
        (duplicates are possible and are skipped by id).
        """
        await self.start()
        subscription = Subscription(run_id)
        self._subscribers.setdefault(run_id, set()).add(subscription)
        try:
            if run_id not in self._cursors:
                self._cursors[run_id] = None  # the hub skips the run until its cursor is known
                latest = 0  # if the database does not answer: from the start (clients skip what they have)
                try:
                    latest = await self._in_thread(self._latest, run_id)
                finally:
                    if run_id in self._cursors and self._cursors[run_id] is None:
                        self._cursors[run_id] = latest
            yield subscription
        finally:
            subscribers = self._subscribers.get(run_id, set())
            subscribers.discard(subscription)
            if not subscribers:
                self._subscribers.pop(run_id, None)
                self._cursors.pop(run_id, None)

    def subscriptions(self, run_id: str) -> list[Subscription]:
        """The clients of `run_id` now."""
        return list(self._subscribers.get(run_id, ()))

    # -- reading -----------------------------------------------------------------------------------
    async def _in_thread(self, function: Callable[[_Arg], _Result], argument: _Arg) -> _Result:
        executor = self._executor
        if executor is None:  # stopped: a client's last catch-up still gets an answer
            return await asyncio.to_thread(function, argument)
        return await asyncio.get_running_loop().run_in_executor(executor, function, argument)

    def _bounded_session(self) -> Any:
        session = self.session_factory()
        if self.listens:  # PostgreSQL: a read queued behind a lock fails (and retries) instead of waiting
            session.execute(text(f"SET LOCAL lock_timeout = '{READ_LOCK_TIMEOUT}'"))
        return session

    def _latest(self, run_id: str) -> int:
        with self._bounded_session() as session:
            return event_queries.latest_event_id(session, run_id=run_id) or 0

    def _read(self, cursors: dict[str, int]) -> list[Event]:
        with self._bounded_session() as session:
            self.reads += 1
            return event_queries.events_of_runs_after(session, cursors=cursors, limit=BATCH)

    async def _read_once(self, runs: set[str] | None) -> bool:
        """Read new events of `runs` (None: every subscribed run) and hand them out; True if a batch was full."""
        ready = {
            run: cursor
            for run, cursor in self._cursors.items()
            if cursor is not None and (runs is None or run in runs)
        }
        full = False
        items = list(ready.items())
        for start in range(0, len(items), RUNS_PER_QUERY):
            chunk = dict(items[start : start + RUNS_PER_QUERY])
            events = await self._in_thread(self._read, chunk)
            full = full or len(events) == BATCH
            for event in events:
                cursor = self._cursors.get(event.run_id)
                if cursor is None or event.id <= cursor:
                    continue  # unsubscribed meanwhile, or already handed out
                self._cursors[event.run_id] = event.id
                item = LiveEvent(event.id, event.type, format_event(event))
                for subscription in list(self._subscribers.get(event.run_id, ())):
                    subscription.offer(item)
        return full

    async def _read_loop(self) -> None:
        assert self._wake is not None
        pending: set[str] | None = None  # PostgreSQL: runs still to read after a failure (None: all)
        while True:
            if self.stopping is not None and self.stopping.is_set():
                await self.stop_clients()
            if self.listens:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                except TimeoutError:
                    continue  # only to look at `stopping` now and then
                self._wake.clear()
                dirty, self._dirty = self._dirty, set()
                runs: set[str] | None = None if pending is None else dirty | pending
            else:
                await asyncio.sleep(self.poll_interval)
                runs = None
            if not self._subscribers:
                continue
            try:
                while await self._read_once(runs):
                    pass
                pending = set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database down or restarting: try again, for every run
                log.warning("event hub: reading events failed (%s); retrying", str(exc).splitlines()[0][:200])
                pending = None
                await asyncio.sleep(RETRY_SECONDS)
                self._wake.set()

    async def stop_clients(self) -> None:
        """The server is shutting down: end every open stream now (uvicorn waits for them)."""
        for subscribers in list(self._subscribers.values()):
            for subscription in list(subscribers):
                if not subscription.closed:
                    subscription.close()

    def _conninfo(self) -> str:
        url = self.engine.url.set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    async def _listen_loop(self) -> None:
        import psycopg

        assert self._wake is not None
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(self._conninfo(), autocommit=True)
                async with connection:
                    await connection.execute(f"LISTEN {EVENTS_CHANNEL}")
                    # Whatever was committed while nobody listened: one read for every run.
                    self._dirty = set(self._cursors)
                    self._wake.set()
                    async for note in connection.notifies():
                        run_id = note.payload.partition(":")[0]
                        if run_id in self._subscribers:
                            self._dirty.add(run_id)
                            self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "event hub: LISTEN connection lost (%s); reconnecting", str(exc).splitlines()[0][:200]
                )
            await asyncio.sleep(RETRY_SECONDS)
