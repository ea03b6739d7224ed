"""End to end: the API (uvicorn subprocess) + real `lowdino worker` processes + the real trainer.

submit over REST -> it runs -> metrics arrive over SSE -> completed with a checkpoint
    (embedded stack: SQLite + SQLAlchemy broker; scaled stack: PostgreSQL + Redis)
cancel a running run -> cancelled with a checkpoint
SIGTERM the worker mid-run -> the trainer checkpoints -> interrupted (what `lowdino serve` does on exit)
kill -9 the worker mid-run -> its trainer dies with it -> the reaper marks the run interrupted ->
    resume -> a new worker completes it with every step's metrics exactly once
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from e2elib import (
    HEARTBEAT_TIMEOUT_S,
    SSEReader,
    Stack,
    loss_rows_per_step,
    processes_mentioning,
    running_stack,
    tiny_pretrain,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("embedded"), "embedded") as stack:
        stack.start_worker("e1")
        yield stack


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("scaled"), "scaled") as stack:
        stack.start_worker("s1")
        yield stack


def step_of(run: dict[str, Any]) -> int:
    return int(run["progress"]["step"] or 0)


@pytest.mark.parametrize("stack_kind", ["embedded", "scaled"])
def test_submitted_run_streams_metrics_over_sse_and_completes(
    stack_kind: str, request: pytest.FixtureRequest
) -> None:
    stack: Stack = request.getfixturevalue(stack_kind)
    run_id = stack.submit(tiny_pretrain(n_epochs=2), name=f"e2e-{stack_kind}")
    reader = SSEReader(stack.api_url, run_id)
    assert reader.finished.wait(150), f"no final status event; run is {stack.run(run_id)['status']}"
    reader.close()
    assert reader.error is None, reader.error

    statuses = [data["status"] for data in reader.of_type("status")]
    assert statuses[0] == "queued"
    assert statuses[-1] == "completed", stack.run(run_id).get("error")
    assert "running" in statuses
    streamed_steps = sorted(
        {
            point["step"]
            for data in reader.of_type("metric")
            for point in data["points"]
            if point["key"] == "loss"
        }
    )
    assert streamed_steps == list(range(1, 9))
    assert any(line for data in reader.of_type("log") for line in data["lines"])

    run = stack.run(run_id)
    assert (run["status"], run["exit_code"]) == ("completed", 0)
    assert (run["progress"]["step"], run["progress"]["total_steps"]) == (8, 8)
    assert {
        "checkpoint.pth",
        "summary.json",
        "metrics.jsonl",
        "config.yaml",
        "stdout.log",
    } <= stack.artifact_names(run_id)
    assert loss_rows_per_step(stack.database_url, run_id) == dict.fromkeys(range(1, 9), 1)


def test_failing_run_stores_its_error_and_the_worker_takes_the_next(embedded: Stack) -> None:
    # Valid at submission, unusable when the trainer opens it: an image folder with no images.
    empty = embedded.home / "data" / "empty-folder"
    empty.mkdir(parents=True, exist_ok=True)
    bad = embedded.submit(tiny_pretrain(dataset="imagefolder", data_path=str(empty)), name="e2e-bad")
    good = embedded.submit(tiny_pretrain(n_epochs=1), name="e2e-after-bad")
    failed = embedded.wait_status(bad, {"failed", "completed", "cancelled", "interrupted"})
    assert (failed["status"], failed["exit_code"]) == ("failed", 2)
    assert failed["error"].startswith("lowdino pretrain: error: ")
    assert "empty-folder" in failed["error"].splitlines()[0]
    assert "--- last lines of output ---" in failed["error"]
    assert (
        embedded.wait_status(good, {"failed", "completed", "cancelled", "interrupted"})["status"]
        == "completed"
    )


def test_cancel_running_run_ends_cancelled_with_a_checkpoint(embedded: Stack) -> None:
    run_id = embedded.submit(tiny_pretrain(n_epochs=200), name="e2e-cancel")
    wait_for(lambda: step_of(embedded.run(run_id)) >= 1, "the first step", deadline_s=120, every_s=0.2)
    cancelled = embedded.post(f"/api/runs/{run_id}/cancel")
    assert cancelled["cancel_requested"] is True
    run = embedded.wait_status(run_id, {"cancelled", "failed", "completed"})
    assert (run["status"], run["exit_code"]) == ("cancelled", 75), run.get("error")
    assert step_of(run) < 800
    assert "checkpoint.pth" in embedded.artifact_names(run_id)


def test_sigterm_lets_the_trainer_checkpoint_and_leaves_the_run_resumable(embedded: Stack) -> None:
    run_id = embedded.submit(tiny_pretrain(n_epochs=200), name="e2e-sigterm")
    wait_for(lambda: step_of(embedded.run(run_id)) >= 1, "the first step", deadline_s=120, every_s=0.2)
    worker = embedded.workers[-1]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=120) == 0
    run = embedded.run(run_id)
    assert (run["status"], run["exit_code"]) == ("interrupted", 75), run.get("error")
    assert "resume" in run["error"]
    assert "checkpoint.pth" in embedded.artifact_names(run_id)
    assert all(w["name"] != run["worker_name"] for w in embedded.get("/api/health")["workers"])
    embedded.start_worker("e2")  # the module's later tests (if any) keep a live worker


def test_killed_worker_is_reaped_and_resume_completes_each_step_once(scaled: Stack) -> None:
    total = 24
    run_id = scaled.submit(tiny_pretrain(n_epochs=6, checkpoint_every_steps=3), name="e2e-kill")
    wait_for(
        lambda: step_of(scaled.run(run_id)) >= 7, "step 7 (two checkpoints)", deadline_s=150, every_s=0.2
    )
    run_dir = str(scaled.run(run_id)["output_dir"])
    assert processes_mentioning(run_dir), "the trainer should be running"
    worker = scaled.workers[-1]
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()

    # The trainer dies with its worker (parent-death signal), so nothing writes into the run directory.
    wait_for(lambda: not processes_mentioning(run_dir), "the orphaned trainer to die", deadline_s=30)
    run = scaled.wait_status(run_id, {"interrupted"}, deadline_s=HEARTBEAT_TIMEOUT_S + 30)
    assert "heartbeat" in run["error"]
    step_at_kill = step_of(run)
    assert 7 <= step_at_kill < total

    resumed = scaled.post(f"/api/runs/{run_id}/resume")
    assert (resumed["status"], resumed["attempt"]) == ("queued", 2)
    scaled.start_worker("s2")
    run = scaled.wait_status(run_id, {"completed", "failed", "cancelled", "interrupted"}, deadline_s=150)
    assert run["status"] == "completed", run.get("error")
    assert step_of(run) == total

    assert loss_rows_per_step(scaled.database_url, run_id) == dict.fromkeys(range(1, total + 1), 1)
    file_steps = [
        int(line.split('"step": ')[1].split(",")[0])
        for line in scaled.artifact_text(run_id, "metrics.jsonl").splitlines()
    ]
    assert file_steps == list(range(1, total + 1))
    worker_lines = [
        line for line in scaled.get(f"/api/runs/{run_id}/logs?tail=5000")["lines"] if "[worker]" in line
    ]
    assert any("attempt 2, resuming" in line and "--resume" in line for line in worker_lines)
