"""/api/runs/{id}/events: the run's metric, status and log events as Server-Sent Events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from server.events.sse import event_stream
from server.runs import queries as run_queries
from server.schemas import Message
from server.vocabulary import EventType

# Event ids are 64-bit integers in the database; a larger cursor would overflow the query mid-stream.
MAX_EVENT_ID = 2**63 - 1

router = APIRouter(prefix="/runs/{run_id}", tags=["events"])
EVENT_TYPES = frozenset(EventType)


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "id / event / data records, until the client leaves "
            "(or `sse_max_stream_seconds` pass: the client reconnects with Last-Event-ID)",
        },
        404: {"model": Message, "description": "No run with this id."},
    },
)
def run_events(
    run_id: str,
    request: Request,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
    last_event_id: Annotated[
        int | None, Query(ge=0, le=MAX_EVENT_ID, description="Resume after this event id.")
    ] = None,
    types: Annotated[
        str | None, Query(max_length=40, description="Comma-separated subset of metric,status,log.")
    ] = None,
) -> StreamingResponse:
    """Stream events after Last-Event-ID (header) or ?last_event_id= (default: from the first event)."""
    # A short-lived session: a request-scoped one would hold a connection for the stream's lifetime.
    with request.app.state.session_factory() as session:
        run_queries.require_run(session, run_id=run_id)
    after = last_event_id or 0
    if last_event_id_header and last_event_id_header.strip().isdigit():
        after = max(after, min(int(last_event_id_header.strip()), MAX_EVENT_ID))
    wanted = [item for item in (types or "").split(",") if item in EVENT_TYPES] or None
    stream = event_stream(
        request,
        request.app.state.session_factory,
        hub=request.app.state.event_hub,
        stopping=request.app.state.stopping,
        run_id=run_id,
        last_event_id=after,
        types=wanted,
        max_seconds=request.app.state.settings.sse_max_stream_seconds or None,
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)
