"""A trainer killed by a signal cannot log it: the worker writes the outcome into the run's train.log."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from sqlalchemy import Engine, select
from workerlib import make_run, options_for, wait_for

from lowdino.contract.rundir import LOG_FILE
from server.runs import queries as run_queries
from server.storage.engine import session_scope
from server.storage.models import Metric
from worker.identity import WorkerIdentity
from worker.outcome import signal_log_line
from worker.supervisor import RunResult, execute_run


def _pids_with(text: str) -> list[int]:
    """Processes whose command line contains `text` (the trainer names its run directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_trainer_killed_by_sigkill_leaves_the_reason_in_train_log(
    sqlite_engine: Engine, runs_root: Path, identity: WorkerIdentity
) -> None:
    run_id = make_run(sqlite_engine, runs_root)
    run_dir = runs_root / run_id
    (run_dir).mkdir(parents=True)
    (run_dir / LOG_FILE).write_text("2026-01-01 00:00:00 INFO starting\n")  # the trainer's own lines stay
    options = options_for(runs_root, FAKE_STEPS="100000", FAKE_STEP_SLEEP="0.02")
    results: list[RunResult] = []
    thread = threading.Thread(
        target=lambda: results.append(execute_run(sqlite_engine, run_id, identity=identity, options=options)),
        daemon=True,
    )
    thread.start()

    def metrics_arrived() -> bool:
        with session_scope(sqlite_engine) as session:
            return session.scalar(select(Metric.step).where(Metric.run_id == run_id).limit(1)) is not None

    wait_for(metrics_arrived, "the first metrics")
    trainers = _pids_with(str(run_dir))
    assert len(trainers) == 1, trainers  # the orphan guard exec'ed the trainer: one process
    os.kill(trainers[0], signal.SIGKILL)  # what the kernel's out-of-memory killer sends
    thread.join(60)

    assert (results[0].status, results[0].exit_code) == ("failed", -9)
    lines = (run_dir / LOG_FILE).read_text().splitlines()
    assert lines[0] == "2026-01-01 00:00:00 INFO starting"
    assert "ERROR worker: trainer killed by SIGKILL (likely the kernel's out-of-memory killer" in lines[-1]
    assert lines[-1].endswith(" s")
    with session_scope(sqlite_engine) as session:
        run = run_queries.get_run(session, run_id=run_id)
        assert run is not None
        assert "killed by SIGKILL" in (run.error or "")


def test_only_a_signal_gives_a_line_and_a_worker_kill_says_so() -> None:
    assert signal_log_line(0, elapsed_s=3, killed_by_worker=False) is None
    assert signal_log_line(1, elapsed_s=3, killed_by_worker=False) is None
    line = signal_log_line(-9, elapsed_s=3, killed_by_worker=True, now=0)
    assert line is not None
    assert line.endswith("trainer killed by SIGKILL (by the worker: it ignored a stop request) after 3 s")
    term = signal_log_line(-15, elapsed_s=61.4, killed_by_worker=False, now=0)
    assert term is not None
    assert term.endswith("worker: trainer killed by SIGTERM after 61 s")
