"""Sweeps, studies and chains through the API, on SQLite and PostgreSQL (no worker: runs stay queued)."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.runs import queries as run_queries
from server.runs.chains import queue_owed_evaluations
from server.settings import Settings
from server.storage.models import Run, Sweep

TINY = {"dataset": "synthetic", "batch_size": 16, "backbone": "resnet5m", "max_steps": 5}
EVALUATE = {"protocols": ["knn"], "k": 5, "seeds": [0]}


def sweep_body(**body: object) -> dict:
    return {"kind": "pretrain", "config": dict(TINY), **body}


def runs_of(client: TestClient, sweep_id: str) -> list[dict]:
    body = client.get("/api/runs", params={"sweep": sweep_id, "sort": "created_at", "limit": 500}).json()
    return list(body["data"])


def count_rows(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_grid_expands_to_every_combination_with_its_overrides(client: TestClient) -> None:
    response = client.post(
        "/api/sweeps",
        json=sweep_body(
            name="grid", tags=["study-a"], grid={"backbone": ["resnet5m", "mobilevit_xxs"], "seed": [0, 1]}
        ),
    )
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["total"] == 4
    assert sweep["status_counts"] == {"queued": 4}
    assert sweep["done"] is False
    runs = runs_of(client, sweep["id"])
    assert [run["id"] for run in runs] == sweep["run_ids"]
    combos = [(run["config"]["backbone"], run["config"]["seed"]) for run in runs]
    assert combos == [("resnet5m", 0), ("resnet5m", 1), ("mobilevit_xxs", 0), ("mobilevit_xxs", 1)]
    for run in runs:
        assert run["sweep_id"] == sweep["id"]
        assert run["config"]["max_steps"] == 5  # the base config under every combination
        assert set(run["tags"]) == {"study-a", f"sweep:{sweep['id']}"}
        assert run["name"].startswith("grid · backbone=")
    assert client.get(f"/api/sweeps/{sweep['id']}").json()["run_ids"] == sweep["run_ids"]
    listed = client.get("/api/sweeps").json()
    assert listed["count"] == 1
    assert listed["data"][0]["id"] == sweep["id"]


def test_overrides_times_grid(client: TestClient) -> None:
    response = client.post(
        "/api/sweeps",
        json=sweep_body(overrides=[{"lr": 0.001}, {"lr": 0.002, "batch_size": 32}], grid={"seed": [0, 1, 2]}),
    )
    assert response.status_code == 201, response.text
    runs = runs_of(client, response.json()["id"])
    assert [(run["config"]["lr"], run["config"]["batch_size"], run["config"]["seed"]) for run in runs] == [
        (0.001, 16, 0),
        (0.001, 16, 1),
        (0.001, 16, 2),
        (0.002, 32, 0),
        (0.002, 32, 1),
        (0.002, 32, 2),
    ]


def test_an_invalid_combination_creates_no_run_at_all(client: TestClient, session: Session) -> None:
    response = client.post(
        "/api/sweeps", json=sweep_body(grid={"seed": [0, 1], "backbone": ["resnet5m", "resnet9000"]})
    )
    assert response.status_code == 422
    body = response.json()
    assert "\n" not in body["detail"]
    assert body["detail"].startswith("run 2 of 4 (seed=0, backbone=resnet9000)")
    assert "backbone" in body["field_errors"]
    assert "resnet5m" in body["detail"]  # the valid names are listed
    assert count_rows(session, Run) == 0
    assert count_rows(session, Sweep) == 0


def test_size_cap_and_empty_values_are_refused(
    client: TestClient, settings: Settings, session: Session
) -> None:
    cap = settings.max_sweep_runs
    too_big = client.post("/api/sweeps", json=sweep_body(grid={"seed": list(range(cap)), "lr": [0.1, 0.2]}))
    assert too_big.status_code == 409  # the server's limit (a setting), documented as such
    assert f"expands to {2 * cap} runs" in too_big.json()["detail"]
    assert "LOWDINO_MAX_SWEEP_RUNS" in too_big.json()["detail"]
    empty = client.post("/api/sweeps", json=sweep_body(grid={"seed": []}))
    assert empty.status_code == 422
    assert count_rows(session, Run) == 0


def test_cancel_all_cancels_every_queued_run(client: TestClient) -> None:
    sweep = client.post("/api/sweeps", json=sweep_body(grid={"seed": [0, 1, 2]})).json()
    other = client.post("/api/runs", json={"kind": "pretrain", "config": TINY}).json()
    cancelled = client.post(f"/api/sweeps/{sweep['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status_counts"] == {"cancelled": 3}
    assert cancelled.json()["done"] is True
    assert all(run["status"] == "cancelled" for run in runs_of(client, sweep["id"]))
    assert client.get(f"/api/runs/{other['id']}").json()["status"] == "queued"  # not in the sweep
    missing = client.post("/api/sweeps/nope/cancel")
    assert missing.status_code == 404
    assert "GET /api/sweeps" in missing.json()["detail"]


def test_evaluate_block_is_validated_at_submission(client: TestClient) -> None:
    def submit(kind: str, config: dict, evaluate: dict) -> object:
        return client.post("/api/runs", json={"kind": kind, "config": config, "evaluate": evaluate})

    bad_value = submit("pretrain", TINY, {"k": 0})
    assert bad_value.status_code == 422
    assert "evaluate" in bad_value.json()["detail"]
    assert "k" in bad_value.json()["detail"]
    assert "evaluate.k" in bad_value.json()["field_errors"]
    owned = submit("pretrain", TINY, {"checkpoint": "elsewhere"})
    assert owned.status_code == 422
    assert "evaluate.checkpoint" in owned.json()["detail"]
    on_eval = submit("eval", {"dataset": "synthetic", "backbone": "resnet5m"}, EVALUATE)
    assert on_eval.status_code == 422
    assert "only pretrain and distill" in on_eval.json()["detail"]
    ok = submit("pretrain", TINY, EVALUATE)
    assert ok.status_code == 201, ok.text
    # Unset data options come from the training run, so the evaluation measures the same data.
    inherited = {
        key: ok.json()["config"][key] for key in ("dataset", "data_path", "synthetic_size", "device")
    }
    assert ok.json()["evaluate"] == {**inherited, **EVALUATE}
    assert inherited["dataset"] == "synthetic"


def complete(session: Session, run_id: str) -> None:
    run_queries.update_run_status(session, run_id=run_id, status="running")
    run_queries.update_run_status(session, run_id=run_id, status="completed", exit_code=0)


def test_a_completed_chained_run_gets_exactly_one_linked_evaluation(
    client: TestClient, app: FastAPI, session: Session, settings: Settings
) -> None:
    parent = client.post("/api/runs", json={"kind": "pretrain", "config": TINY, "evaluate": EVALUATE}).json()
    celery_app = app.state.celery
    assert queue_owed_evaluations(session, celery_app, settings) == []  # queued: owes nothing yet
    complete(session, parent["id"])

    # Several API processes look at once: one creates the run, the others find it claimed.
    created: list[list[str]] = []

    def look() -> None:
        with app.state.session_factory() as own_session:
            created.append(queue_owed_evaluations(own_session, celery_app, settings))

    threads = [threading.Thread(target=look) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    new_ids = [run_id for ids in created for run_id in ids]
    assert len(new_ids) == 1
    assert queue_owed_evaluations(session, celery_app, settings) == []
    evaluation = client.get(f"/api/runs/{new_ids[0]}").json()
    assert evaluation["kind"] == "eval"
    assert evaluation["parent_id"] == parent["id"]
    assert evaluation["status"] == "queued"
    assert evaluation["config"]["checkpoint"] == str(settings.run_dir(parent["id"]).resolve())
    assert evaluation["config"]["protocols"] == ["knn"]
    assert evaluation["config"]["dataset"] == "synthetic"
    assert client.get(f"/api/runs/{parent['id']}").json()["evaluation_id"] == evaluation["id"]
    assert evaluation["evaluate"] is None
    complete(session, evaluation["id"])  # an evaluation owes no evaluation of its own
    assert queue_owed_evaluations(session, celery_app, settings) == []
    assert [run["id"] for run in client.get("/api/runs", params={"parent": parent["id"]}).json()["data"]] == [
        evaluation["id"]
    ]


def test_cancelled_or_failed_parents_owe_nothing_until_a_resume_completes(
    client: TestClient, app: FastAPI, session: Session, settings: Settings
) -> None:
    parent = client.post("/api/runs", json={"kind": "pretrain", "config": TINY, "evaluate": EVALUATE}).json()
    run_queries.update_run_status(session, run_id=parent["id"], status="running")
    run_queries.update_run_status(session, run_id=parent["id"], status="failed", error="boom")
    assert queue_owed_evaluations(session, app.state.celery, settings) == []
    # Resumed later (same row, same evaluate block) and completed: now exactly one evaluation.
    run_queries.update_run_status(session, run_id=parent["id"], status="queued")
    complete(session, parent["id"])
    assert len(queue_owed_evaluations(session, app.state.celery, settings)) == 1
    assert queue_owed_evaluations(session, app.state.celery, settings) == []


def test_sweep_runs_chain_into_the_sweep(
    client: TestClient, app: FastAPI, session: Session, settings: Settings
) -> None:
    sweep = client.post("/api/sweeps", json=sweep_body(grid={"seed": [0, 1]}, evaluate=EVALUATE)).json()
    for run_id in sweep["run_ids"]:
        complete(session, run_id)
    assert client.get(f"/api/sweeps/{sweep['id']}").json()["done"] is False  # evaluations still owed
    evaluations = queue_owed_evaluations(session, app.state.celery, settings)
    assert len(evaluations) == 2
    after = client.get(f"/api/sweeps/{sweep['id']}").json()
    assert after["total"] == 4
    assert set(evaluations) <= set(after["run_ids"])
    assert after["status_counts"] == {"completed": 2, "queued": 2}


def test_study_preset_queues_the_backbones_and_says_why_baselines_are_skipped(
    client: TestClient, data_root: Path
) -> None:
    studies = client.get("/api/studies").json()["data"]
    study = next(s for s in studies if s["name"] == "reproduce_original_table")
    assert {scale["name"] for scale in study["scales"]} == {"smoke", "cpu_hour", "gpu"}
    assert study["backbones"] == ["mobilevit_s", "resnet5m", "mobilenetv2_100"]
    dino_resnet = next(b for b in study["baselines"] if b["backbone"] == "resnet50")
    assert dino_resnet["available"] is False
    assert "dino_resnet50_pretrain.pth" in dino_resnet["reason"]

    # One baseline's weights present locally: it is evaluated; the others are skipped with a reason.
    (data_root / "weights").mkdir()
    (data_root / "weights" / "dino_resnet50_pretrain.pth").write_bytes(b"weights")
    response = client.post(
        "/api/studies",
        json={"scale": "smoke", "pretrain": {"dataset": "synthetic", "synthetic_size": 200, "max_steps": 2}},
    )
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["study"] == "reproduce_original_table"
    runs = runs_of(client, sweep["id"])
    pretrains = [run for run in runs if run["kind"] == "pretrain"]
    assert [run["backbone"] for run in pretrains] == ["mobilevit_s", "resnet5m", "mobilenetv2_100"]
    for run in pretrains:
        assert run["config"]["max_steps"] == 2
        assert run["config"]["n_epochs"] == 1
        assert run["evaluate"]["knn_protocol"] == "both"
        assert run["evaluate"]["label_fractions"] == [0.1, 0.3]
        assert run["evaluate"]["seeds"] == [0, 1, 2]
    baselines = [run for run in runs if run["kind"] == "eval"]
    assert [run["backbone"] for run in baselines] == ["resnet50"]
    assert baselines[0]["config"]["weights"].endswith("weights/dino_resnet50_pretrain.pth")
    assert baselines[0]["config"]["dataset"] == "synthetic"
    assert set(sweep["skipped"]) == {"ViT-S/14 (DINOv2)", "MobileNetV2 (ImageNet-1k supervised)"}
    assert all("cache" in reason for reason in sweep["skipped"].values())

    wrong_scale = client.post("/api/studies", json={"scale": "huge"})
    assert wrong_scale.status_code == 422
    assert "smoke" in wrong_scale.json()["detail"]
