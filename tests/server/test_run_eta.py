"""eta_seconds from the trainer's records as the worker ingests them: one record per call, as it follows
metrics.jsonl line by line, still gives an ETA (from the previous record's time)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from server.events import queries as event_queries
from server.metrics import queries as metric_queries


def test_eta_from_records_ingested_one_at_a_time(client: TestClient, session: object) -> None:
    run = client.post(
        "/api/runs", json={"kind": "pretrain", "config": {"dataset": "synthetic", "backbone": "resnet5m"}}
    ).json()
    start = 1_800_000_000.0
    for step in (1, 2, 3):
        record = {"step": step, "time": start + 2.0 * step, "total_steps": 10, "loss": 1.0}
        metric_queries.ingest_metrics(session, run_id=run["id"], records=[record])  # type: ignore[arg-type]
    progress = client.get(f"/api/runs/{run['id']}").json()["progress"]
    assert progress == {"step": 3, "total_steps": 10, "fraction": 0.3, "eta_seconds": 14.0}  # 2 s x 7 steps
    events = event_queries.events_after(session, run_id=run["id"], after_id=0, limit=50)  # type: ignore[arg-type]
    assert [event.data["eta_seconds"] for event in events if event.type == "metric"] == [None, 16.0, 14.0]
