"""Chains: when a pretrain or distill run with an `evaluate` block completes, queue its evaluation.

The link lives in the database (runs.evaluate on the training run, runs.evaluation_id once its eval
run exists, parent_id on the eval run), so it survives restarts of every process. The API processes
look for completed runs that still owe an evaluation every `chain_poll_interval` seconds
(server.http.app); `run_queries.claim_evaluation` makes the creation exactly-once however many API processes
look at the same time, and whatever happened to the training run before (a cancelled, failed or
interrupted run owes nothing until a resume completes it).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session

from server.errors import BrokerUnavailableError, InvalidRequestError
from server.runs import queries as run_queries
from server.runs.lifecycle import enqueue_run, prepare_config
from server.settings import Settings
from server.storage.models import Run, new_run_id
from server.vocabulary import RunKind, RunStatus
from server.workers.queues import queue_for

log = logging.getLogger("lowdino.server.chains")


def evaluation_name(parent: Run) -> str:
    return f"{parent.name or parent.id} · eval"


def _evaluation_row(session: Session, settings: Settings, parent: Run) -> tuple[dict[str, Any], str | None]:
    """Keywords of the eval run for `parent`, and the reason it cannot run (then it is created failed)."""
    run_id = new_run_id()
    wanted = {**(parent.evaluate or {}), "checkpoint": parent.id}
    error = None
    try:
        config = prepare_config(session, settings, kind=RunKind.EVAL, config=wanted, run_id=run_id)
    except InvalidRequestError as exc:  # e.g. a data root removed from the settings since submission
        config, error = {**wanted, "output_dir": str(settings.run_dir(run_id))}, str(exc)
    row = {
        "run_id": run_id,
        "kind": RunKind.EVAL,
        "config": config,
        "name": evaluation_name(parent),
        "tags": list(parent.tags or []),
        "output_dir": config["output_dir"],
        "queue": queue_for(RunKind.EVAL, config),
        "sweep_id": parent.sweep_id,
    }
    return row, error


def queue_owed_evaluations(session: Session, celery_app: Celery, settings: Settings) -> list[str]:
    """Create and send the eval run of every completed run that owes one; returns the new run ids."""
    created = []
    for parent in run_queries.runs_owing_evaluation(session):
        row, error = _evaluation_row(session, settings, parent)
        run = run_queries.claim_evaluation(session, parent_id=parent.id, evaluation=row)
        if run is None:
            continue  # another API process created it
        settings.run_dir(run.id).mkdir(parents=True, exist_ok=True)
        created.append(run.id)
        if error is not None:
            run_queries.update_run_status(session, run_id=run.id, status=RunStatus.FAILED, error=error)
            log.warning("run %s: its chained evaluation %s cannot run: %s", parent.id, run.id, error)
            continue
        try:
            enqueue_run(session, celery_app, run)
        except BrokerUnavailableError as exc:  # the run is already marked failed with the reason
            log.warning("run %s: chained evaluation %s not sent: %s", parent.id, run.id, exc)
            continue
        log.info("run %s completed: queued its evaluation %s", parent.id, run.id)
    return created
