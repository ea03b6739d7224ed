"""GET /metrics (downsampling keeps first/last/min/max), GET /metrics.csv (every raw point), GET /logs."""

from __future__ import annotations

import csv
import io
import math
import random

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from server.events import queries as event_queries
from server.metrics import queries as metric_queries
from server.metrics.downsample import downsample_series
from server.runs import queries as run_queries
from server.settings import Settings
from server.storage.engine import session_scope


def make_run(engine: Engine) -> str:
    with session_scope(engine) as session:
        return run_queries.create_run(session, kind="pretrain", config={"backbone": "resnet5m"}).id


def noisy_series(n: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    values, level = [], 0.0
    for _ in range(n):
        level += rng.gauss(0, 1)
        values.append(level)
    # Spikes a strided sampler would likely miss.
    values[n // 3] = 1e4
    values[2 * n // 3 + 1] = -1e4
    return values


def ingest(engine: Engine, run_id: str, values: list[float], *, start: int = 1, batch: int = 5000) -> None:
    with session_scope(engine) as session:
        rows = [
            {"step": start + i, "epoch": (start + i) / 100, "time": 1000.0 + (start + i) * 0.25, "loss": v}
            for i, v in enumerate(values)
        ]
        for first in range(0, len(rows), batch):
            metric_queries.ingest_metrics(session, run_id=run_id, records=rows[first : first + batch])


@pytest.mark.parametrize("max_points", [10, 101, 1500])
def test_downsampling_keeps_first_last_min_max(engine: Engine, max_points: int) -> None:
    run_id = make_run(engine)
    values = noisy_series(20_000, seed=max_points)
    ingest(engine, run_id, values)
    with session_scope(engine) as session:
        series = downsample_series(session, run_id=run_id, key="loss", max_points=max_points)
    assert series.downsampled
    assert len(series.steps) <= max_points
    assert series.steps == sorted(set(series.steps))
    assert series.steps[0] == 1
    assert series.values[0] == values[0]
    assert series.steps[-1] == len(values)
    assert series.values[-1] == values[-1]
    assert max(series.values) == max(values)
    assert min(series.values) == min(values)
    # Every kept point is a real stored point.
    for step, value in zip(series.steps, series.values, strict=True):
        assert values[step - 1] == value
    # Buckets cover the whole range: no gap wider than two buckets.
    buckets = (max_points - 2) // 2
    assert max(b - a for a, b in zip(series.steps, series.steps[1:], strict=False)) <= 2 * math.ceil(
        len(values) / buckets
    )


def test_small_series_come_back_raw(engine: Engine) -> None:
    run_id = make_run(engine)
    ingest(engine, run_id, [3.0, 1.0, 2.0])
    with session_scope(engine) as session:
        series = downsample_series(session, run_id=run_id, key="loss", max_points=1500)
        empty = downsample_series(session, run_id=run_id, key="nothing", max_points=1500)
    assert not series.downsampled
    assert series.steps == [1, 2, 3]
    assert series.values == [3.0, 1.0, 2.0]
    assert empty.steps == []


def test_sparse_series_keeps_every_point(engine: Engine) -> None:
    run_id = make_run(engine)
    with session_scope(engine) as session:
        metric_queries.ingest_metrics(
            session, run_id=run_id, records=[{"step": s * 1000, "knn_top1": s / 10} for s in range(1, 301)]
        )
        series = downsample_series(session, run_id=run_id, key="knn_top1", max_points=1500)
    assert series.steps == [s * 1000 for s in range(1, 301)]


def test_metrics_endpoint_axes_and_ranges(client: TestClient, engine: Engine) -> None:
    run_id = make_run(engine)
    values = noisy_series(5000)
    ingest(engine, run_id, values)
    with session_scope(engine) as session:
        metric_queries.ingest_metrics(
            session, run_id=run_id, records=[{"step": s, "knn_top1": float(s)} for s in (100, 200)]
        )
    body = client.get(f"/api/runs/{run_id}/metrics", params={"max_points": 200}).json()
    assert {series["key"] for series in body["series"]} == {"loss", "knn_top1"}
    loss = next(series for series in body["series"] if series["key"] == "loss")
    assert loss["downsampled"]
    assert len(loss["x"]) <= 200
    assert loss["x"] == loss["step"]
    assert max(loss["y"]) == max(values)
    assert min(loss["y"]) == min(values)

    by_time = client.get(
        f"/api/runs/{run_id}/metrics",
        params={"keys": "loss", "x": "time", "start": 1100, "end": 1200, "max_points": 50},
    ).json()
    (series,) = by_time["series"]
    assert all(1100 <= x <= 1200 for x in series["x"])
    assert series["x"][0] == 1100
    assert series["x"][-1] == 1200
    by_epoch = client.get(
        f"/api/runs/{run_id}/metrics", params={"keys": "loss", "x": "epoch", "end": 0.5}
    ).json()
    assert by_epoch["series"][0]["x"] == [s / 100 for s in range(1, 51)]
    assert client.get(f"/api/runs/{run_id}/metrics", params={"x": "wall"}).status_code == 422
    assert client.get(f"/api/runs/{run_id}/metrics", params={"max_points": 1}).status_code == 422


def test_csv_export_streams_every_raw_point(client: TestClient, engine: Engine) -> None:
    run_id = make_run(engine)
    values = noisy_series(12_345)
    ingest(engine, run_id, values)
    with session_scope(engine) as session:
        metric_queries.ingest_metrics(session, run_id=run_id, records=[{"step": 7, "knn_top1": 12.5}])
    response = client.get(f"/api/runs/{run_id}/metrics.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    loss = [row for row in rows if row["key"] == "loss"]
    assert len(loss) == len(values)
    assert [float(row["value"]) for row in loss] == values  # repr() round-trips floats exactly
    assert [int(row["step"]) for row in loss] == list(range(1, len(values) + 1))
    assert [row for row in rows if row["key"] == "knn_top1"] == [
        {"key": "knn_top1", "step": "7", "epoch": "", "time": "", "value": "12.5"}
    ]
    only = client.get(f"/api/runs/{run_id}/metrics.csv", params={"keys": "knn_top1"}).text.splitlines()
    assert only == ["key,step,epoch,time,value", "knn_top1,7,,,12.5"]


def test_logs_from_events_then_file(client: TestClient, engine: Engine, settings: Settings) -> None:
    run_id = make_run(engine)
    with session_scope(engine) as session:
        run_queries.update_run_status(
            session, run_id=run_id, status="running", output_dir=str(settings.run_dir(run_id))
        )
    assert client.get(f"/api/runs/{run_id}/logs").json() == {"run_id": run_id, "lines": [], "source": "none"}
    settings.run_dir(run_id).mkdir(parents=True)
    (settings.run_dir(run_id) / "stdout.log").write_text("".join(f"file {i}\n" for i in range(10)))
    from_file = client.get(f"/api/runs/{run_id}/logs", params={"tail": 2}).json()
    assert from_file["source"] == "file"
    assert from_file["lines"] == ["file 8", "file 9"]
    with session_scope(engine) as session:
        event_queries.append_log(session, run_id=run_id, lines=["a", "b", "c"])
    from_events = client.get(f"/api/runs/{run_id}/logs", params={"tail": 2}).json()
    assert from_events == {"run_id": run_id, "lines": ["b", "c"], "source": "events"}
    assert client.get(f"/api/runs/{run_id}/logs", params={"tail": 0}).status_code == 422


def test_step_range_cutting_blocks_is_exact(engine: Engine) -> None:
    run_id = make_run(engine)
    values = noisy_series(20_000, seed=3)
    ingest(engine, run_id, values)
    start, end = 1000, 15_000
    inside = values[start - 1 : end]
    with session_scope(engine) as session:
        series = downsample_series(session, run_id=run_id, key="loss", max_points=50, start=start, end=end)
    assert series.downsampled
    assert len(series.steps) <= 50
    assert series.steps[0] == start
    assert series.steps[-1] == end
    assert min(series.values) == min(inside)
    assert max(series.values) == max(inside)
    assert all(values[step - 1] == value for step, value in zip(series.steps, series.values, strict=True))


def test_replayed_steps_refresh_the_block_summaries(engine: Engine) -> None:
    run_id = make_run(engine)
    values = [float(i % 97) for i in range(10_000)]
    ingest(engine, run_id, values)
    with session_scope(engine) as session:
        # A resumed run rewrites steps 4000-4010: a new global minimum appears, and the old maximum
        # at step 97 * 10 is overwritten with an ordinary value.
        metric_queries.ingest_metrics(
            session,
            run_id=run_id,
            records=[{"step": s, "loss": -5.0 if s == 4005 else 1.0} for s in range(4000, 4011)],
        )
        metric_queries.ingest_metrics(session, run_id=run_id, records=[{"step": 96, "loss": 500.0}])
        series = downsample_series(session, run_id=run_id, key="loss", max_points=20)
    assert min(series.values) == -5.0
    assert series.steps[series.values.index(-5.0)] == 4005
    assert max(series.values) == 500.0
    assert series.steps[series.values.index(500.0)] == 96
    assert len(series.steps) <= 20
