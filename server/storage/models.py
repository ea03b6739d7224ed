"""SQLAlchemy tables of the job service (the Alembic migrations in server/migrations create them).

runs      one row per job; a RunStatus (server.vocabulary); progress, latest/best metrics and heartbeat are
          kept on the row so that listing runs never touches the metrics table.
metrics   one row per (run, key, step): the primary key makes re-ingesting a step an upsert, and
          on SQLite the table is WITHOUT ROWID, i.e. clustered on (run_id, key, step), so a series
          is one contiguous range scan (the downsampling query reads nothing else).
metric_blocks  per (run, key, block of METRIC_BLOCK_STEPS steps): count and the min / max points,
          refreshed by every ingestion from the raw rows of the blocks it touched. Downsampling a
          long series reads these (~N/256 rows) instead of every point.
sweeps    one row per sweep or study: the base config, the grid or overrides it expanded, and the
          baselines a study could not evaluate (with the reason); its runs point to it by sweep_id.
events    append-only log whose autoincrement id is the Server-Sent-Events id (`metric`, `status`,
          `log`); readers page through it with `id > last_seen`.
workers   one row per worker process, refreshed by its heartbeat.
searches  one row per recipe search: the base config, the SearchConfig, the Optuna study's name (the study
          itself lives in Optuna's own tables, server.campaigns.study_storage) and the driver's lease.
search_trials  one row per trial: its Optuna number and id, its run (tagged, parameters in its config),
          the last step reported to the study, its state, value and pruning step and reason.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from server.vocabulary import RunStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_run_id() -> str:
    """12 hex characters of a uuid4: short enough for paths and URLs, ~48 bits of collision room."""
    return uuid.uuid4().hex[:12]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive text, so re-attach UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, `@>` for tag filters); JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")
# For optional documents: Python None stored as SQL NULL (not the JSON text 'null'), so IS NULL finds it.
NullableJSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_run_id)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Markdown written by people after the fact (PATCH /api/runs/{id}); the dashboard renders it safely.
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default=RunStatus.QUEUED)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Denormalised from config (backbone / student) so that listing can filter and sort on it.
    backbone: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    queue: Mapped[str | None] = mapped_column(String(64), nullable=True)
    output_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    worker_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total_steps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    eta_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    params: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    latest_metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    best_metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    # A clone's original (same kind), the training run a chained evaluation measures (kind eval), or the
    # run an export exports (kind export, clones included).
    parent_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="SET NULL"), nullable=True, index=True
    )
    sweep_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    # Chains: the eval config to run on this run's final checkpoint once it completes, and the eval
    # run queued for it. evaluation_id is set once, atomically, which is what makes the chain exactly-once.
    evaluate: Mapped[dict[str, Any] | None] = mapped_column(NullableJSON, nullable=True)
    evaluation_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Why a search pruned this running run: set with cancel_requested, the worker ends it `pruned` with it.
    prune_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    @property
    def fraction(self) -> float | None:
        if not self.total_steps or self.step is None:
            return None
        return min(1.0, self.step / self.total_steps)


class Metric(Base):
    __tablename__ = "metrics"
    __table_args__ = ({"sqlite_with_rowid": False},)

    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[float | None] = mapped_column(Float, nullable=True)
    wall_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    value: Mapped[float] = mapped_column(Float)


METRIC_BLOCK_STEPS = 256


class MetricBlock(Base):
    """Summary of the points of one series with step // METRIC_BLOCK_STEPS == block."""

    __tablename__ = "metric_blocks"
    __table_args__ = ({"sqlite_with_rowid": False},)

    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    block: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    min_step: Mapped[int] = mapped_column(Integer)
    min_value: Mapped[float] = mapped_column(Float)
    max_step: Mapped[int] = mapped_column(Integer)
    max_value: Mapped[float] = mapped_column(Float)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_run_id_id", "run_id", "id"), {"sqlite_autoincrement": True})

    # BigInteger on PostgreSQL; SQLite only autoincrements an INTEGER PRIMARY KEY.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str] = mapped_column(String(32), ForeignKey("runs.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Worker(Base):
    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str | None] = mapped_column(String(255), nullable=True)
    queues: Mapped[list[str]] = mapped_column(JSONType, default=list)
    gpus: Mapped[list[int]] = mapped_column(JSONType, default=list)
    current_run_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="SET NULL"), nullable=True
    )
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Sweep(Base):
    """Runs submitted together (a grid, a list of overrides, or a study preset), offered as a unit."""

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_run_id)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    study: Mapped[str | None] = mapped_column(String(64), nullable=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    grid: Mapped[dict[str, Any] | None] = mapped_column(NullableJSON, nullable=True)
    overrides: Mapped[list[dict[str, Any]] | None] = mapped_column(NullableJSON, nullable=True)
    evaluate: Mapped[dict[str, Any] | None] = mapped_column(NullableJSON, nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Rows a study wanted but could not run here (a baseline without local weights): label -> reason.
    skipped: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class Search(Base):
    """A recipe search: trials asked from an Optuna study, each an ordinary run through the queue."""

    __tablename__ = "searches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_run_id)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # the base of every trial
    search: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # lowdino.search.SearchConfig
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    state: Mapped[str] = mapped_column(String(16), index=True)  # server.vocabulary.SearchState
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The API process driving it until lease_until (renewed every pass): one driver at a time.
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SearchTrial(Base):
    __tablename__ = "search_trials"

    search_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("searches.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)  # Optuna's trial number
    trial_id: Mapped[int] = mapped_column(Integer)  # Optuna's trial id (global to its storage)
    run_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="SET NULL"), nullable=True, unique=True
    )
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    state: Mapped[str] = mapped_column(String(16))  # server.vocabulary.TrialState
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_step: Mapped[int] = mapped_column(Integer, default=-1)  # last step reported to the study
    pruned_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
