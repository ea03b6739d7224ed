"""Latency from a committed metrics batch to its SSE event at a streaming client (target < 1 s).

A real API process (`uvicorn --factory server.http.app:create_app`, configured through LOWDINO_*
variables like `lowdino serve`) streams GET /api/runs/{id}/events to an httpx client in a thread of
this process, while the main thread plays the worker: `metric_queries.ingest_metrics` one batch at a time at
random intervals. Latency = time the event's bytes reach the client - time ingest_metrics returned
(its commit), both on this process's monotonic clock. SQLite (embedded default) and PostgreSQL (a
temporary database on 127.0.0.1:5432, skipped if unreachable).

    .venv/bin/python benchmarks/sse_latency.py [--samples 40]

Prints one JSON object (seconds).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from servicelib import postgres_available, start_api, temporary_postgres
from tqdm.auto import tqdm

from server.metrics import queries as metric_queries
from server.runs import queries as run_queries
from server.storage.engine import create_db_engine, session_scope, upgrade_database

TARGET_SECONDS = 1.0


def listen(url: str, arrivals: dict[int, float], ready: threading.Event, stop: threading.Event) -> None:
    """Record the monotonic arrival time of every metric event, keyed by its step."""
    with httpx.Client(timeout=httpx.Timeout(30.0)) as client, client.stream("GET", url) as response:
        ready.set()
        event, data = "", ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = line.split(":", 1)[1].strip()
            elif line == "" and event == "metric":
                arrivals[json.loads(data)["step"]] = time.monotonic()
                event = ""
            if stop.is_set():
                return


def measure(database_url: str, home: Path, samples: int) -> dict[str, Any]:
    engine = create_db_engine(database_url)
    upgrade_database(engine)
    with session_scope(engine) as session:
        run_id = run_queries.create_run(session, kind="pretrain", config={}).id
    process, base = start_api(home, database_url)
    arrivals: dict[int, float] = {}
    committed: dict[int, float] = {}
    ready, stop = threading.Event(), threading.Event()
    listener = threading.Thread(
        target=listen, args=(f"{base}/api/runs/{run_id}/events", arrivals, ready, stop), daemon=True
    )
    listener.start()
    ready.wait(30)
    rng = random.Random(0)
    try:
        with session_scope(engine) as session:
            for step in tqdm(range(1, samples + 1), desc="sse", disable=None, leave=False):
                time.sleep(rng.uniform(0.05, 0.4))  # land at every phase of the server's poll cycle
                records = [{"step": step, "loss": 1.0 / step, "lr": 0.001, "total_steps": samples}]
                metric_queries.ingest_metrics(session, run_id=run_id, records=records)
                committed[step] = time.monotonic()
        deadline = time.monotonic() + 10
        while len(arrivals) < samples and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        process.terminate()
        process.wait(timeout=30)
        engine.dispose()
    latencies = sorted(arrivals[step] - committed[step] for step in committed if step in arrivals)
    return {
        "samples": samples,
        "received": len(latencies),
        "p50_s": round(statistics.median(latencies), 4),
        "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 4),
        "max_s": round(latencies[-1], 4),
        "meets_target": len(latencies) == samples and latencies[-1] < TARGET_SECONDS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "sse_latency", "target_s": TARGET_SECONDS, "poll_interval_s": 0.2}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        result["sqlite"] = measure(f"sqlite:///{home / 'lowdino.db'}", home, args.samples)
        if postgres_available():
            with temporary_postgres() as url:
                result["postgresql"] = measure(url, home, args.samples)
        else:
            result["postgresql"] = {"skipped": "nothing listens on 127.0.0.1:5432"}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
