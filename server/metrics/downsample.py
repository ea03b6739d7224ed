"""Min/max downsampling of one metric series, computed in the database.

The series is cut into ``n = (max_points - 2) // 2`` equal step buckets; from each bucket the points
with the smallest and the largest value are kept, plus the series' first and last points. So the
result has at most `max_points` points and always contains the first, last, global minimum and
global maximum (the global extremes are the extremes of their buckets) — spikes and divergences
survive, unlike with striding or averaging.

Long series (at least one block of METRIC_BLOCK_STEPS steps per bucket) are answered from the
`metric_blocks` summaries that ingestion keeps: each bucket is a run of whole blocks, its extremes
are the extremes of its blocks' extremes, and only the chosen points are then read (by primary
key). That reads ~N/256 summary rows instead of N points: ~20 ms for 1 000 000 points on either
database. When a step range cuts a block, that edge block is summarised from its raw points.

Shorter series (or an epoch / time range, which does not map onto blocks) are scanned:
SQLite: one pair of small range queries per bucket on the (run_id, key, step) clustered primary key,
with SQLite's "bare column" rule (``SELECT MIN(value), step`` returns the step of the minimum row).
PostgreSQL: one query, ``DISTINCT ON (bucket)`` ordered by value ascending and descending.

Buckets are over steps even when the x axis is epoch or wall time (both grow with the step), and
`start` / `end` bound the chosen x axis.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from server.storage.models import METRIC_BLOCK_STEPS, Metric, MetricBlock

XAxis = Literal["step", "epoch", "time"]
X_COLUMNS: dict[str, str] = {"step": "step", "epoch": "epoch", "time": "wall_time"}

Point = tuple[int, float | None, float | None, float]  # step, epoch, wall_time, value


@dataclass
class Series:
    key: str
    steps: list[int] = field(default_factory=list)
    epochs: list[float | None] = field(default_factory=list)
    times: list[float | None] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    downsampled: bool = False

    def x(self, axis: str) -> list[Any]:
        columns: dict[str, list[Any]] = {"step": self.steps, "epoch": self.epochs, "time": self.times}
        return columns[axis]

    @classmethod
    def from_points(cls, key: str, points: list[Point], *, downsampled: bool) -> Series:
        series = cls(key=key, downsampled=downsampled)
        for step, epoch, wall_time, value in sorted(set(points), key=lambda point: point[0]):
            series.steps.append(int(step))
            series.epochs.append(epoch)
            series.times.append(wall_time)
            series.values.append(float(value))
        return series


def _x_filter(x: str, start: float | None, end: float | None) -> tuple[str, dict[str, Any]]:
    column = X_COLUMNS[x]
    clauses, params = [], {}
    if x != "step":
        clauses.append(f"{column} IS NOT NULL")
    if start is not None:
        clauses.append(f"{column} >= :start")
        params["start"] = start
    if end is not None:
        clauses.append(f"{column} <= :end")
        params["end"] = end
    return "".join(f" AND {clause}" for clause in clauses), params


def downsample_series(
    session: Session,
    *,
    run_id: str,
    key: str,
    max_points: int = 1500,
    x: str = "step",
    start: float | None = None,
    end: float | None = None,
) -> Series:
    """At most `max_points` points of series (run_id, key) within [start, end] on axis `x`, min/max kept."""
    if x not in X_COLUMNS:
        raise ValueError(f"x must be one of {', '.join(X_COLUMNS)}, not {x!r}")
    max_points = max(4, int(max_points))
    where, params = _x_filter(x, start, end)
    params.update(run_id=run_id, key=key)
    base = f"FROM metrics WHERE run_id = :run_id AND key = :key{where}"
    # Two statements: SQLite answers a lone MIN or MAX from the index, but scans for both together.
    lo = session.execute(text(f"SELECT MIN(step) {base}"), params).scalar()
    if lo is None:
        return Series(key=key)
    hi = session.execute(text(f"SELECT MAX(step) {base}"), params).scalar()
    lo, hi = int(lo), int(hi if hi is not None else lo)
    columns = "step, epoch, wall_time, value"
    if hi - lo + 1 <= max_points:
        # Steps are unique per key, so this range cannot hold more than max_points points.
        rows = session.execute(text(f"SELECT {columns} {base} ORDER BY step"), params).all()
        return Series.from_points(key, [tuple(row) for row in rows], downsampled=False)  # type: ignore[misc]

    buckets = (max_points - 2) // 2
    ends = [
        session.execute(text(f"SELECT {columns} {base} AND step = :s"), {**params, "s": s}).one()
        for s in (lo, hi)
    ]
    extremes: list[Point] | None = None
    if x == "step" or (start is None and end is None):
        extremes = _block_extremes(
            session, run_id, key, lo, hi, buckets, cut_low=start is not None, cut_high=end is not None
        )
    if extremes is None and session.get_bind().dialect.name == "sqlite":
        extremes = _sqlite_bucket_extremes(session, where, params, lo, hi, buckets)
    elif extremes is None:
        extremes = _postgres_bucket_extremes(session, base, params, lo, hi, buckets)
    points = [tuple(row) for row in ends] + extremes
    return Series.from_points(key, points, downsampled=True)  # type: ignore[arg-type]


def _raw_block_summary(
    session: Session, run_id: str, key: str, first: int, last: int
) -> tuple[tuple[float, int], tuple[float, int]] | None:
    """((min value, step), (max value, step)) of the points with first <= step <= last."""
    rows = session.execute(
        select(Metric.step, Metric.value).where(
            Metric.run_id == run_id, Metric.key == key, Metric.step >= first, Metric.step <= last
        )
    ).all()
    if not rows:
        return None
    return min((value, step) for step, value in rows), max((value, -step) for step, value in rows)


def _block_extremes(
    session: Session, run_id: str, key: str, lo: int, hi: int, buckets: int, *, cut_low: bool, cut_high: bool
) -> list[Point] | None:
    """Bucket extremes from metric_blocks; None when buckets would be narrower than a block."""
    size = METRIC_BLOCK_STEPS
    first_block, last_block = lo // size, hi // size
    span = last_block - first_block + 1
    if span < buckets:
        return None
    summaries = {
        block: ((min_value, min_step), (max_value, -max_step))
        for block, min_step, min_value, max_step, max_value in session.execute(
            select(
                MetricBlock.block,
                MetricBlock.min_step,
                MetricBlock.min_value,
                MetricBlock.max_step,
                MetricBlock.max_value,
            )
            .where(MetricBlock.run_id == run_id, MetricBlock.key == key)
            .where(MetricBlock.block >= first_block, MetricBlock.block <= last_block)
        )
    }
    # A step range that cuts the first / last block: those blocks hold points outside it.
    for cut, block in ((cut_low, first_block), (cut_high, last_block)):
        if cut:
            exact = _raw_block_summary(
                session, run_id, key, max(lo, block * size), min(hi, block * size + size - 1)
            )
            if exact is None:
                summaries.pop(block, None)
            else:
                summaries[block] = exact
    # Per bucket: smallest (value, step) and largest (value, -step), i.e. ties go to the earliest step.
    lows: dict[int, tuple[float, int]] = {}
    highs: dict[int, tuple[float, int]] = {}
    for block, (low, high) in summaries.items():
        bucket = (block - first_block) * buckets // span
        if bucket not in lows or low < lows[bucket]:
            lows[bucket] = low
        if bucket not in highs or high > highs[bucket]:
            highs[bucket] = high
    steps = sorted({step for _value, step in lows.values()} | {-neg for _value, neg in highs.values()})
    return _points_at(session, run_id, key, steps)


_POSTGRES_POINTS_AT = text(
    "SELECT m.step, m.epoch, m.wall_time, m.value FROM unnest(CAST(:steps AS integer[])) AS s(step) "
    "CROSS JOIN LATERAL (SELECT * FROM metrics WHERE run_id = :run_id AND key = :key AND step = s.step LIMIT 1) AS m"
)


def _points_at(session: Session, run_id: str, key: str, steps: list[int]) -> list[Point]:
    """The stored points at `steps`, each by a primary-key lookup."""
    if session.get_bind().dialect.name == "postgresql":
        # A lateral subquery (LIMIT 1 keeps it from being flattened into a join) probes the index once
        # per step whatever the table statistics say; with
        # `step IN (...)` a freshly filled table (not analysed yet) gets a scan of the whole series.
        rows = session.execute(_POSTGRES_POINTS_AT, {"steps": steps, "run_id": run_id, "key": key}).all()
        return [(int(row[0]), row[1], row[2], float(row[3])) for row in rows]
    points: list[Point] = []
    for first in range(0, len(steps), 500):  # stay far below SQLite's bound-parameter limit
        rows = session.execute(
            select(Metric.step, Metric.epoch, Metric.wall_time, Metric.value).where(
                Metric.run_id == run_id, Metric.key == key, Metric.step.in_(steps[first : first + 500])
            )
        ).all()
        points.extend((int(row[0]), row[1], row[2], float(row[3])) for row in rows)
    return points


def _bucket_edges(lo: int, hi: int, buckets: int) -> list[int]:
    span = hi - lo + 1
    return [lo + (span * i) // buckets for i in range(buckets)] + [hi + 1]


def _sqlite_bucket_extremes(
    session: Session, where: str, params: dict[str, Any], lo: int, hi: int, buckets: int
) -> list[Point]:
    # Straight to the DB-API cursor: 2 * `buckets` tiny statements, where SQLAlchemy's per-execute
    # overhead would cost as much as the scans themselves.
    cursor = session.connection().connection.cursor()
    filter_sql = where.replace(":start", "?").replace(":end", "?")
    extra = [params[name] for name in ("start", "end") if f":{name}" in where]
    queries = [
        f"SELECT step, epoch, wall_time, {agg}(value) FROM metrics "
        f"WHERE run_id = ? AND key = ? AND step >= ? AND step < ?{filter_sql}"
        for agg in ("MIN", "MAX")
    ]
    edges = _bucket_edges(lo, hi, buckets)
    points: list[Point] = []
    try:
        for left, right in itertools.pairwise(edges):
            args = [params["run_id"], params["key"], left, right, *extra]
            for query in queries:
                row = cursor.execute(query, args).fetchone()
                if row is not None and row[3] is not None:
                    points.append((int(row[0]), row[1], row[2], float(row[3])))
    finally:
        cursor.close()
    return points


def _postgres_bucket_extremes(
    session: Session, base: str, params: dict[str, Any], lo: int, hi: int, buckets: int
) -> list[Point]:
    bucketed = (
        "SELECT step, epoch, wall_time, value, "
        "LEAST(FLOOR((step - :lo)::float8 * :buckets / :span)::bigint, :buckets - 1) AS bucket "
        f"{base}"
    )
    sql = (
        f"WITH b AS ({bucketed}) "
        "(SELECT DISTINCT ON (bucket) step, epoch, wall_time, value FROM b ORDER BY bucket, value ASC) "
        "UNION ALL "
        "(SELECT DISTINCT ON (bucket) step, epoch, wall_time, value FROM b ORDER BY bucket, value DESC)"
    )
    rows = session.execute(text(sql), {**params, "lo": lo, "buckets": buckets, "span": hi - lo + 1}).all()
    return [(int(row[0]), row[1], row[2], float(row[3])) for row in rows]
