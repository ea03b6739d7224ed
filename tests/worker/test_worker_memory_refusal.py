"""A run refused by the CPU memory preflight fails in the service with the trainer's one-line reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from workerlib import make_run

from lowdino.contract.rundir import METRICS_FILE
from lowdino.train.memory_check import AVAILABLE_MEMORY_ENV
from server.runs import queries as run_queries
from server.storage.engine import session_scope
from worker.identity import WorkerIdentity
from worker.supervisor import SupervisorOptions, execute_run


@pytest.mark.slow
def test_a_batch_that_cannot_fit_fails_the_run_with_the_memory_message(
    sqlite_engine: Engine, runs_root: Path, identity: WorkerIdentity
) -> None:
    run_id = make_run(sqlite_engine, runs_root)  # batch 16 > the 4-image probe
    # The real trainer, told that 1 MiB is available (the machine's real reading would let it run).
    options = SupervisorOptions(
        runs_root=runs_root,
        heartbeat_interval=0.2,
        poll_interval=0.05,
        env_extra={AVAILABLE_MEMORY_ENV: "0.001", "OMP_NUM_THREADS": "1"},
    )
    result = execute_run(sqlite_engine, run_id, identity=identity, options=options)
    assert (result.status, result.exit_code) == ("failed", 2)
    with session_scope(sqlite_engine) as session:
        run = run_queries.get_run(session, run_id=run_id)
        assert run is not None
        first_line = (run.error or "").splitlines()[0]
    assert first_line.startswith(
        "lowdino pretrain: error: not enough memory on the CPU: one step at batch 16"
    )
    assert "--batch-size" in first_line or "even one image per step does not fit" in first_line
    assert not (runs_root / run_id / METRICS_FILE).exists()  # refused before step 1
