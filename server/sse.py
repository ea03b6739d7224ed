"""Server-Sent Events from the events table.

Each event is sent as ``id: <events.id>``, ``event: metric|status|log`` and ``data: <json>``. Ids grow,
so a client that reconnects with ``Last-Event-ID`` (the browser's EventSource does it by itself) or
``?last_event_id=`` gets exactly the events it has not seen. The table is polled every
`poll_interval` seconds per client (default 0.2 s), so a committed point reaches the client in well
under a second on SQLite and PostgreSQL alike, without a notification channel.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from server import crud
from server.models import Event

KEEPALIVE_SECONDS = 15.0
RETRY_MS = 1000
BATCH = 500


def format_event(event: Event) -> str:
    payload = json.dumps({"run_id": event.run_id, **(event.data or {})}, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.type}\ndata: {payload}\n\n"


async def event_stream(
    request: Request,
    session_factory: Callable[[], Any],
    *,
    stopping: threading.Event | None = None,
    run_id: str,
    last_event_id: int,
    poll_interval: float,
    types: Sequence[str] | None = None,
) -> AsyncIterator[str]:
    """Events of `run_id` after `last_event_id`, until the client goes away or `stopping` is set.

    The client's EventSource reconnects by itself after a server restart, with Last-Event-ID.
    """

    def fetch(after: int) -> list[tuple[int, str]]:
        with session_factory() as session:
            events = crud.events_after(session, run_id=run_id, after_id=after, limit=BATCH, types=types)
            return [(event.id, format_event(event)) for event in events]

    yield f"retry: {RETRY_MS}\n\n"
    cursor = last_event_id
    quiet_since = time.monotonic()
    while True:
        if await request.is_disconnected() or (stopping is not None and stopping.is_set()):
            return
        batch = await run_in_threadpool(fetch, cursor)
        for event_id, text in batch:
            yield text
            cursor = event_id
        if batch:
            quiet_since = time.monotonic()
            if len(batch) == BATCH:
                continue  # more waiting: drain before sleeping
        elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"  # a comment line: keeps proxies from closing an idle stream
        await asyncio.sleep(poll_interval)
