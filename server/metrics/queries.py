"""Metric points: idempotent batched ingestion, keys, raw iteration (CSV) and downsampled series.

Records come in the shape of a metrics.jsonl line (lowdino.contract.rundir)::

    {"step": 120, "epoch": 1.2, "time": 33.1, "total_steps": 500, "loss": 4.21, "lr": 0.0004, ...}

Every finite numeric field other than the bookkeeping ones (step, epoch, time, total_steps,
eta_seconds, params) becomes one point (run_id, key, step). A long-form record
``{"key": "loss", "step": 3, "value": 1.0}`` is accepted too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from lowdino.contract import metrics as contract
from lowdino.contract.metrics import Goal, metric_goal
from server.events.queries import add_event
from server.runs.queries import require_run
from server.storage.models import METRIC_BLOCK_STEPS, Metric, MetricBlock, Run
from server.vocabulary import EventType

BOOKKEEPING_FIELDS = frozenset(
    {"step", "epoch", "time", "wall_time", "total_steps", "eta_seconds", "params", "key", "value"}
    | {contract.EVAL_SERIES_FIELD}
)
# A metric event carries at most this many points; a bigger batch (a replay after a rewind) says
# "truncated" and clients re-read the series from GET /metrics instead.
MAX_EVENT_POINTS = 5000
COLLAPSE_KEY = "collapse_warning"


def eval_metric_key(record: dict[str, Any]) -> str | None:
    """The series of an eval record's top-1, e.g. "linear_10pct_top1": the name the library wrote into
    the record (`lowdino.contract.metrics.EVAL_SERIES_FIELD`), so each protocol and label fraction gets
    its own curve and best. None for records that are not eval results."""
    if _number(record.get("top1")) is None:
        return None
    series = record.get(contract.EVAL_SERIES_FIELD)
    if isinstance(series, str) and series.isidentifier():
        return series
    # Eval logs written before the records named their series carry only protocol and label fraction
    # (runs already on disk, replayed after an upgrade): derive the name as the library does.
    protocol, fraction = record.get("protocol"), _number(record.get("label_fraction"))
    if not isinstance(protocol, str) or not protocol.isidentifier():
        return None
    return contract.eval_metric_key(protocol, fraction)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class _Batch:
    """One ingest call's records as metric rows, and which way is better for the keys that keep a best."""

    points: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # (key, step) -> row
    goals: dict[str, Goal] = field(default_factory=dict)


def _parse(records: Sequence[dict[str, Any]]) -> _Batch:
    """Rows per (key, step); a key repeated within the batch keeps its last value (upserts must be unique)."""
    batch = _Batch()
    points = batch.points
    for record in records:
        if "step" not in record:
            raise ValueError(f"metrics record without 'step': {str(record)[:200]}")
        step = int(record["step"])
        if step < 0:
            raise ValueError(f"metrics record with negative step {step}; steps count from 0 or 1")
        epoch = _number(record.get("epoch"))
        wall_time = _number(record.get("time", record.get("wall_time")))
        if "key" in record and "value" in record:
            pairs: list[tuple[str, Any]] = [(str(record["key"]), record["value"])]
        else:
            pairs = [(k, v) for k, v in record.items() if k not in BOOKKEEPING_FIELDS]
            protocol_key = eval_metric_key(record)
            if protocol_key is not None:
                pairs.append((protocol_key, record["top1"]))
                batch.goals[protocol_key] = "max"
        for key, raw in pairs:
            # The trainer writes the collapse warning as text; a 1.0 point lets charts mark its step.
            value = 1.0 if key == COLLAPSE_KEY and isinstance(raw, str) and raw else _number(raw)
            if value is None or len(key) > 100:
                continue
            points[(key, step)] = {
                "key": key,
                "step": step,
                "epoch": epoch,
                "wall_time": wall_time,
                "value": value,
            }
            goal = metric_goal(key)
            if goal is not None:
                batch.goals.setdefault(key, goal)
    return batch


# PostgreSQL: one statement whose rows arrive as one JSON document. Row-per-parameter-set
# executemany (what an ORM upsert becomes) is ~10x slower, and adapting Python lists to arrays
# costs more than json.dumps plus the server's JSON parser.
_POSTGRES_UPSERT = text(
    "INSERT INTO metrics (run_id, key, step, epoch, wall_time, value) "
    "SELECT :run_id, t.key, t.step, t.epoch, t.wall_time, t.value "
    "FROM json_to_recordset(CAST(:rows AS json)) "
    "AS t(key text, step integer, epoch float8, wall_time float8, value float8) "
    "ON CONFLICT (run_id, key, step) DO UPDATE SET "
    "epoch = EXCLUDED.epoch, wall_time = EXCLUDED.wall_time, value = EXCLUDED.value"
)


