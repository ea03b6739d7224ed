"""Finished runs written straight into a service's database and run directories, for tests about what
the service shows (report, compare, latency) rather than how runs get there."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from lowdino.eval.results import EvalResults, ProtocolResult, write_results
from server.runs import queries as run_queries
from server.settings import Settings
from server.storage.models import Run, new_run_id
from server.vocabulary import RunStatus

# A cell of results.json: (protocol, label fraction, one value per seed).
Cell = tuple[str, float, Sequence[float]]


def completed_run(
    session: Session,
    settings: Settings,
    *,
    kind: str,
    config: dict[str, Any],
    parent_id: str | None = None,
    **fields: Any,
) -> Run:
    """A completed run of `kind` with its (empty) run directory; `fields` go to the status update."""
    run_id = new_run_id()
    settings.run_dir(run_id).mkdir(parents=True)
    run_queries.create_run(
        session,
        kind=kind,
        config=config,
        run_id=run_id,
        output_dir=str(settings.run_dir(run_id)),
        parent_id=parent_id,
    )
    return run_queries.update_run_status(session, run_id=run_id, status=RunStatus.COMPLETED, **fields)


def write_eval_results(
    settings: Settings,
    run_id: str,
    *,
    backbone: str,
    params: int,
    image_size: int = 32,
    cells: Sequence[Cell] = (),
    latency: Sequence[dict[str, Any]] = (),
    feature_dim: int = 320,
) -> None:
    """The run's results.json as `lowdino eval` writes it: CIFAR-10, 500 train / 100 test images."""
    write_results(
        EvalResults(
            model=backbone,
            backbone=backbone,
            source="checkpoint",
            params=params,
            feature_dim=feature_dim,
            dataset="cifar10",
            image_size=image_size,
            train_size=500,
            test_size=100,
            num_classes=10,
            results=[ProtocolResult(p, f, list(v), list(range(len(v)))) for p, f, v in cells],
            latency=list(latency),
        ),
        settings.run_dir(run_id),
    )
