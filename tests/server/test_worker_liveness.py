"""/api/health and run submissions say when no live worker would take a run (it still queues)."""

from __future__ import annotations

import os
from datetime import timedelta

from fastapi.testclient import TestClient

from server.storage.models import Worker, utcnow
from server.workers import queries as worker_queries

TINY = {"dataset": "synthetic", "batch_size": 16, "backbone": "resnet5m", "max_steps": 5}


def submit(client: TestClient, **config: object) -> dict:
    response = client.post("/api/runs", json={"kind": "pretrain", "config": {**TINY, **config}})
    assert response.status_code == 201, response.text
    return response.json()


def test_health_is_degraded_without_a_live_worker(client: TestClient, session: object) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "degraded"
    assert body["detail"].startswith("no live worker: queued runs wait until one runs")
    assert body["database"]["ok"]
    assert body["broker"]["ok"]

    # A worker whose last heartbeat is older than the timeout is not live either.
    worker_queries.upsert_worker(session, name="old", hostname="box", queues=["cpu"], pid=os.getpid())  # type: ignore[arg-type]
    worker = session.get(Worker, "old")  # type: ignore[attr-defined]
    worker.last_seen = utcnow() - timedelta(minutes=5)
    session.commit()  # type: ignore[attr-defined]
    assert client.get("/api/health").json()["status"] == "degraded"

    worker_queries.upsert_worker(session, name="old", hostname="box", queues=["cpu"], pid=os.getpid())  # type: ignore[arg-type]
    body = client.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["detail"] is None


def test_submission_warns_when_no_live_worker_takes_its_queue(client: TestClient, session: object) -> None:
    run = submit(client)
    assert run["status"] == "queued"
    assert run["warning"] == (
        "no live worker takes queue 'cpu': the run stays queued until one does; "
        "start `lowdino worker --queues cpu` (or `lowdino serve`)"
    )

    worker_queries.upsert_worker(session, name="gpu-0", hostname="box", queues=["gpu"], gpus=[0], pid=1)  # type: ignore[arg-type]
    assert "queue 'cpu'" in submit(client)["warning"]
    assert submit(client, device="cuda")["warning"] is None

    worker_queries.upsert_worker(session, name="cpu-0", hostname="box", queues=["cpu"], pid=2)  # type: ignore[arg-type]
    assert submit(client)["warning"] is None