def _upsert(session: Session, run_id: str, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # Metrics are replayable from the run's metrics.jsonl, so this transaction need not wait for
        # its WAL flush: a server crash can lose the last moments of points, never corrupt anything.
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        session.execute(_POSTGRES_UPSERT, {"run_id": run_id, "rows": json.dumps(rows, separators=(",", ":"))})
        return
    if dialect != "sqlite":  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"metrics ingestion supports sqlite and postgresql, not {dialect}")
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    statement = sqlite_insert(Metric.__table__)  # type: ignore[arg-type]  # a Table at runtime
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "key", "step"],
        set_={
            "epoch": statement.excluded.epoch,
            "wall_time": statement.excluded.wall_time,
            "value": statement.excluded.value,
        },
    )
    # Core executemany on the connection: one prepared statement, no ORM bookkeeping per row.
    session.connection().execute(statement, [{"run_id": run_id, **row} for row in rows])


_POSTGRES_BLOCKS = text(
    "INSERT INTO metric_blocks (run_id, key, block, count, min_step, min_value, max_step, max_value) "
    f"SELECT run_id, key, step / {METRIC_BLOCK_STEPS}, count(*), "
    "(array_agg(step ORDER BY value ASC, step))[1], min(value), "
    "(array_agg(step ORDER BY value DESC, step))[1], max(value) "
    "FROM metrics WHERE run_id = :run_id AND key = ANY(:keys) AND step >= :low AND step < :high "
    f"GROUP BY run_id, key, step / {METRIC_BLOCK_STEPS} "
    "ON CONFLICT (run_id, key, block) DO UPDATE SET count = EXCLUDED.count, "
    "min_step = EXCLUDED.min_step, min_value = EXCLUDED.min_value, "
    "max_step = EXCLUDED.max_step, max_value = EXCLUDED.max_value"
)


def _sqlite_block_upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    statement = sqlite_insert(MetricBlock.__table__)  # type: ignore[arg-type]  # a Table at runtime
    columns = ("count", "min_step", "min_value", "max_step", "max_value")
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "key", "block"], set_={name: statement.excluded[name] for name in columns}
    )
    session.connection().execute(statement, rows)


