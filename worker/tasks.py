"""The one Celery task, "lowdino.run"(run_id): a thin adapter over worker.supervisor.execute_run.

All logic (claim, child process, streaming, outcome) lives in plain functions that the tests call
directly; this module only hands the task's argument to them. A failing run is recorded in the
database and the task returns normally, so the worker goes on with the next message.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from worker.celery_app import TASK_NAME, app
from worker.runtime import get_runtime
from worker.supervisor import execute_run

log = logging.getLogger(__name__)


@app.task(name=TASK_NAME, ignore_result=True)
def run_task(run_id: str) -> dict[str, Any]:
    runtime = get_runtime()
    result = execute_run(
        runtime.engine, str(run_id), identity=runtime.identity, options=runtime.options, state=runtime.state
    )
    log.info("run %s: %s (%s)", result.run_id, result.status, result.message)
    return asdict(result)
