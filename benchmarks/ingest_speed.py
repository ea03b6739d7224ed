"""Metric ingestion speed (points/s) through `server.metric_queries.ingest_metrics`, as the worker calls it.

A fake training run writes `--records` metrics.jsonl-style records (one per step, `--keys` metric
values each) and they are ingested in batches of `--batch` records, each batch one transaction
with its `metric` event, into SQLite (WAL, the embedded default) and PostgreSQL (a temporary
database on 127.0.0.1:5432, skipped if unreachable). A second pass re-ingests the same records to
time the idempotent upsert path (a resumed run replaying its steps). Target: >= 20 000 points/s.

    .venv/bin/python benchmarks/ingest_speed.py [--records 20000] [--keys 8] [--batch 250]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from servicelib import postgres_available, temporary_postgres
from sqlalchemy import Engine
from tqdm.auto import tqdm

from server.metrics import queries as metric_queries
from server.runs import queries as run_queries
from server.storage.engine import create_db_engine, session_scope, upgrade_database

TARGET_POINTS_PER_S = 20_000


def make_records(count: int, keys: int) -> list[dict[str, Any]]:
    names = [
        "loss",
        "lr",
        "weight_decay",
        "momentum",
        "teacher_temp",
        "images_per_sec",
        "entropy",
        "grad_norm",
    ]
    names += [f"extra_{i}" for i in range(max(0, keys - len(names)))]
    return [
        {
            "step": step,
            "epoch": step / 1000,
            "time": 1_700_000_000 + step * 0.05,
            "total_steps": count,
            **{name: 1.0 / (step + i) for i, name in enumerate(names[:keys])},
        }
        for step in range(1, count + 1)
    ]


def ingest_all(engine: Engine, run_id: str, records: list[dict[str, Any]], batch: int, label: str) -> float:
    start = time.perf_counter()
    with session_scope(engine) as session:
        for first in tqdm(range(0, len(records), batch), desc=label, unit="batch", disable=None, leave=False):
            metric_queries.ingest_metrics(session, run_id=run_id, records=records[first : first + batch])
    return time.perf_counter() - start


def measure(
    engine: Engine, records: list[dict[str, Any]], keys: int, batch: int, label: str
) -> dict[str, Any]:
    upgrade_database(engine)
    with session_scope(engine) as session:
        run_id = run_queries.create_run(session, kind="pretrain", config={"backbone": "bench"}).id
    points = len(records) * keys
    first = ingest_all(engine, run_id, records, batch, f"{label} insert")
    replay = ingest_all(engine, run_id, records, batch, f"{label} replay")
    with session_scope(engine) as session:
        stored = metric_queries.count_points(session, run_id=run_id)
    assert stored == points, f"{label}: {stored} points stored, expected {points}"
    return {
        "points": points,
        "insert_seconds": round(first, 3),
        "insert_points_per_s": round(points / first),
        "replay_upsert_points_per_s": round(points / replay),
        "stored_after_replay": stored,
        "meets_target": points / first >= TARGET_POINTS_PER_S and points / replay >= TARGET_POINTS_PER_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000, help="Steps (one record each).")
    parser.add_argument("--keys", type=int, default=8, help="Metric values per record.")
    parser.add_argument("--batch", type=int, default=250, help="Records per ingest_metrics call.")
    args = parser.parse_args()
    records = make_records(args.records, args.keys)
    result: dict[str, Any] = {
        "benchmark": "ingest_speed",
        "records": args.records,
        "keys_per_record": args.keys,
        "records_per_batch": args.batch,
        "target_points_per_s": TARGET_POINTS_PER_S,
        "machine": platform.processor() or platform.machine(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        result["sqlite"] = measure(engine, records, args.keys, args.batch, "sqlite")
        engine.dispose()
    if postgres_available():
        with temporary_postgres() as url:
            engine = create_db_engine(url)
            result["postgresql"] = measure(engine, records, args.keys, args.batch, "postgresql")
            engine.dispose()
    else:
        result["postgresql"] = {"skipped": "nothing listens on 127.0.0.1:5432"}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
