"""Server-Sent Events from the events table.

Each event is sent as ``id: <events.id>``, ``event: metric|status|log`` and ``data: <json>``. Ids grow,
so a client that reconnects with ``Last-Event-ID`` (the browser's EventSource does it by itself) or
``?last_event_id=`` gets exactly the events it has not seen: a database read on connect (the
catch-up), then live events handed over by the process's `server.events.hub.EventHub`, which reads
the table once for all clients (LISTEN/NOTIFY on PostgreSQL, one poll per `sse_poll_interval` on
SQLite). A client that falls too far behind is switched back to a database read, without slowing
the others.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from server.events import queries as event_queries
from server.events.hub import EventHub, format_event

__all__ = ["event_stream", "format_event"]

KEEPALIVE_SECONDS = 15.0
RETRY_MS = 1000
BATCH = 500
# How often an idle stream checks that its client is still there (no database work involved).
IDLE_CHECK_SECONDS = 1.0


async def event_stream(
    request: Request,
    session_factory: Callable[[], Any],
    *,
    hub: EventHub,
    stopping: threading.Event | None = None,
    run_id: str,
    last_event_id: int,
    types: Sequence[str] | None = None,
    max_seconds: float | None = None,
) -> AsyncIterator[str]:
    """Events of `run_id` after `last_event_id`, until the client goes away, `stopping` is set or the
    stream has lived `max_seconds` (after the catch-up it owes the client).

    The client's EventSource reconnects by itself after a server restart or a stream's end, with
    Last-Event-ID, so no event is lost either way.
    """

    def fetch(after: int) -> list[tuple[int, str]]:
        with session_factory() as session:
            events = event_queries.events_after(
                session, run_id=run_id, after_id=after, limit=BATCH, types=types
            )
            return [(event.id, format_event(event)) for event in events]

    yield f"retry: {RETRY_MS}\n\n"
    cursor = last_event_id
    started = quiet_since = time.monotonic()
    async with hub.subscribe(run_id) as subscription:
        catch_up = True  # the first read, and again whenever the hub marks this client lagging
        while True:
            if await request.is_disconnected() or (stopping is not None and stopping.is_set()):
                return
            if subscription.closed:
                return
            if catch_up or subscription.lagging:
                catch_up, subscription.lagging = False, False
                while True:
                    batch = await run_in_threadpool(fetch, cursor)
                    for event_id, text in batch:
                        yield text
                        cursor = event_id
                    if len(batch) < BATCH:
                        break
                quiet_since = time.monotonic()
            if max_seconds is not None and time.monotonic() - started >= max_seconds:
                return
            try:
                item = await asyncio.wait_for(subscription.queue.get(), timeout=IDLE_CHECK_SECONDS)
            except TimeoutError:
                if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                    quiet_since = time.monotonic()
                    yield ": keep-alive\n\n"  # a comment line: keeps proxies from closing an idle stream
                continue
            if item is None or item.id <= cursor:
                continue  # a wake-up (lagging / closed), or an event the catch-up already sent
            cursor = item.id
            if types is None or item.type in types:
                quiet_since = time.monotonic()
                yield item.text
