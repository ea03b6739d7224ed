"""execute_run against a real database and a real child process (the fake trainer, no torch).

Covered: claim (never twice, also under a race), streaming every step exactly once, batching,
failure capture, cancel through the DB flag, shutdown -> interrupted -> resume, a child that ignores
STOP, a run taken away mid-flight, a config that no longer validates.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from workerlib import make_run, options_for, wait_for

from lowdino.contract.rundir import RunDir
from server.runs import queries as run_queries
from server.storage.engine import session_scope
from server.storage.models import Event, Metric, Run
from worker.identity import WorkerIdentity, WorkerState
from worker.supervisor import RunResult, _Supervision, execute_run


def get_run(engine: Engine, run_id: str) -> Run:
    with session_scope(engine) as session:
        run = run_queries.get_run(session, run_id=run_id)
        assert run is not None
        return run


def loss_steps(engine: Engine, run_id: str) -> list[int]:
    with session_scope(engine) as session:
        query = select(Metric.step).where(Metric.run_id == run_id, Metric.key == "loss").order_by(Metric.step)
        return list(session.scalars(query))


def events(engine: Engine, run_id: str, kind: str) -> list[dict[str, Any]]:
    with session_scope(engine) as session:
        query = select(Event.data).where(Event.run_id == run_id, Event.type == kind).order_by(Event.id)
        return list(session.scalars(query))


def log_text(engine: Engine, run_id: str) -> str:
    return "\n".join(line for data in events(engine, run_id, "log") for line in data["lines"])


def in_thread(call: Callable[[], RunResult]) -> tuple[threading.Thread, list[RunResult]]:
    results: list[RunResult] = []
    thread = threading.Thread(target=lambda: results.append(call()), daemon=True)
    thread.start()
    return thread, results


def test_completed_run_streams_every_step_once(
    any_engine: Engine, runs_root: Path, identity: WorkerIdentity
) -> None:
    run_id = make_run(any_engine, runs_root)
    options = options_for(runs_root, FAKE_STEPS="25", FAKE_SPLIT_LINES="1")
    result = execute_run(any_engine, run_id, identity=identity, options=options)
    assert (result.status, result.exit_code) == ("completed", 0)
    assert loss_steps(any_engine, run_id) == list(range(1, 26))
    run = get_run(any_engine, run_id)
    assert (run.status, run.exit_code, run.error, run.step, run.total_steps) == ("completed", 0, None, 25, 25)
    assert run.worker_name == identity.name
    assert run.heartbeat_at is not None
    text = log_text(any_engine, run_id)
    assert "step 25/25 line 0" in text
    assert "[worker] the run completed" in text
    rundir = RunDir(runs_root / run_id)
    assert rundir.checkpoint.is_file()
    assert "dataset: synthetic" in rundir.config.read_text()
    assert f"output_dir: {runs_root / run_id}" in rundir.config.read_text()
    statuses = [data["status"] for data in events(any_engine, run_id, "status")]
    assert statuses == ["queued", "running", "completed"]


def test_a_run_never_executes_twice(any_engine: Engine, runs_root: Path, identity: WorkerIdentity) -> None:
    run_id = make_run(any_engine, runs_root)
    options = options_for(runs_root, FAKE_STEPS="3")
    assert execute_run(any_engine, run_id, identity=identity, options=options).status == "completed"
    again = execute_run(any_engine, run_id, identity=identity, options=options)
    assert again.refused
    assert "completed, not queued" in again.message
    assert execute_run(any_engine, "nosuchrun", identity=identity, options=options).refused


def test_racing_claims_run_it_once(any_engine: Engine, runs_root: Path, identity: WorkerIdentity) -> None:
    run_id = make_run(any_engine, runs_root)
    options = options_for(runs_root, FAKE_STEPS="5")
    barrier = threading.Barrier(2)
    results: list[RunResult] = []

    def worker(name: str) -> None:
        me = WorkerIdentity(name=name, hostname="h", queues=("cpu",), gpus=(), pid=0)
        barrier.wait()
        results.append(execute_run(any_engine, run_id, identity=me, options=options))

    threads = [threading.Thread(target=worker, args=(f"w{index}",)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(str(result.status) for result in results) == ["None", "completed"]
    assert loss_steps(any_engine, run_id) == [1, 2, 3, 4, 5]
    assert len([d for d in events(any_engine, run_id, "status") if d["status"] == "running"]) == 1


def test_records_are_ingested_in_batches(
    sqlite_engine: Engine, runs_root: Path, identity: WorkerIdentity
) -> None:
    run_id = make_run(sqlite_engine, runs_root)
    run_dir = runs_root / run_id
    run_dir.mkdir(parents=True)
    lines = [
        f'{{"step": {step}, "epoch": 0, "time": {step}.0, "total_steps": 50, "loss": 1.0}}'
        for step in range(1, 51)
    ]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n" + lines[0][:7])
    with session_scope(sqlite_engine) as session:
        run = run_queries.claim_run(session, run_id=run_id, worker_name=identity.name)
        assert run is not None
        supervision = _Supervision(
            session, run, run_dir, identity=identity, options=options_for(runs_root), state=WorkerState()
        )
        supervision._pump()
        supervision._pump()  # nothing new: no second event
    metric_events = events(sqlite_engine, run_id, "metric")
    assert len(metric_events) == 1
    assert len(metric_events[0]["points"]) == 50
    assert loss_steps(sqlite_engine, run_id) == list(range(1, 51))


def test_failure_stores_the_last_lines_and_the_worker_goes_on(
    sqlite_engine: Engine, runs_root: Path, identity: WorkerIdentity
) -> None:
    failing = make_run(sqlite_engine, runs_root)
    options = options_for(runs_root, FAKE_STEPS="5", FAKE_LOG_LINES="20", FAKE_EXIT="3")
    result = execute_run(sqlite_engine, failing, identity=identity, options=options)
    assert (result.status, result.exit_code) == ("failed", 3)
    run = get_run(sqlite_engine, failing)
    assert run.status == "failed"
    assert run.exit_code == 3
    assert run.error is not None
    first_line, output = run.error.split("\n--- last lines of output ---\n")
    assert first_line == "training process exited with status 3: RuntimeError: CUDA out of memory (fake)"
    output_lines = output.splitlines()
    assert len(output_lines) == 40
    assert output_lines[-1] == "RuntimeError: CUDA out of memory (fake)"
    assert "step 5/5 line 19" in output
    # Metrics written before the crash are kept.
    assert loss_steps(sqlite_engine, failing) == [1, 2, 3, 4, 5]

    following = make_run(sqlite_engine, runs_root)
    assert (
        execute_run(sqlite_engine, following, identity=identity, options=options_for(runs_root)).status
        == "completed"
    )


def test_cancel_flag_in_the_database_stops_the_child_with_a_checkpoint(
    any_engine: Engine, runs_root: Path, identity: WorkerIdentity
) -> None:
    run_id = make_run(any_engine, runs_root)
    options = options_for(runs_root, FAKE_STEPS="100000", FAKE_STEP_SLEEP="0.02", FAKE_CKPT_EVERY="1000000")
    thread, results = in_thread(lambda: execute_run(any_engine, run_id, identity=identity, options=options))
    wait_for(lambda: len(loss_steps(any_engine, run_id)) >= 3, "the first metrics")
    with session_scope(any_engine) as session:
        run_queries.set_cancel_requested(
            session, run_id=run_id
        )  # the DB flag only: the worker must write STOP
    thread.join(60)
    assert results[0].status == "cancelled"
    assert results[0].exit_code == 75
    run = get_run(any_engine, run_id)
    assert run.status == "cancelled"
    assert run.error is None
    rundir = RunDir(runs_root / run_id)
    assert rundir.stop_requested()
    assert rundir.checkpoint.is_file()
    # Every record the child wrote before stopping reached the database.
    assert loss_steps(any_engine, run_id) == list(range(1, rundir.read_summary()["step"] + 1))  # type: ignore[index]


def test_shutdown_interrupts_and_resume_continues_with_each_step_once(
    sqlite_engine: Engine, runs_root: Path, identity: WorkerIdentity
) -> None:
    run_id = make_run(sqlite_engine, runs_root)
    env = {"FAKE_STEPS": "60", "FAKE_STEP_SLEEP": "0.03", "FAKE_CKPT_EVERY": "7"}
    state = WorkerState()
    thread, results = in_thread(
        lambda: execute_run(
            sqlite_engine, run_id, identity=identity, options=options_for(runs_root, **env), state=state
        )
    )
    wait_for(lambda: len(loss_steps(sqlite_engine, run_id)) >= 10, "ten steps")
    state.shutdown.set()
    thread.join(60)
    assert results[0].status == "interrupted"
    run = get_run(sqlite_engine, run_id)
    assert run.status == "interrupted"
    assert "resume" in (run.error or "")
    assert RunDir(runs_root / run_id).stop_requested()

    # What POST /resume does: queued again with resume=true (the stale STOP is the worker's to clear).
    with session_scope(sqlite_engine) as session:
        run_queries.transition_run(
            session,
            run_id=run_id,
            from_statuses=("interrupted",),
            status="queued",
            config={**run.config, "resume": True},
            attempt=2,
        )
    other = WorkerIdentity(name="second@host", hostname="host", queues=("cpu",), gpus=(), pid=1)
    result = execute_run(sqlite_engine, run_id, identity=other, options=options_for(runs_root, **env))
    assert result.status == "completed"
    assert loss_steps(sqlite_engine, run_id) == list(range(1, 61))
    steps_in_file = [
        int(line.split('"step": ')[1].split(",")[0])
        for line in (runs_root / run_id / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps_in_file == list(range(1, 61))
    assert "--resume" in log_text(sqlite_engine, run_id)
    assert "resume: true" in (runs_root / run_id / "config.yaml").read_text()


def test_resume_without_a_checkpoint_starts_over(
    sqlite_engine: Engine, runs_root: Path, identity: WorkerIdentity
) -> None:
    run_id = make_run(sqlite_engine, runs_root)
    run_dir = runs_root / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text('{"step": 99, "loss": 1.0}\n')
    with session_scope(sqlite_engine) as session:
        run = run_queries.get_run(session, run_id=run_id)
        assert run is not None
        run.config = {**run.config, "resume": True}
        session.commit()
    result = execute_run(
        sqlite_engine, run_id, identity=identity, options=options_for(runs_root, FAKE_STEPS="4")
    )
    assert result.status == "completed"
    assert loss_steps(sqlite_engine, run_id) == [1, 2, 3, 4]
    assert "no checkpoint.pth from an earlier attempt" in log_text(sqlite_engine, run_id)
    assert "resume: false" in (run_dir / "config.yaml").read_text()


def test_child_that_ignores_stop_is_killed_after_the_grace_period(
    sqlite_engine: Engine, runs_root: Path, identity: WorkerIdentity
) -> None:
    run_id = make_run(sqlite_engine, runs_root)
    options = options_for(runs_root, FAKE_STEPS="100000", FAKE_STEP_SLEEP="0.02", FAKE_IGNORE_STOP="1")
    options.stop_grace_s = 0.5
    thread, results = in_thread(
        lambda: execute_run(sqlite_engine, run_id, identity=identity, options=options)
    )
    wait_for(lambda: loss_steps(sqlite_engine, run_id), "the first metrics")
    with session_scope(sqlite_engine) as session:
        run_queries.set_cancel_requested(session, run_id=run_id)
    thread.join(60)
    assert results[0].status == "cancelled"
    assert results[0].exit_code == -9
    assert "ignored the stop request" in results[0].message


def test_a_run_taken_away_kills_the_child_and_records_nothing(
    sqlite_engine: Engine, runs_root: Path, identity: WorkerIdentity
) -> None:
    run_id = make_run(sqlite_engine, runs_root)
    options = options_for(runs_root, FAKE_STEPS="100000", FAKE_STEP_SLEEP="0.02")
    thread, results = in_thread(
        lambda: execute_run(sqlite_engine, run_id, identity=identity, options=options)
    )
    wait_for(lambda: loss_steps(sqlite_engine, run_id), "the first metrics")
    with session_scope(sqlite_engine) as session:
        # What the reaper does when it believes the worker is dead.
        run_queries.transition_run(
            session, run_id=run_id, from_statuses=("running",), status="interrupted", error="reaped"
        )
    thread.join(60)
    assert results[0].refused
    assert results[0].exit_code == -9
    run = get_run(sqlite_engine, run_id)
    assert (run.status, run.error) == ("interrupted", "reaped")


def test_stored_config_that_no_longer_validates_fails_without_a_child(
    sqlite_engine: Engine, runs_root: Path, identity: WorkerIdentity
) -> None:
    run_id = make_run(sqlite_engine, runs_root)
    with session_scope(sqlite_engine) as session:
        run = run_queries.get_run(session, run_id=run_id)
        assert run is not None
        run.config = {**run.config, "batch_size": 0}
        session.commit()
    result = execute_run(sqlite_engine, run_id, identity=identity, options=options_for(runs_root))
    assert result.status == "failed"
    run = get_run(sqlite_engine, run_id)
    assert "batch_size: must be >= 1 (got 0)" in (run.error or "")
    assert not (runs_root / run_id / "stdout.log").exists()


def test_a_prune_reason_with_the_cancel_flag_ends_the_run_pruned_with_the_reason(
    any_engine: Engine, runs_root: Path, identity: WorkerIdentity
) -> None:
    run_id = make_run(any_engine, runs_root)
    options = options_for(runs_root, FAKE_STEPS="100000", FAKE_STEP_SLEEP="0.02", FAKE_CKPT_EVERY="1000000")
    thread, results = in_thread(lambda: execute_run(any_engine, run_id, identity=identity, options=options))
    wait_for(lambda: len(loss_steps(any_engine, run_id)) >= 3, "the first metrics")
    reason = "pruned at step 3 by the median pruner: validation kNN 1.00 % is behind the other trials"
    with session_scope(any_engine) as session:
        run_queries.set_cancel_requested(session, run_id=run_id, prune_reason=reason)
    thread.join(60)
    assert results[0].status == "pruned"
    run = get_run(any_engine, run_id)
    assert (run.status, run.error, run.exit_code) == ("pruned", reason, 75)
    assert RunDir(runs_root / run_id).checkpoint.is_file()  # stopped through the cancel path


def test_cancel_requested_before_the_claim_never_starts_a_child(
    sqlite_engine: Engine, runs_root: Path, identity: WorkerIdentity
) -> None:
    run_id = make_run(sqlite_engine, runs_root)
    with session_scope(sqlite_engine) as session:
        run = run_queries.get_run(session, run_id=run_id)
        assert run is not None
        run.cancel_requested = True
        session.commit()
    assert (
        execute_run(sqlite_engine, run_id, identity=identity, options=options_for(runs_root)).status
        == "cancelled"
    )
    assert not (runs_root / run_id / "stdout.log").exists()


@pytest.mark.parametrize("gpus", [(), (3,)])
def test_worker_gpu_set_reaches_the_child(
    sqlite_engine: Engine, runs_root: Path, gpus: tuple[int, ...]
) -> None:
    me = WorkerIdentity(name="g@h", hostname="h", queues=("gpu",), gpus=gpus, pid=0)
    run_id = make_run(sqlite_engine, runs_root)
    assert (
        execute_run(sqlite_engine, run_id, identity=me, options=options_for(runs_root, FAKE_STEPS="1")).status
        == "completed"
    )
    expected = ",".join(map(str, gpus))
    assert f"cuda={expected}\n" in (runs_root / run_id / "stdout.log").read_text()


def test_metric_rows_are_counted_per_step(
    sqlite_engine: Engine, runs_root: Path, identity: WorkerIdentity
) -> None:
    run_id = make_run(sqlite_engine, runs_root)
    execute_run(sqlite_engine, run_id, identity=identity, options=options_for(runs_root, FAKE_STEPS="12"))
    with session_scope(sqlite_engine) as session:
        counts = session.execute(
            select(Metric.step, func.count()).where(Metric.run_id == run_id).group_by(Metric.step)
        ).all()
    assert sorted(step for step, _ in counts) == list(range(1, 13))
    assert {count for _, count in counts} == {1}  # one key (loss) per record, once each


def test_a_crashing_supervisor_kills_its_child_and_leaves_the_run_resumable(
    sqlite_engine: Engine, runs_root: Path, identity: WorkerIdentity, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = make_run(sqlite_engine, runs_root)
    child_pids: list[int] = []

    def broken_beat(self: _Supervision, now: float) -> None:
        if loss_steps(sqlite_engine, run_id):
            raise RuntimeError("supervisor bug")

    real_popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = real_popen(*args, **kwargs)
        child_pids.append(process.pid)
        return process

    monkeypatch.setattr(_Supervision, "_beat", broken_beat)
    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    options = options_for(runs_root, FAKE_STEPS="100000", FAKE_STEP_SLEEP="0.02")
    with pytest.raises(RuntimeError, match="supervisor bug"):
        execute_run(sqlite_engine, run_id, identity=identity, options=options)
    run = get_run(sqlite_engine, run_id)
    assert run.status == "interrupted"
    assert "resume" in (run.error or "")
    assert not Path(f"/proc/{child_pids[0]}").exists()  # killed and reaped
