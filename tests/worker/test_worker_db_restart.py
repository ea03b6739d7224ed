"""A PostgreSQL restart in the middle of a run loses no metric step, and the run still completes.

A private PostgreSQL cluster (initdb + pg_ctl on a free port: stopping the shared one would break
other tests) is stopped while the supervisor follows a real child process (the fake trainer), kept
down until the child has written more records, and started again. Two ways through: the records
wait in the supervisor's memory, or (cap exceeded) they are dropped and metrics.jsonl is read again
from the last step the database stored.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from services import PrivatePostgres, private_postgres
from sqlalchemy import Engine, select
from workerlib import make_run, options_for, wait_for

from lowdino.contract.rundir import RunDir
from server.runs import queries as run_queries
from server.storage.engine import create_db_engine, session_scope, upgrade_database
from server.storage.models import Metric
from worker.identity import WorkerIdentity
from worker.supervisor import RunResult, execute_run

pytestmark = pytest.mark.services

STEPS = 60


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


def file_steps(run_dir: Path) -> list[int]:
    path = RunDir(run_dir).metrics
    if not path.is_file():
        return []
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if line.endswith("}")]


def stored_loss_steps(engine: Engine, run_id: str) -> list[int]:
    with session_scope(engine) as session:
        query = select(Metric.step).where(Metric.run_id == run_id, Metric.key == "loss").order_by(Metric.step)
        return list(session.scalars(query))


@pytest.mark.parametrize("max_pending", [None, 3], ids=["held-in-memory", "re-read-from-file"])
def test_postgres_restart_mid_run_loses_no_step(
    postgres: PrivatePostgres,
    tmp_path: Path,
    identity: WorkerIdentity,
    max_pending: int | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="worker.supervisor")
    engine = create_db_engine(postgres.url)
    upgrade_database(engine)
    runs_root = tmp_path / "runs"
    run_id = make_run(engine, runs_root)
    run_dir = runs_root / run_id
    options = options_for(runs_root, FAKE_STEPS=str(STEPS), FAKE_STEP_SLEEP="0.05")
    if max_pending is not None:
        options = dataclasses.replace(options, max_pending_records=max_pending)
    results: list[RunResult] = []
    thread = threading.Thread(
        target=lambda: results.append(execute_run(engine, run_id, identity=identity, options=options)),
        daemon=True,
    )
    thread.start()
    wait_for(lambda: len(stored_loss_steps(engine, run_id)) >= 5, "the first stored steps", 60)
    postgres.stop("fast")  # every connection is cut, as in a restart of the database server
    written = len(file_steps(run_dir))
    # Down until the child has written more records than the supervisor may hold in memory.
    wait_for(lambda: len(file_steps(run_dir)) >= written + 10, "records written while down", 60)
    postgres.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the supervisor did not finish"
    (result,) = results
    assert (result.status, result.exit_code) == ("completed", 0), result.message
    with session_scope(engine) as session:
        run = run_queries.get_run(session, run_id=run_id)
        assert run is not None
        assert (run.status, run.step) == ("completed", STEPS)
    assert file_steps(run_dir) == list(range(1, STEPS + 1))
    assert stored_loss_steps(engine, run_id) == list(range(1, STEPS + 1))
    engine.dispose()
    assert "will retry" in caplog.text  # the database really was away while the run went on
    assert ("re-read from step" in caplog.text) == (max_pending is not None)
