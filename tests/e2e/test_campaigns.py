"""End to end: chains and sweeps through the real API process and real `lowdino worker` processes.

A pretrain run with an `evaluate` block completes, the API queues its evaluation, a worker runs it,
and the two stay linked; a worker killed during the parent and a resume still give one evaluation.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2elib import FINAL_STATUSES, HEARTBEAT_TIMEOUT_S, Stack, make_stack, tiny_pretrain, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.services]

# Small enough for seconds on a CPU: kNN on the frozen features and one linear probe, two seeds.
EVALUATE = {
    "protocols": ["knn", "linear"],
    "knn_protocol": "both",
    "label_fractions": [0.5],
    "seeds": [0, 1],
    "k": 5,
    "linear_epochs": 5,
    "batch_size": 64,
}


def chained_stack(home: Path, kind: str, worker: str) -> Iterator[Stack]:
    stack = make_stack(home, kind)
    stack.env["LOWDINO_CHAIN_POLL_INTERVAL"] = "0.3"
    try:
        stack.start_api()
        stack.start_worker(worker)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from chained_stack(tmp_path_factory.mktemp("chain-embedded"), "embedded", "c1")


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from chained_stack(tmp_path_factory.mktemp("chain-scaled"), "scaled", "c2")


def submit_chained(stack: Stack, config: dict[str, Any], name: str) -> str:
    body = {"kind": "pretrain", "config": config, "name": name, "evaluate": EVALUATE}
    return str(stack.post("/api/runs", body, expect=201)["id"])


def evaluations_of(stack: Stack, run_id: str) -> list[dict[str, Any]]:
    return list(stack.get(f"/api/runs?parent={run_id}&kind=eval")["data"])


def finished_evaluation(stack: Stack, parent_id: str) -> dict[str, Any]:
    evaluation_id = wait_for(
        lambda: stack.run(parent_id)["evaluation_id"], "the chained evaluation to be queued", deadline_s=60
    )
    evaluation = stack.wait_status(evaluation_id, FINAL_STATUSES, deadline_s=180)
    assert evaluation["status"] == "completed", evaluation["error"]
    return evaluation


def results_means(stack: Stack, run_id: str) -> dict[str, float]:
    results = json.loads(stack.artifact_text(run_id, "results.json"))
    return {f"{row['protocol']}@{row['label_fraction']}": row["mean"] for row in results["results"]}


@pytest.mark.parametrize("stack_kind", ["embedded", "scaled"])
def test_completed_pretrain_runs_its_linked_evaluation_once(
    stack_kind: str, request: pytest.FixtureRequest
) -> None:
    stack: Stack = request.getfixturevalue(stack_kind)
    parent_id = submit_chained(stack, tiny_pretrain(), name=f"chain-{stack_kind}")
    parent = stack.wait_status(parent_id, FINAL_STATUSES, deadline_s=180)
    assert parent["status"] == "completed", parent["error"]
    evaluation = finished_evaluation(stack, parent_id)
    assert evaluation["parent_id"] == parent_id
    assert evaluation["config"]["checkpoint"] == parent["output_dir"]
    means = results_means(stack, evaluation["id"])
    assert set(means) == {"knn@1.0", "knn_seed@1.0", "linear@0.5"}
    assert all(0.0 <= value <= 100.0 for value in means.values())
    assert [run["id"] for run in evaluations_of(stack, parent_id)] == [evaluation["id"]]
    assert evaluations_of(stack, evaluation["id"]) == []  # an evaluation chains nothing itself

    # The report over the training run finds its evaluation and shows exactly its results.json means.
    report = stack.get(f"/api/report?runs={parent_id}")
    measured = [row for row in report["rows"] if row["kind"] == "measured"]
    assert len(measured) == 1
    cells = {
        f"{cell['protocol']}@{cell['label_fraction']}": cell
        for cell in [*measured[0]["cells"].values(), *measured[0]["other"]]
        if cell is not None
    }
    assert {key: cell["mean"] for key, cell in cells.items()} == means
    assert all(cell["run_ids"] == [evaluation["id"]] for cell in cells.values())


def test_worker_killed_during_the_parent_then_resume_still_gives_one_evaluation(scaled: Stack) -> None:
    parent_id = submit_chained(scaled, tiny_pretrain(n_epochs=6, checkpoint_every_steps=3), name="chain-kill")
    wait_for(
        lambda: int(scaled.run(parent_id)["progress"]["step"] or 0) >= 4,
        "step 4",
        deadline_s=150,
        every_s=0.2,
    )
    worker = scaled.workers[-1]
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    interrupted = scaled.wait_status(parent_id, {"interrupted"}, deadline_s=HEARTBEAT_TIMEOUT_S + 30)
    assert interrupted["evaluation_id"] is None
    assert evaluations_of(scaled, parent_id) == []  # an interrupted run owes nothing yet

    scaled.post(f"/api/runs/{parent_id}/resume")
    scaled.start_worker("c3")
    parent = scaled.wait_status(parent_id, FINAL_STATUSES, deadline_s=180)
    assert parent["status"] == "completed", parent["error"]
    evaluation = finished_evaluation(scaled, parent_id)
    assert [run["id"] for run in evaluations_of(scaled, parent_id)] == [evaluation["id"]]
