"""Sweeps: many runs from one submission — a grid of values and/or a list of overrides over a base config.

    runs = overrides x product(grid values)     (no overrides: one empty override; no grid: one cell)

Every expanded config is validated (and its paths checked) before any run is created, and the sweep
and all its runs are inserted in one transaction: a sweep exists whole or not at all. Each run is
tagged `sweep:<id>` and carries `sweep_id`; the chained evaluations of its runs join the sweep too.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session

from server.campaigns import queries as sweep_queries
from server.errors import BrokerUnavailableError, InvalidRequestError, RunStateError, ServerStateError
from server.runs import queries as run_queries
from server.runs.lifecycle import (
    cancel_run,
    check_evaluate_block,
    check_gpu_capacity,
    enqueue_run,
    prepare_config,
)
from server.runs.paths import resolve_config_paths
from server.settings import Settings
from server.storage.models import Run, Sweep, new_run_id
from server.vocabulary import ACTIVE_STATUSES, RunStatus
from server.workers.queues import queue_for


@dataclass
class SweepEntry:
    """One run a sweep will create: its kind, the options that differ from the base, and its name."""

    kind: str
    config: dict[str, Any]
    changes: dict[str, Any]
    evaluate: dict[str, Any] | None = None
    name: str | None = None
    extra_tags: list[str] = field(default_factory=list)


def describe_changes(changes: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in changes.items()) or "base config"


def expand(
    base: dict[str, Any],
    *,
    grid: dict[str, list[Any]] | None,
    overrides: list[dict[str, Any]] | None,
    max_runs: int,
) -> list[dict[str, Any]]:
    """The `changes` of every run, in order: overrides outermost, grid keys in the order given."""
    grid = grid or {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            message = "must be a non-empty list of values, e.g. [0, 1, 2]"
            raise InvalidRequestError(f"grid.{key}: {message}", field_errors={f"grid.{key}": message})
    override_list = overrides if overrides else [{}]
    size = len(override_list) * math.prod(len(values) for values in grid.values())
    if size > max_runs:
        shape = " x ".join([str(len(override_list))] * bool(overrides) + [str(len(v)) for v in grid.values()])
        raise ServerStateError(
            f"the sweep expands to {size} runs ({shape}), above the limit of {max_runs}; "
            "split it into smaller sweeps or raise LOWDINO_MAX_SWEEP_RUNS"
        )
    cells = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    return [{**override, **cell} for override in override_list for cell in cells]


def _prepared(
    session: Session, settings: Settings, entry: SweepEntry, *, index: int, total: int, run_id: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The entry's validated config and evaluate block, or a 422 naming the combination and field."""
    try:
        config = prepare_config(
            session, settings, kind=entry.kind, config=entry.config, run_id=run_id, merged=True
        )
        check_gpu_capacity(session, settings, config)
        evaluate = check_evaluate_block(entry.kind, entry.evaluate, config)
        if evaluate is not None:
            evaluate = resolve_config_paths(evaluate, settings)
    except InvalidRequestError as exc:
        where = f"run {index + 1} of {total} ({describe_changes(entry.changes)})"
        raise type(exc)(f"{where}: {exc}", field_errors=exc.field_errors) from exc
    return config, evaluate


def create_sweep(
    session: Session,
    celery_app: Celery,
    settings: Settings,
    *,
    kind: str,
    base: dict[str, Any],
    entries: list[SweepEntry],
    name: str | None = None,
    tags: list[str] | None = None,
    grid: dict[str, Any] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    evaluate: dict[str, Any] | None = None,
    study: str | None = None,
    skipped: dict[str, str] | None = None,
) -> tuple[Sweep, list[Run]]:
    """Validate every entry, then create the sweep with all its runs at once and send them to workers."""
    if not entries:
        raise InvalidRequestError("the sweep has no runs; give a grid or overrides with at least one value")
    sweep_id = new_run_id()
    sweep_tags = list(dict.fromkeys([*(tags or []), f"sweep:{sweep_id}"]))
    rows = []
    for index, entry in enumerate(entries):
        run_id = new_run_id()
        config, run_evaluate = _prepared(
            session, settings, entry, index=index, total=len(entries), run_id=run_id
        )
        label = entry.name or describe_changes(entry.changes)
        rows.append(
            {
                "run_id": run_id,
                "kind": entry.kind,
                "config": config,
                "name": f"{name} · {label}" if name else label,
                "tags": list(dict.fromkeys([*sweep_tags, *entry.extra_tags])),
                "output_dir": config["output_dir"],
                "queue": queue_for(entry.kind, config),
                "evaluate": run_evaluate,
            }
        )
    for row in rows:
        settings.run_dir(row["run_id"]).mkdir(parents=True, exist_ok=True)
    sweep, runs = sweep_queries.create_sweep(
        session,
        sweep_id=sweep_id,
        kind=kind,
        config=base,
        runs=rows,
        name=name,
        study=study,
        grid=grid,
        overrides=overrides,
        evaluate=evaluate,
        tags=sweep_tags,
        skipped=skipped,
    )
    _send_all(session, celery_app, runs)
    return sweep, runs


def _send_all(session: Session, celery_app: Celery, runs: list[Run]) -> None:
    """Send every run; if the broker is down, every run not sent fails with the reason (then 503)."""
    for position, run in enumerate(runs):
        try:
            enqueue_run(session, celery_app, run)
        except BrokerUnavailableError as exc:
            for unsent in runs[position + 1 :]:
                run_queries.update_run_status(
                    session, run_id=unsent.id, status=RunStatus.FAILED, error=str(exc)
                )
            raise


def grid_entries(
    kind: str,
    base: dict[str, Any],
    *,
    grid: dict[str, list[Any]] | None,
    overrides: list[dict[str, Any]] | None,
    evaluate: dict[str, Any] | None,
    max_runs: int,
) -> list[SweepEntry]:
    """The entries of a plain sweep: every expanded change applied to the base config."""
    return [
        SweepEntry(kind=kind, config={**base, **changes}, changes=changes, evaluate=evaluate)
        for changes in expand(base, grid=grid, overrides=overrides, max_runs=max_runs)
    ]


def cancel_sweep(session: Session, settings: Settings, *, sweep_id: str) -> list[str]:
    """Cancel every queued or running run of the sweep; returns the ids it cancelled or asked to stop."""
    sweep_queries.require_sweep(session, sweep_id=sweep_id)
    stopped = []
    for run in sweep_queries.sweep_runs(session, sweep_id=sweep_id):
        if run.status not in ACTIVE_STATUSES or run.cancel_requested:
            continue
        try:
            cancel_run(session, settings, run_id=run.id)
        except RunStateError:  # it finished meanwhile: nothing left to cancel
            continue
        stopped.append(run.id)
    return stopped
