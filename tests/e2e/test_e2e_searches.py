"""End to end: recipe searches through the real API process, real `lowdino worker` processes and the real
trainer, on SQLite (embedded) and PostgreSQL + Redis (scaled).

Trials are tiny pretraining runs (synthetic 16 px images, resnet5m, 6 steps, the kNN monitor on a
20-image validation split every 3 steps), so a search of a few trials takes tens of seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import pytest
from e2elib import FINAL_STATUSES, Stack, make_stack, tiny_pretrain, wait_for

from server.campaigns.study_storage import optuna_storage, study_name

pytestmark = [pytest.mark.slow, pytest.mark.services]

# 200 training images (12 steps per epoch) and a 100-image validation split: kNN in steps of 1 %.
BASE = tiny_pretrain(
    synthetic_size=300, val_fraction=0.34, knn_monitor=True, memory_check=False, batch_size_eval=128
)
SPACE = {"lr": {"float": [1e-4, 1e-2], "log": True}, "momentum_teacher": {"choice": [0.9, 0.99]}}
WIDE = {"lr": {"float": [1e-4, 1.0], "log": True}, "momentum_teacher": {"choice": [0.0, 0.9]}}
# Made worse on purpose: a huge learning rate copied straight into the teacher (momentum 0) leaves the
# monitored teacher near chance (10 % at step 3 in a probe, against 19 % for the sane trial).
SANE = {"lr": 0.005, "momentum_teacher": 0.9}
WRECKED = {"lr": 1.0, "momentum_teacher": 0.0}


def search_stack(home: Path, kind: str) -> Iterator[Stack]:
    stack = make_stack(home, kind)
    stack.env["LOWDINO_SEARCH_POLL_INTERVAL"] = "0.3"
    stack.env["LOWDINO_SEARCH_LEASE_S"] = "5"  # a killed API's searches move on within seconds
    try:
        stack.start_api()
        stack.start_worker("s1")
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from search_stack(tmp_path_factory.mktemp("search-embedded"), "embedded")


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from search_stack(tmp_path_factory.mktemp("search-scaled"), "scaled")


def submit(stack: Stack, **options: Any) -> str:
    body = {
        "kind": "pretrain",
        "config": BASE,
        "space": SPACE,
        "budget_steps": 6,
        "reports": 2,
        "sampler": "random",
        "pruner": "none",
        **options,
    }
    return str(stack.post("/api/searches", body, expect=201)["id"])


def wait_done(stack: Stack, search_id: str, deadline_s: float = 300) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        search = stack.get(f"/api/searches/{search_id}")
        return search if search["state"] == "done" else None

    try:
        return dict(wait_for(done, f"search {search_id} to finish", deadline_s=deadline_s, every_s=0.3))
    except AssertionError as exc:
        logs = "\n".join(stack.tail(p.name, 30) for p in stack.home.glob("*.log"))
        raise AssertionError(f"{exc}\n{stack.get(f'/api/searches/{search_id}')}\n{logs}") from exc


def knn_records(stack: Stack, run_id: str) -> dict[int, float]:
    lines = stack.artifact_text(run_id, "metrics.jsonl").splitlines()
    return {r["step"]: r["knn_top1"] for r in map(json.loads, lines) if r.get("knn_top1") is not None}


def study_of(stack: Stack, search_id: str) -> Any:
    return optuna.load_study(study_name=study_name(search_id), storage=optuna_storage(stack.database_url))


def search_runs(stack: Stack, search_id: str) -> list[dict[str, Any]]:
    return list(stack.get(f"/api/runs?tag=search:{search_id}&limit=100")["data"])


@pytest.mark.parametrize("stack_kind", ["embedded", "scaled"])
def test_a_four_trial_search_completes_with_each_value_in_the_study_and_as_a_run(
    stack_kind: str, request: pytest.FixtureRequest
) -> None:
    stack: Stack = request.getfixturevalue(stack_kind)
    search_id = submit(stack, n_trials=4, max_parallel=2)
    search = wait_done(stack, search_id)
    assert search["state_counts"] == {"complete": 4}, [(t["state"], t["reason"]) for t in search["trials"]]
    study = study_of(stack, search_id)
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    for trial in search["trials"]:
        run = stack.run(trial["run_id"])
        assert run["status"] == "completed"
        assert run["config"]["lr"] == trial["params"]["lr"]
        assert run["config"]["momentum_teacher"] == trial["params"]["momentum_teacher"]
        measured = knn_records(stack, trial["run_id"])
        assert sorted(measured)[-1] == 6
        # The same figure three times: the run's last validation kNN, the trial's value, the study's.
        assert trial["value"] == pytest.approx(measured[6])
        assert study.trials[trial["number"]].value == pytest.approx(measured[6])
    assert len(search_runs(stack, search_id)) == 4
    # No test split anywhere: no evaluation ran, no trial has a results.json.
    assert stack.get("/api/runs?kind=eval")["count"] == 0
    assert all("results.json" not in stack.artifact_names(t["run_id"]) for t in search["trials"])


def test_median_pruner_prunes_the_worse_trial_and_its_worker_takes_the_next(embedded: Stack) -> None:
    search_id = submit(
        embedded,
        space=WIDE,
        n_trials=3,
        pruner="median",
        pruner_startup_trials=1,
        first_trials=[SANE, WRECKED],
    )
    search = wait_done(embedded, search_id)
    good, bad, after = search["trials"]
    assert good["state"] == "complete"
    assert bad["state"] == "pruned", (good["intermediate"], bad["intermediate"])
    assert bad["pruned_step"] == 3
    pruned_run = embedded.run(bad["run_id"])
    assert pruned_run["status"] == "pruned"
    assert pruned_run["error"].startswith("pruned at step 3 by the median pruner")
    # Whether STOP lands before the last of 6 steps depends on the machine's load (a 6-step trial can end
    # within one driver pass), so the step it stopped at is not asserted; the status and reason are.
    assert after["state"] in ("complete", "pruned")
    next_run = embedded.run(after["run_id"])
    gap = datetime.fromisoformat(next_run["started_at"]) - datetime.fromisoformat(pruned_run["finished_at"])
    assert gap.total_seconds() < 15  # the worker went on to the next trial


def test_an_api_restart_mid_search_loses_no_trial_and_runs_none_twice(scaled: Stack) -> None:
    search_id = submit(scaled, n_trials=3, max_parallel=1)
    wait_for(
        lambda: any(r["status"] == "running" for r in search_runs(scaled, search_id)), "a trial running", 120
    )
    scaled.stop_api()
    scaled.start_api()
    search = wait_done(scaled, search_id)
    assert [trial["number"] for trial in search["trials"]] == [0, 1, 2]
    runs = search_runs(scaled, search_id)
    assert len(runs) == 3
    assert all(run["status"] in FINAL_STATUSES for run in runs)
    assert all(run["attempt"] == 1 for run in runs)
    assert len(study_of(scaled, search_id).trials) == 3
