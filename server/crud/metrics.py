"""Metric points: idempotent batched ingestion, keys, raw iteration (CSV) and downsampled series.

Records come in the shape of a metrics.jsonl line (lowdino.train.rundir)::

    {"step": 120, "epoch": 1.2, "time": 33.1, "total_steps": 500, "loss": 4.21, "lr": 0.0004, ...}

Every finite numeric field other than the bookkeeping ones (step, epoch, time, total_steps,
eta_seconds, params) becomes one point (run_id, key, step). A long-form record
``{"key": "loss", "step": 3, "value": 1.0}`` is accepted too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.crud.events import add_event
from server.crud.runs import require_run
from server.models import Metric, Run

BOOKKEEPING_FIELDS = frozenset(
    {"step", "epoch", "time", "wall_time", "total_steps", "eta_seconds", "params", "key", "value"}
)
# A metric event carries at most this many points; a bigger batch (a replay after a rewind) says
# "truncated" and clients re-read the series from GET /metrics instead.
MAX_EVENT_POINTS = 5000
_MAXIMISE = re.compile(r"(acc|top1|top5|top_1|top_5|knn|linear|finetune|f1|map|auc|precision|recall)", re.I)
_MINIMISE = re.compile(r"(loss|error|err$|nll|perplexity)", re.I)


def metric_goal(key: str) -> str | None:
    """'min' for losses/errors, 'max' for accuracies, None for schedules (lr, momentum...) with no 'best'."""
    if _MINIMISE.search(key):
        return "min"
    if _MAXIMISE.search(key):
        return "max"
    return None


def eval_metric_key(record: dict[str, Any]) -> str | None:
    """Named series for an eval record: {"protocol": "linear", "label_fraction": 0.1, "top1": 71.2}
    -> "linear_10pct_top1" ("knn_top1" at all labels), so each protocol gets its own curve and best."""
    protocol, fraction = record.get("protocol"), _number(record.get("label_fraction"))
    if not isinstance(protocol, str) or not protocol.isidentifier() or _number(record.get("top1")) is None:
        return None
    if fraction is None or fraction >= 1.0:
        return f"{protocol}_top1"
    return f"{protocol}_{fraction * 100:g}pct_top1".replace(".", "_")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _points(records: Sequence[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """(key, step) -> row; a key repeated within the batch keeps its last value (upserts must be unique)."""
    points: dict[tuple[str, int], dict[str, Any]] = {}
    for record in records:
        if "step" not in record:
            raise ValueError(f"metrics record without 'step': {str(record)[:200]}")
        step = int(record["step"])
        epoch = _number(record.get("epoch"))
        wall_time = _number(record.get("time", record.get("wall_time")))
        if "key" in record and "value" in record:
            pairs: list[tuple[str, Any]] = [(str(record["key"]), record["value"])]
        else:
            pairs = [(k, v) for k, v in record.items() if k not in BOOKKEEPING_FIELDS]
            protocol_key = eval_metric_key(record)
            if protocol_key is not None:
                pairs.append((protocol_key, record["top1"]))
        for key, raw in pairs:
            value = _number(raw)
            if value is None or len(key) > 100:
                continue
            points[(key, step)] = {
                "key": key,
                "step": step,
                "epoch": epoch,
                "wall_time": wall_time,
                "value": value,
            }
    return points


def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"metrics ingestion supports sqlite and postgresql, not {dialect}")
    statement = dialect_insert(Metric)
    statement = statement.on_conflict_do_update(
        index_elements=[Metric.run_id, Metric.key, Metric.step],
        set_={
            "epoch": statement.excluded.epoch,
            "wall_time": statement.excluded.wall_time,
            "value": statement.excluded.value,
        },
    )
    session.execute(statement, rows)


def _progress(run: Run, records: Sequence[dict[str, Any]], last: dict[str, Any]) -> None:
    """step / total_steps / eta_seconds on the run from the newest record (seconds per step from `time`)."""
    previous = run.latest_metrics or {}
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


def ingest_metrics(session: Session, *, run_id: str, records: list[dict[str, Any]]) -> int:
    """Upsert the records' points, update progress / latest / best metrics, append ONE `metric` event.

    Idempotent: a (run, key, step) that already exists is overwritten (ON CONFLICT DO UPDATE on both
    SQLite and PostgreSQL), so replaying a file or resuming past a checkpoint never duplicates a step.
    Returns the number of points written. Commits.
    """
    if not records:
        return 0
    run = require_run(session, run_id=run_id)
    points = _points(records)
    ordered = sorted(records, key=lambda record: int(record["step"]))
    if points:
        _upsert(session, [{"run_id": run_id, **row} for row in points.values()])

    latest = dict(run.latest_metrics or {})
    for record in ordered:
        for key, value in record.items():
            if key == "key" or key == "value":
                continue
            if _number(value) is not None or key in ("step",):
                latest[key] = value
    for row in points.values():  # long-form records
        if row["key"] not in latest or row["step"] >= int(latest.get("step", row["step"])):
            latest[row["key"]] = row["value"]
    best = dict(run.best_metrics or {})
    for row in sorted(points.values(), key=lambda item: item["step"]):
        goal = metric_goal(row["key"])
        if goal is None:
            continue
        current = best.get(row["key"])
        better = (
            current is None
            or (goal == "max" and row["value"] > current["value"])
            or (goal == "min" and row["value"] < current["value"])
        )
        if better:
            best[row["key"]] = {"value": row["value"], "step": row["step"], "goal": goal}

    _progress(run, ordered, ordered[-1])
    run.latest_metrics = latest
    run.best_metrics = best
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
    add_event(session, run_id=run_id, type="metric", data=event)
    session.commit()
    return len(points)


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
