"""Server-Sent Events against a real uvicorn server: live delivery, increasing ids, Last-Event-ID resume."""

from __future__ import annotations

import time

import httpx
import pytest
from fastapi import FastAPI
from serverlib import SseEvent, SseReader, serving

from server.events import queries as event_queries
from server.http.app import create_app
from server.metrics import queries as metric_queries
from server.runs import queries as run_queries
from server.settings import Settings
from server.storage.engine import session_scope


def read_events(response: httpx.Response, count: int) -> list[SseEvent]:
    return SseReader(response).take(count)


def test_events_stream_live_and_resume(app: FastAPI, live_server: str) -> None:
    engine = app.state.engine
    with session_scope(engine) as session:
        run_id = run_queries.create_run(session, kind="pretrain", config={}).id  # event 1: status queued
    timeout = httpx.Timeout(10.0)
    url = f"{live_server}/api/runs/{run_id}/events"
    with httpx.Client(timeout=timeout) as client, client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(response)
        (queued,) = reader.take(1)
        assert queued.type == "status"
        assert queued.data["status"] == "queued"
        assert queued.data["run_id"] == run_id

        # Events committed while the client is connected arrive on the open stream.
        with session_scope(engine) as session:
            run_queries.claim_run(session, run_id=run_id, worker_name="w")
            metric_queries.ingest_metrics(
                session, run_id=run_id, records=[{"step": 1, "loss": 2.5, "total_steps": 10}]
            )
            event_queries.append_log(session, run_id=run_id, lines=["hello"])
        live = reader.take(3)
    assert [event.type for event in live] == ["status", "metric", "log"]
    assert live[1].data["points"] == [{"key": "loss", "step": 1, "epoch": None, "time": None, "value": 2.5}]
    assert live[1].data["fraction"] == pytest.approx(0.1)
    ids = [queued.id] + [event.id for event in live]
    assert ids == sorted(ids)
    assert len(set(ids)) == 4

    # While disconnected, more happens; reconnecting with Last-Event-ID yields exactly what was missed.
    with session_scope(engine) as session:
        metric_queries.ingest_metrics(session, run_id=run_id, records=[{"step": 2, "loss": 2.0}])
        run_queries.update_run_status(session, run_id=run_id, status="completed", exit_code=0)
    with httpx.Client(timeout=timeout) as client:
        with client.stream("GET", url, headers={"Last-Event-ID": str(live[-1].id)}) as response:
            missed = read_events(response, 2)
        assert [event.type for event in missed] == ["metric", "status"]
        assert missed[0].data["points"][0]["step"] == 2
        assert missed[1].data["status"] == "completed"
        assert missed[0].id > live[-1].id
        # The query parameter does the same (for clients that cannot set headers), and filters by type.
        with client.stream("GET", url, params={"last_event_id": live[0].id, "types": "metric"}) as response:
            metrics_only = read_events(response, 2)
        assert [event.data["points"][0]["step"] for event in metrics_only] == [1, 2]


def test_events_of_other_runs_are_not_mixed_in(app: FastAPI, live_server: str) -> None:
    engine = app.state.engine
    with session_scope(engine) as session:
        mine = run_queries.create_run(session, kind="pretrain", config={}).id
        other = run_queries.create_run(session, kind="pretrain", config={}).id
        metric_queries.ingest_metrics(session, run_id=other, records=[{"step": 1, "loss": 1.0}])
        metric_queries.ingest_metrics(session, run_id=mine, records=[{"step": 1, "loss": 9.0}])
    with (
        httpx.Client(timeout=httpx.Timeout(10.0)) as client,
        client.stream("GET", f"{live_server}/api/runs/{mine}/events") as response,
    ):
        events = read_events(response, 2)
    assert {event.data["run_id"] for event in events} == {mine}
    assert events[1].data["points"][0]["value"] == 9.0


def test_a_stream_past_its_lifetime_ends_and_the_reconnect_misses_nothing(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"sse_max_stream_seconds": 1.0}))
    try:
        with session_scope(app.state.engine) as session:
            run_id = run_queries.create_run(session, kind="pretrain", config={}).id  # event 1: queued
            metric_queries.ingest_metrics(session, run_id=run_id, records=[{"step": 1, "loss": 2.5}])
        with serving(app) as base, httpx.Client(timeout=httpx.Timeout(10.0)) as client:
            url = f"{base}/api/runs/{run_id}/events"
            started = time.monotonic()
            with client.stream("GET", url) as response:
                reader = SseReader(response)
                first = reader.take(2)  # the catch-up is always owed, whatever the lifetime
                rest = list(reader.lines)  # ends only because the server ends the stream
            lifetime = time.monotonic() - started
            assert [event.type for event in first] == ["status", "metric"]
            assert not [line for line in rest if line.startswith("id:")]
            assert lifetime < 8  # ended by the server, not by the client's 10 s read timeout

            with session_scope(app.state.engine) as session:
                event_queries.append_log(session, run_id=run_id, lines=["after the first stream"])
            with client.stream("GET", url, headers={"Last-Event-ID": str(first[-1].id)}) as response:
                (missed,) = SseReader(response).take(1)
            assert missed.type == "log"
            assert missed.id > first[-1].id
    finally:
        app.state.engine.dispose()
