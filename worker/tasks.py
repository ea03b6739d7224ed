"""The one Celery task, "lowdino.run"(run_id): a thin adapter over worker.supervisor.execute_run.

All logic (claim, child process, streaming, outcome) lives in plain functions that the tests call
directly; this module only maps it onto message handling:

* a failing run is recorded in the database and the task returns normally, so the worker goes on
  with the next message;
* a message that arrives while the worker is shutting down goes back to the queue (Reject with
  requeue) instead of starting a run only to interrupt it;
* when the database is unreachable the message is retried later (the claim keeps a retried message
  from running a run twice; a run already claimed is left to the reaper and the user's resume).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from celery import Task
from celery.exceptions import Reject

from worker.celery_app import TASK_NAME, app
from worker.runtime import get_runtime
from worker.supervisor import TRANSIENT_DB_ERRORS, execute_run

log = logging.getLogger(__name__)
DB_RETRY_DELAY_S = 10
DB_MAX_RETRIES = 60


@app.task(name=TASK_NAME, bind=True, ignore_result=True, max_retries=DB_MAX_RETRIES)
def run_task(self: Task, run_id: str) -> dict[str, Any]:
    runtime = get_runtime()
    if runtime.state.shutdown.is_set():
        raise Reject(
            f"worker {runtime.identity.name} is shutting down; run {run_id} goes back to the queue",
            requeue=True,
        )
    try:
        result = execute_run(
            runtime.engine,
            str(run_id),
            identity=runtime.identity,
            options=runtime.options,
            state=runtime.state,
        )
    except TRANSIENT_DB_ERRORS as exc:
        log.warning(
            "run %s: database unavailable (%s); retrying in %d s",
            run_id,
            exc.__class__.__name__,
            DB_RETRY_DELAY_S,
        )
        raise self.retry(exc=exc, countdown=DB_RETRY_DELAY_S) from exc
    log.info("run %s: %s (%s)", result.run_id, result.status or "refused", result.message)
    return asdict(result)
