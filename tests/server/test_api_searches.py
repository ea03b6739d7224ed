"""Recipe searches through the API on SQLite and PostgreSQL, the worker's part played by the test.

The driver's passes are called here one at a time (the app's own loop waits an hour between passes), so
each step of a search is observed: trials queued as runs, validation-kNN records reported, a worse trial
pruned through the cancel path, the next trial queued, one driver per search across processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from lowdino.config import PretrainConfig
from lowdino.config.loading import build_config
from server.campaigns.search_driver import drive_searches
from server.campaigns.study_storage import optuna_storage, study_name
from server.metrics import queries as metric_queries
from server.runs import queries as run_queries
from server.settings import Settings
from server.storage.models import Run, Search, SearchTrial
from server.vocabulary import RunStatus
from worker.outcome import Outcome, pruned

TINY = {
    "dataset": "synthetic",
    "batch_size": 16,
    "backbone": "resnet5m",
    "global_crop_size": 16,
    "local_crop_size": 8,
}
SPACE = {"lr": {"float": [1e-4, 1e-2], "log": True}, "out_dim": {"choice": [64, 128]}}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The app's own driver loop passes once at start-up, then waits: the tests call each pass.
    return settings.model_copy(update={"search_poll_interval": 3600.0})


def search_body(**options: Any) -> dict[str, Any]:
    return {
        "kind": "pretrain",
        "name": "lr-search",
        "config": dict(TINY),
        "space": SPACE,
        "n_trials": 3,
        "max_parallel": 1,
        "budget_steps": 8,
        "reports": 2,
        "sampler": "random",
        "pruner": "median",
        "pruner_startup_trials": 1,
        **options,
    }


def drive(app: FastAPI, owner: str | None = None) -> None:
    state = app.state
    drive_searches(state.session_factory, state.celery, state.settings, owner=owner or state.owner)


def count(session: Session, model: type) -> int:
    session.commit()
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def create(client: TestClient, **options: Any) -> dict[str, Any]:
    response = client.post("/api/searches", json=search_body(**options))
    assert response.status_code == 201, response.text
    return dict(response.json())


def trials(client: TestClient, search_id: str) -> list[dict[str, Any]]:
    return list(client.get(f"/api/searches/{search_id}").json()["trials"])


def play_worker(session: Session, run_id: str, knn: dict[int, float], *, finish: RunStatus | None) -> None:
    """What a worker does: claim the run, store its validation-kNN records, record how it ended."""
    if run_queries.get_run(session, run_id=run_id).status == RunStatus.QUEUED:  # type: ignore[union-attr]
        run_queries.claim_run(session, run_id=run_id, worker_name="w")
    records = [
        {"step": step, "epoch": step / 5, "loss": 5.0, "knn_top1": value} for step, value in knn.items()
    ]
    metric_queries.ingest_metrics(session, run_id=run_id, records=records)
    if finish is not None:
        run_queries.transition_run(session, run_id=run_id, from_statuses=(RunStatus.RUNNING,), status=finish)


# What the document states (an objective, a budget's bounds) is a 422; what only the kind's config model
# knows (which options exist, their ranges, the corners of a space) is the documented 409 for rules the
# schema leaves unstated (server.http.contract). Either way the field is named and nothing is created.
@pytest.mark.parametrize(
    ("options", "field", "status"),
    [
        ({"space": {"lrr": {"float": [0.1, 1]}}}, "space.lrr", 409),
        ({"space": {"lr": {"float": [0.1, 20]}}}, "space.lr", 409),
        ({"space": {"local_crop_size": {"int": [4, 32]}}}, "space.local_crop_size", 409),
        ({"space": {"max_steps": {"int": [4, 32]}}}, "space.max_steps", 409),
        ({"sampler": "grid"}, "space.lr", 409),  # a grid cannot enumerate a float range
        ({"first_trials": [{"lr": 0.5}]}, "first_trials.0.lr", 409),
        ({"objective": "test_top1"}, "objective", 422),
        ({"budget_steps": 0}, "budget_steps", 422),
        ({"trial_minutes": 0}, "trial_minutes", 422),
    ],
)
def test_an_invalid_search_is_refused_naming_the_field_and_creates_nothing(
    client: TestClient,
    app: FastAPI,
    session: Session,
    settings: Settings,
    options: dict[str, Any],
    field: str,
    status: int,
) -> None:
    studies = set(optuna.get_all_study_names(storage=optuna_storage(settings.database_url)))
    response = client.post("/api/searches", json=search_body(**options))
    assert response.status_code == status, response.text
    body = response.json()
    assert field in body["detail"]
    assert "\n" not in body["detail"]
    if field.startswith(("space", "first_trials")):
        assert field in body["field_errors"]
    drive(app)
    assert count(session, Search) == 0
    assert count(session, Run) == 0
    assert set(optuna.get_all_study_names(storage=optuna_storage(settings.database_url))) == studies


def test_trials_are_tagged_runs_and_one_process_at_a_time_drives_a_search(
    client: TestClient, app: FastAPI, session: Session, settings: Settings
) -> None:
    search = create(client, max_parallel=2, n_trials=4, trial_minutes=1.5)
    assert search["state"] == "running"
    assert search["search"]["trial_minutes"] == 1.5
    assert search["trials"] == []
    assert search["total"] == 4

    drive(app)
    listed = trials(client, search["id"])
    assert [(trial["number"], trial["state"], trial["run_status"]) for trial in listed] == [
        (0, "running", "queued"),
        (1, "running", "queued"),
    ]
    for trial in listed:
        run = client.get(f"/api/runs/{trial['run_id']}").json()
        assert set(run["tags"]) == {f"search:{search['id']}", f"trial:{trial['number']}"}
        assert run["name"] == f"lr-search · trial {trial['number']}"
        config = run["config"]
        assert (config["max_steps"], config["knn_every_steps"], config["knn_monitor"]) == (8, 4, True)
        assert config["max_minutes"] == 1.5  # the trainer ends the trial, completed, at its time limit
        assert config["lr"] == trial["params"]["lr"]
        assert config["out_dim"] == trial["params"]["out_dim"]

    # Another API process finds the lease taken: it asks nothing, queues nothing.
    drive(app, owner="another-process")
    assert count(session, Run) == 2

    # A process that died between asking a trial and recording it: the lease holder gives it its run.
    study = optuna.load_study(
        study_name=study_name(search["id"]), storage=optuna_storage(settings.database_url)
    )
    orphan = study.ask()
    orphan_number = orphan.number
    session.execute(update(Search).values(lease_owner=None, lease_until=None))  # its lease lapsed
    session.commit()
    drive(app, owner="another-process")
    drive(app, owner="another-process")
    numbers = [trial["number"] for trial in trials(client, search["id"])]
    assert numbers == [0, 1, orphan_number]
    assert count(session, Run) == 3  # each trial exactly one run
    assert len(study.get_trials(deepcopy=False)) == 3


def test_median_pruner_prunes_a_worse_trial_through_the_cancel_path_and_queues_the_next(
    client: TestClient, app: FastAPI, session: Session, settings: Settings
) -> None:
    search = create(client)
    drive(app)
    first = trials(client, search["id"])[0]
    play_worker(session, first["run_id"], {4: 30.0, 5: 33.0, 8: 40.0}, finish=RunStatus.COMPLETED)
    drive(app)
    first, second = trials(client, search["id"])
    assert (first["state"], first["value"], first["intermediate"]) == (
        "complete",
        40.0,
        [[4, 30.0], [5, 33.0], [8, 40.0]],
    )
    assert (second["state"], second["run_status"]) == ("running", "queued")

    play_worker(session, second["run_id"], {4: 10.0}, finish=None)  # running, behind at the first report
    drive(app)
    first, second, third = trials(client, search["id"])
    assert second["state"] == "pruned"
    assert second["pruned_step"] == 4
    assert "pruned at step 4 by the median pruner" in second["reason"]
    assert second["value"] is None  # a pruned trial never counts as a result
    assert (third["state"], third["run_status"]) == ("running", "queued")  # the worker's next trial

    run = run_queries.require_run(session, run_id=second["run_id"])
    session.refresh(run)
    assert run.cancel_requested
    assert run.prune_reason == second["reason"]
    assert (Path(run.output_dir or "") / "STOP").is_file()  # the trainer's cancel path
    # The worker sees the trainer stop (exit 75) and ends the run pruned, with the reason.
    outcome = pruned(Outcome(RunStatus.CANCELLED, "cancelled; the run saved a checkpoint"), run.prune_reason)
    run_queries.transition_run(
        session,
        run_id=run.id,
        from_statuses=(RunStatus.RUNNING,),
        status=outcome.status,
        error=outcome.message,
    )
    shown = client.get(f"/api/runs/{run.id}").json()
    assert (shown["status"], shown["error"]) == ("pruned", second["reason"])
    assert "pruned" in client.get("/api/catalog").json()["statuses"]

    study = optuna.load_study(
        study_name=study_name(search["id"]), storage=optuna_storage(settings.database_url)
    )
    states = [trial.state for trial in study.get_trials(deepcopy=False)]
    assert states[:2] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
    assert study.trials[0].value == 40.0
    assert study.trials[1].intermediate_values == {4: 10.0}

    play_worker(session, third["run_id"], {4: 35.0, 8: 45.0}, finish=RunStatus.COMPLETED)
    drive(app)
    shown = client.get(f"/api/searches/{search['id']}").json()
    assert shown["state"] == "done"
    assert shown["state_counts"] == {"complete": 2, "pruned": 1}
    assert shown["best"]["number"] == 2
    assert shown["best"]["value"] == 45.0


def test_stop_cancels_the_active_trials_and_asks_no_more(
    client: TestClient, app: FastAPI, session: Session
) -> None:
    search = create(client, max_parallel=2, n_trials=5, pruner="none")
    drive(app)
    first, second = trials(client, search["id"])
    play_worker(session, first["run_id"], {4: 30.0}, finish=None)
    response = client.post(f"/api/searches/{search['id']}/stop")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "stopped"
    assert [trial["state"] for trial in response.json()["trials"]] == ["fail", "fail"]
    assert client.get(f"/api/runs/{second['run_id']}").json()["status"] == "cancelled"  # it was queued
    running = client.get(f"/api/runs/{first['run_id']}").json()
    assert running["cancel_requested"] is True
    drive(app)
    assert count(session, Run) == 2  # a stopped search asks nothing more
    assert client.post(f"/api/searches/{search['id']}/stop").status_code == 409


def test_promote_is_the_only_way_to_the_test_split_and_presets_say_how_they_were_found(
    client: TestClient, app: FastAPI, session: Session
) -> None:
    search = create(client, n_trials=2, pruner="none", trial_minutes=2)
    assert (
        client.post(f"/api/searches/{search['id']}/promote", json={}).status_code == 409
    )  # nothing done yet
    drive(app)
    play_worker(
        session, trials(client, search["id"])[0]["run_id"], {4: 20.0, 8: 25.0}, finish=RunStatus.COMPLETED
    )
    drive(app)
    play_worker(
        session, trials(client, search["id"])[1]["run_id"], {4: 30.0, 8: 35.0}, finish=RunStatus.COMPLETED
    )
    drive(app)
    shown = client.get(f"/api/searches/{search['id']}").json()
    assert shown["state"] == "done"
    best = shown["best"]
    assert best["number"] == 1
    # Before Promote, nothing of the search evaluates anything: no eval run, no chained evaluate block.
    assert client.get("/api/runs", params={"kind": "eval"}).json()["count"] == 0
    assert all(client.get(f"/api/runs/{t['run_id']}").json()["evaluate"] is None for t in shown["trials"])

    importances = client.get(f"/api/searches/{search['id']}/importances").json()
    assert set(importances["importances"]) <= {"lr", "out_dim"}

    response = client.post(
        f"/api/searches/{search['id']}/promote",
        json={"seeds": [0, 1], "options": {"n_epochs": 3}, "evaluate": {"protocols": ["knn"], "k": 5}},
    )
    assert response.status_code == 201, response.text
    promoted = [client.get(f"/api/runs/{run_id}").json() for run_id in response.json()["run_ids"]]
    assert [run["config"]["seed"] for run in promoted] == [0, 1]
    for run in promoted:
        assert run["config"]["lr"] == best["params"]["lr"]
        assert run["config"]["n_epochs"] == 3
        assert run["config"]["max_steps"] is None  # full length, not the trial's budget
        assert run["config"]["max_minutes"] is None  # nor its time limit
        assert run["config"]["knn_every_steps"] is None
        assert run["evaluate"]["protocols"] == ["knn"]  # the chained test-split evaluation
        assert {f"search:{search['id']}", "promoted"} <= set(run["tags"])

    preset = client.get(f"/api/searches/{search['id']}/preset")
    assert preset.status_code == 200
    text = preset.text
    assert text.startswith(
        f"# Found by recipe search {search['id']} (lr-search): trial 1, the best of 2 trials"
    )
    assert (
        "validation kNN top-1 (the test split was not looked at) = 35.00 % after 8 steps (or 2 minutes if that "
        "comes first) per trial" in text
    )
    assert "max_minutes" not in yaml.safe_load(text)  # the recipe, not the search's budget
    assert yaml.safe_load(text)["lr"] == best["params"]["lr"]
    path = Path(app.state.settings.home) / "preset.yaml"
    path.write_text(text)
    assert build_config(PretrainConfig, file=path).out_dim == best["params"]["out_dim"]
    assert count(session, SearchTrial) == 2
