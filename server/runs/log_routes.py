"""/api/runs/{id}/logs: the last lines of the run's output."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query

from lowdino.contract.rundir import LOG_FILE, STDOUT_FILE
from server.deps import SessionDep, SettingsDep
from server.events import queries as event_queries
from server.runs import queries as run_queries
from server.runs.paths import owned_run_dir
from server.runs.schemas import LogsPublic
from server.schemas import Message

router = APIRouter(prefix="/runs/{run_id}", tags=["logs"])
# Files a run directory may hold its output in, most complete first (the worker's capture of the child).
LOG_FILES = (STDOUT_FILE, LOG_FILE)


def _tail_file(path: Path, lines: int) -> list[str]:
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]


@router.get("/logs", response_model=LogsPublic, responses={404: {"model": Message}})
def get_logs(
    run_id: str,
    session: SessionDep,
    settings: SettingsDep,
    tail: Annotated[int, Query(ge=1, le=10_000, description="Number of lines from the end.")] = 200,
) -> LogsPublic:
    """The worker's `log` events; before any arrive (or without a worker), the run directory's log file."""
    run = run_queries.require_run(session, run_id=run_id)
    lines = event_queries.log_lines(session, run_id=run_id, tail=tail)
    if lines:
        return LogsPublic(run_id=run_id, lines=lines, source="events")
    run_dir = owned_run_dir(settings, run.output_dir)
    for name in LOG_FILES:
        if run_dir is not None and (run_dir / name).is_file():
            return LogsPublic(run_id=run_id, lines=_tail_file(run_dir / name, tail), source="file")
    return LogsPublic(run_id=run_id, lines=[], source="none")
