"""Query speed of GET /api/runs/{id}/metrics on a 1 000 000-point series (target < 200 ms on SQLite).

One run gets `--points` loss values (a random walk with spikes), ingested the way the worker does
it (`metric_queries.ingest_metrics`, which also keeps the per-block summaries the query reads; the fill rate
is reported too), then the downsampled series (max_points=1500, min
and max per bucket plus first and last) is requested `--repeat` times: through the whole HTTP stack
(FastAPI TestClient: routing, query, JSON) and through `server.metrics.downsample.downsample_series` alone.
PostgreSQL (a temporary database on 127.0.0.1:5432) is measured too when reachable.

    .venv/bin/python benchmarks/metrics_query_speed.py [--points 1000000] [--max-points 1500] [--repeat 7]

Prints one JSON object (seconds; median and best of the repeats).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from servicelib import postgres_available, temporary_postgres
from sqlalchemy import Engine
from tqdm.auto import tqdm

from server.http.app import create_app
from server.metrics import queries as metric_queries
from server.metrics.downsample import downsample_series
from server.runs import queries as run_queries
from server.settings import Settings
from server.storage.engine import session_scope

TARGET_SECONDS = 0.2
CHUNK = 20_000


def series(points: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    values, level = [], 0.0
    for _ in range(points):
        level += rng.gauss(0, 1)
        values.append(level)
    values[points // 3] = 1e6  # spikes that must survive downsampling
    values[2 * points // 3] = -1e6
    return values


def fill(engine: Engine, run_id: str, values: list[float]) -> float:
    """Ingest every value as one `loss` record per step; returns points/s."""
    start = time.perf_counter()
    with session_scope(engine) as session:
        for first in tqdm(range(0, len(values), CHUNK), desc="fill", unit="chunk", disable=None, leave=False):
            records = [
                {"step": step, "epoch": step / 1000, "time": 1.7e9 + step * 0.05, "loss": values[step - 1]}
                for step in range(first + 1, min(first + CHUNK, len(values)) + 1)
            ]
            metric_queries.ingest_metrics(session, run_id=run_id, records=records)
    return len(values) / (time.perf_counter() - start)


def timed(function: Any, repeat: int) -> tuple[dict[str, float], Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(times), 4), "best_s": round(min(times), 4)}, result


def measure(
    database_url: str, home: Path, values: list[float], max_points: int, repeat: int
) -> dict[str, Any]:
    settings = Settings(home=home, database_url=database_url, data_roots=[home / "data"])
    app = create_app(settings)  # migrates the database
    with session_scope(app.state.engine) as session:
        run_id = run_queries.create_run(session, kind="pretrain", config={"backbone": "bench"}).id
    fill_rate = fill(app.state.engine, run_id, values)
    with TestClient(app) as client:
        url = f"/api/runs/{run_id}/metrics"
        params = {"keys": "loss", "max_points": max_points}
        client.get(url, params=params)  # warm the page cache once, as a dashboard's second look would be
        http, response = timed(lambda: client.get(url, params=params), repeat)
    with session_scope(app.state.engine) as session:
        direct, found = timed(
            lambda: downsample_series(session, run_id=run_id, key="loss", max_points=max_points), repeat
        )
    body = response.json()["series"][0]
    app.state.engine.dispose()
    return {
        "http": http,
        "downsample_only": direct,
        "points_returned": len(body["y"]),
        "keeps_first_last_min_max": body["y"][0] == values[0]
        and body["y"][-1] == values[-1]
        and max(body["y"]) == max(values)
        and min(body["y"]) == min(values),
        "meets_target": http["median_s"] < TARGET_SECONDS,
        "sql_rows": len(found.steps),
        "fill_points_per_s": round(fill_rate),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--max-points", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    values = series(args.points)
    result: dict[str, Any] = {
        "benchmark": "metrics_query_speed",
        "points": args.points,
        "max_points": args.max_points,
        "target_s": TARGET_SECONDS,
    }
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        result["sqlite"] = measure(
            f"sqlite:///{home / 'bench.db'}", home, values, args.max_points, args.repeat
        )
        if args.skip_postgres or not postgres_available():
            result["postgresql"] = {"skipped": "not requested or nothing listens on 127.0.0.1:5432"}
        else:
            with temporary_postgres() as url:
                result["postgresql"] = measure(url, home, values, args.max_points, args.repeat)
                result["postgresql"].pop("meets_target")  # the target is set for the embedded default
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