def _refresh_blocks(session: Session, run_id: str, points: dict[tuple[str, int], dict[str, Any]]) -> None:
    """Recompute the metric_blocks rows of every block the batch touched, from the stored points.

    From the raw rows rather than incrementally, so a replayed step whose value changed (a resumed
    run) can never leave a stale minimum or maximum behind.
    """
    size = METRIC_BLOCK_STEPS
    blocks = {(key, step // size) for key, step in points}
    low = min(block for _key, block in blocks) * size
    high = (max(block for _key, block in blocks) + 1) * size
    if session.get_bind().dialect.name == "postgresql":
        # Summarised by the server: no round trip of the raw rows. Blocks of these keys inside the
        # range that the batch did not touch are recomputed too, to the same values.
        session.execute(
            _POSTGRES_BLOCKS,
            {"run_id": run_id, "keys": sorted({key for key, _block in blocks}), "low": low, "high": high},
        )
        return
    rows = session.execute(
        select(Metric.key, Metric.step, Metric.value)
        .where(Metric.run_id == run_id, Metric.key.in_({key for key, _block in blocks}))
        .where(Metric.step >= low, Metric.step < high)
    ).all()
    summaries: dict[tuple[str, int], dict[str, Any]] = {}
    for key, step, value in rows:
        where = (key, step // size)
        if where not in blocks:
            continue
        summary = summaries.get(where)
        if summary is None:
            summaries[where] = {
                "run_id": run_id, "key": key, "block": where[1], "count": 1,
                "min_step": step, "min_value": value, "max_step": step, "max_value": value,
            }  # fmt: skip
            continue
        summary["count"] += 1
        if value < summary["min_value"] or (value == summary["min_value"] and step < summary["min_step"]):
            summary["min_step"], summary["min_value"] = step, value
        if value > summary["max_value"] or (value == summary["max_value"] and step < summary["max_step"]):
            summary["max_step"], summary["max_value"] = step, value
    if summaries:
        _sqlite_block_upsert(session, list(summaries.values()))


def _progress(
    run: Run, records: Sequence[dict[str, Any]], last: dict[str, Any], *, previous: dict[str, Any]
) -> None:
    """step / total_steps / eta_seconds on the run from the newest record (seconds per step from `time`,
    against `previous`, the newest record before this batch, else this batch's first)."""
    step = int(last["step"])
    total = last.get("total_steps")
    if isinstance(total, int | float) and not isinstance(total, bool) and total > 0:
        run.total_steps = int(total)
    eta = _number(last.get("eta_seconds"))
    if eta is None and run.total_steps:
        now_time = _number(last.get("time"))
        # Rate from the previous newest record if it is earlier; else from this batch's first record.
        for anchor in (previous, records[0]):
            then_time, then_step = _number(anchor.get("time")), anchor.get("step")
            if now_time is None or then_time is None or not isinstance(then_step, int | float):
                continue
            if step > then_step and now_time > then_time:
                eta = (now_time - then_time) / (step - then_step) * max(0, run.total_steps - step)
                break
    run.eta_seconds = eta
    run.step = step
    params = last.get("params")
    if isinstance(params, int) and not isinstance(params, bool):
        run.params = params


def _latest(
    run: Run, ordered: Sequence[dict[str, Any]], points: dict[tuple[str, int], dict[str, Any]]
) -> dict[str, Any]:
    """The newest value of every numeric field (and the step), for run lists that never read the series."""
    latest = dict(run.latest_metrics or {})
    for record in ordered:
        for key, value in record.items():
            if key in ("key", "value"):
                continue
            if _number(value) is not None or key == "step":
                latest[key] = value
    for row in points.values():  # long-form records
        if row["key"] not in latest or row["step"] >= int(latest.get("step", row["step"])):
            latest[row["key"]] = row["value"]
    return latest


def _best(run: Run, batch: _Batch) -> dict[str, Any]:
    """key -> {value, step, goal} for the keys the library gives a goal (lowdino.contract.metrics)."""
    best = dict(run.best_metrics or {})
    for row in sorted(batch.points.values(), key=lambda item: item["step"]):
        goal = batch.goals.get(row["key"])
        # Step 0 is the untrained network's look (the run's random-init baseline), not a trained state.
        if goal is None or row["step"] == 0:
            continue
        current = best.get(row["key"])
        better = (
            current is None
            or (goal == "max" and row["value"] > current["value"])
            or (goal == "min" and row["value"] < current["value"])
        )
        if better:
            best[row["key"]] = {"value": row["value"], "step": row["step"], "goal": goal}
    return best


def _metric_event(run: Run, points: dict[tuple[str, int], dict[str, Any]]) -> dict[str, Any]:
    """The SSE payload: the new points (at most MAX_EVENT_POINTS; else "truncated") and the progress."""
    shown = list(points.values())
    event: dict[str, Any] = {
        "points": [
            {
                "key": r["key"],
                "step": r["step"],
                "epoch": r["epoch"],
                "time": r["wall_time"],
                "value": r["value"],
            }
            for r in shown[:MAX_EVENT_POINTS]
        ],
        "step": run.step,
        "total_steps": run.total_steps,
        "fraction": run.fraction,
        "eta_seconds": run.eta_seconds,
    }
    if len(shown) > MAX_EVENT_POINTS:
        event["truncated"] = True
    return event


def ingest_metrics(session: Session, *, run_id: str, records: list[dict[str, Any]]) -> int:
    """Upsert the records' points, update progress / latest / best metrics, append ONE `metric` event.

    Idempotent: a (run, key, step) that already exists is overwritten (ON CONFLICT DO UPDATE on both
    SQLite and PostgreSQL), so replaying a file or resuming past a checkpoint never duplicates a step.
    Returns the number of points written. Commits.
    """
    if not records:
        return 0
    run = require_run(session, run_id=run_id)
    batch = _parse(records)
    if batch.points:
        _upsert(session, run_id, list(batch.points.values()))
        _refresh_blocks(session, run_id, batch.points)
    ordered = sorted(records, key=lambda record: int(record["step"]))
    # The rate behind the ETA is measured from the newest record before this batch: read it first.
    previous = dict(run.latest_metrics or {})
    run.latest_metrics = _latest(run, ordered, batch.points)
    run.best_metrics = _best(run, batch)
    _progress(run, ordered, ordered[-1], previous=previous)
    add_event(session, run_id=run_id, type=EventType.METRIC, data=_metric_event(run, batch.points))
    session.commit()
    return len(batch.points)


def metric_keys(session: Session, *, run_id: str) -> list[str]:
    """Keys with at least one point (a skip-scan over the (run_id, key, step) primary key)."""
    keys: list[str] = []
    # DISTINCT over a million rows would read them all; hopping from key to key reads one row each.
    while True:
        query = select(func.min(Metric.key)).where(Metric.run_id == run_id)
        if keys:
            query = query.where(Metric.key > keys[-1])
        key = session.scalar(query)
        if key is None:
            return keys
        keys.append(key)


def count_points(session: Session, *, run_id: str, key: str | None = None) -> int:
    query = select(func.count()).select_from(Metric).where(Metric.run_id == run_id)
    if key is not None:
        query = query.where(Metric.key == key)
    return int(session.scalar(query) or 0)


def iter_points(
    session: Session, *, run_id: str, keys: Sequence[str] | None = None, chunk: int = 5000
) -> Iterator[tuple[str, int, float | None, float | None, float]]:
    """Every raw point (key, step, epoch, wall_time, value), ordered by key then step, streamed in chunks."""
    query = select(Metric.key, Metric.step, Metric.epoch, Metric.wall_time, Metric.value).where(
        Metric.run_id == run_id
    )
    if keys:
        query = query.where(Metric.key.in_(list(keys)))
    last: tuple[str, int] | None = None
    # Keyset pagination instead of one long cursor: no read transaction is held open across a slow
    # download, so the SQLite WAL can checkpoint and the worker keeps writing.
    while True:
        page = query
        if last is not None:
            page = page.where((Metric.key > last[0]) | ((Metric.key == last[0]) & (Metric.step > last[1])))
        rows = session.execute(page.order_by(Metric.key, Metric.step).limit(chunk)).all()
        session.commit()
        if not rows:
            return
        for row in rows:
            yield (row[0], row[1], row[2], row[3], row[4])
        last = (rows[-1][0], rows[-1][1])
