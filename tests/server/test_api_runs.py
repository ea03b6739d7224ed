"""POST/GET /api/runs and the cancel / resume / clone / delete state rules, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serverlib import extract_cifar, make_run_files

from server.events import queries as event_queries
from server.metrics import queries as metric_queries
from server.runs import queries as run_queries
from server.settings import Settings

TINY = {"dataset": "synthetic", "batch_size": 16, "backbone": "resnet5m", "max_steps": 5}


def submit(client: TestClient, **body: object) -> dict:
    payload = {"kind": "pretrain", "config": dict(TINY), **body}
    response = client.post("/api/runs", json=payload)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_queued_run_with_validated_config(client: TestClient, settings: Settings) -> None:
    run = submit(client, name="first", tags=["sweep", "tiny"])
    assert run["status"] == "queued"
    assert run["kind"] == "pretrain"
    assert run["tags"] == ["sweep", "tiny"]
    assert run["backbone"] == "resnet5m"
    # Defaults of the library's model are filled in; the run directory is chosen by the server.
    assert run["config"]["n_epochs"] == 50
    assert run["config"]["output_dir"] == str(settings.run_dir(run["id"]))
    assert run["queue"] == "cpu"
    assert run["progress"] == {"step": None, "total_steps": None, "fraction": None, "eta_seconds": None}
    fetched = client.get(f"/api/runs/{run['id']}").json()
    assert fetched["config"] == run["config"]
    assert fetched["last_event_id"] is not None


def test_create_sends_task_by_name_to_the_embedded_broker(client: TestClient, broker_url: str) -> None:
    cpu = submit(client)
    gpu = submit(client, config={**TINY, "device": "cuda"})
    assert gpu["queue"] == "gpu"
    ids_by_queue: dict[str, list[str]] = {}
    connection = sqlite3.connect(broker_url.removeprefix("sqla+sqlite:///"))
    rows = connection.execute(
        "SELECT q.name, m.payload FROM kombu_message m JOIN kombu_queue q ON m.queue_id = q.id"
    ).fetchall()
    connection.close()
    for queue, payload in rows:
        ids_by_queue.setdefault(queue, []).append(payload)
    assert any(cpu["id"] in payload and '"lowdino.run"' in payload for payload in ids_by_queue["cpu"])
    assert any(gpu["id"] in payload for payload in ids_by_queue["gpu"])


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"n_epochs": "many"}, "n_epochs"),
        ({"bach_size": 8}, "bach_size"),
        ({"dataset": "imagenet-21k"}, "dataset"),
        ({"n_epochs": "5"}, "n_epochs"),  # strict JSON: a string is not an integer
        ({"knn_monitor": 1}, "knn_monitor"),
        ({"device_ids": "0;1"}, "device_ids"),
        ({"output_dir": None}, "output_dir"),  # server-owned: refused even when null
        ({"tensorboard_dir": "../out"}, "tensorboard_dir"),
        ({"local_crop_size": 64, "global_crop_size": 32}, "local_crop_size"),
    ],
)
def test_invalid_config_is_refused_naming_the_field(client: TestClient, config: dict, field: str) -> None:
    response = client.post("/api/runs", json={"kind": "pretrain", "config": {**TINY, **config}})
    # A comparison of two options is a 409: JSON Schema cannot state it, so the document allows it.
    assert response.status_code == (409 if "local_crop_size" in config else 422)
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert "\n" not in detail
    assert field in detail
    assert client.get("/api/runs").json()["count"] == 0


def test_each_kind_uses_its_own_model(client: TestClient) -> None:
    response = client.post("/api/runs", json={"kind": "eval", "config": {"dataset": "synthetic"}})
    assert response.status_code == 422
    assert "checkpoint" in response.json()["detail"]  # EvalConfig needs a checkpoint or a backbone
    run = client.post(
        "/api/runs", json={"kind": "eval", "config": {"dataset": "synthetic", "backbone": "resnet5m"}}
    )
    assert run.status_code == 201
    assert run.json()["config"]["protocols"] == ["knn", "linear"]
    distill = client.post(
        "/api/runs",
        json={
            "kind": "distill",
            "config": {"dataset": "synthetic", "teacher": "resnet5m", "student": "resnet5m"},
        },
    )
    assert distill.status_code == 422
    assert "student" in distill.json()["detail"]


def test_unknown_kind_and_body_keys_are_rejected(client: TestClient) -> None:
    assert client.post("/api/runs", json={"kind": "train", "config": {}}).status_code == 422
    assert client.post("/api/runs", json={"kind": "pretrain", "confg": {}}).status_code == 422


@pytest.mark.parametrize("field", ["output_dir", "resume"])
def test_server_owned_fields_are_rejected(client: TestClient, field: str) -> None:
    value = "/tmp/elsewhere" if field == "output_dir" else True
    response = client.post("/api/runs", json={"kind": "pretrain", "config": {**TINY, field: value}})
    assert response.status_code == 422
    assert f"config.{field}" in response.json()["detail"]


def test_data_paths_must_lie_under_data_roots(client: TestClient, data_root: Path, tmp_path: Path) -> None:
    folder = extract_cifar(data_root, per_class=2)
    ok = client.post(
        "/api/runs",
        json={"kind": "pretrain", "config": {**TINY, "dataset": "imagefolder", "data_path": str(folder)}},
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["config"]["data_path"] == str(folder.resolve())

    outside = tmp_path / "outside"
    outside.mkdir()
    (data_root / "sneaky").symlink_to(outside)
    for path in ("/etc", str(data_root / ".." / "outside"), str(data_root / "sneaky"), "../../../etc"):
        response = client.post(
            "/api/runs",
            json={"kind": "pretrain", "config": {**TINY, "dataset": "imagefolder", "data_path": path}},
        )
        assert response.status_code == 409, path  # this server's roots: documented, no schema states them
        detail = response.json()["detail"]
        assert "config.data_path" in detail
        assert "LOWDINO_DATA_ROOTS" in detail

    # "~name" of a user this server does not have: a 409 naming the field, not a 500 from expanduser.
    no_user = client.post(
        "/api/runs",
        json={"kind": "eval", "config": {"dataset": "synthetic", "checkpoint": "~nosuchuser9/c.pth"}},
    )
    assert no_user.status_code == 409, no_user.text
    assert "config.checkpoint" in no_user.json()["detail"]
    assert "nosuchuser9" in no_user.json()["detail"]


def test_relative_data_path_resolves_inside_a_root(client: TestClient, data_root: Path) -> None:
    extract_cifar(data_root, per_class=1)
    response = client.post(
        "/api/runs",
        json={"kind": "pretrain", "config": {**TINY, "dataset": "imagefolder", "data_path": "cifar10"}},
    )
    assert response.status_code == 201, response.text
    assert response.json()["config"]["data_path"] == str((data_root / "cifar10").resolve())


def test_eval_checkpoint_may_name_a_run(client: TestClient, settings: Settings) -> None:
    trained = submit(client)
    response = client.post(
        "/api/runs", json={"kind": "eval", "config": {"dataset": "synthetic", "checkpoint": trained["id"]}}
    )
    assert response.status_code == 201, response.text
    assert response.json()["config"]["checkpoint"] == str(settings.run_dir(trained["id"]).resolve())
    escape = client.post(
        "/api/runs", json={"kind": "eval", "config": {"dataset": "synthetic", "checkpoint": "/etc/passwd"}}
    )
    assert escape.status_code == 409  # outside this server's roots
    assert "config.checkpoint" in escape.json()["detail"]


def test_list_filters_sort_and_pages(client: TestClient, session: object) -> None:
    a = submit(client, name="alpha resnet", tags=["x"])
    b = submit(client, name="beta mobilevit", tags=["y"], config={**TINY, "backbone": "mobilevit_xxs"})
    c = client.post(
        "/api/runs",
        json={
            "kind": "eval",
            "name": "gamma",
            "tags": ["x"],
            "config": {"dataset": "synthetic", "backbone": "resnet5m"},
        },
    ).json()
    run_queries.update_run_status(session, run_id=b["id"], status="running")  # type: ignore[arg-type]

    def ids(**params: object) -> list[str]:
        body = client.get("/api/runs", params=params).json()
        assert body["count"] >= len(body["data"])
        return [run["id"] for run in body["data"]]

    assert ids() == [c["id"], b["id"], a["id"]]  # newest first
    assert ids(sort="created_at") == [a["id"], b["id"], c["id"]]
    assert ids(sort="name") == [a["id"], b["id"], c["id"]]
    assert ids(status="running") == [b["id"]]
    assert set(ids(status=["running", "queued"])) == {a["id"], b["id"], c["id"]}
    assert ids(kind="eval") == [c["id"]]
    assert set(ids(tag="x")) == {a["id"], c["id"]}
    assert ids(tag="nope") == []
    assert ids(backbone="mobilevit_xxs") == [b["id"]]
    assert set(ids(backbone="resnet5m")) == {a["id"], c["id"]}
    assert ids(q="ALPHA") == [a["id"]]
    assert ids(q="%") == []  # LIKE wildcards are literal
    page = client.get("/api/runs", params={"limit": 2, "offset": 1, "sort": "created_at"}).json()
    assert [run["id"] for run in page["data"]] == [b["id"], c["id"]]
    assert page["count"] == 3
    assert client.get("/api/runs", params={"sort": "config"}).status_code == 422
    assert client.get("/api/runs", params={"status": "sleeping"}).status_code == 422


def test_unknown_run_is_404(client: TestClient) -> None:
    for method, path in [
        ("get", "/api/runs/nope"),
        ("post", "/api/runs/nope/cancel"),
        ("post", "/api/runs/nope/resume"),
        ("post", "/api/runs/nope/clone"),
        ("delete", "/api/runs/nope"),
        ("get", "/api/runs/nope/metrics"),
        ("get", "/api/runs/nope/logs"),
        ("get", "/api/runs/nope/artifacts"),
        ("get", "/api/runs/nope/events"),
    ]:
        response = client.request(method, path)
        assert response.status_code == 404, (method, path)
        assert "nope" in response.json()["detail"]


def test_cancel_queued_run_is_immediate(client: TestClient, settings: Settings) -> None:
    run = submit(client)
    cancelled = client.post(f"/api/runs/{run['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["finished_at"] is not None
    assert not (settings.run_dir(run["id"]) / "STOP").exists()
    assert client.post(f"/api/runs/{run['id']}/cancel").status_code == 409


def test_cancel_running_run_is_cooperative(client: TestClient, session: object, settings: Settings) -> None:
    run = submit(client)
    run_queries.claim_run(session, run_id=run["id"], worker_name="w1")  # type: ignore[arg-type]
    response = client.post(f"/api/runs/{run['id']}/cancel")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "running"
    assert body["cancel_requested"] is True
    assert (settings.run_dir(run["id"]) / "STOP").is_file()


def test_resume_rules(client: TestClient, session: object, settings: Settings) -> None:
    run = submit(client)
    run_id = run["id"]
    run_queries.claim_run(session, run_id=run_id, worker_name="w1")  # type: ignore[arg-type]
    assert client.post(f"/api/runs/{run_id}/resume").status_code == 409  # running
    # Killed before its first checkpoint: queued again in its own directory, where the worker starts
    # it from step 0 (test_worker_supervisor: test_resume_without_a_checkpoint_starts_over).
    make_run_files(settings.run_dir(run_id), checkpoint=False)
    lost = {"step": 3, "latest_metrics": {"loss": 2.0}, "error": "worker died"}
    run_queries.update_run_status(session, run_id=run_id, status="interrupted", **lost)  # type: ignore[arg-type]
    restarted = client.post(f"/api/runs/{run_id}/resume")
    assert restarted.status_code == 200, restarted.text
    body = restarted.json()
    assert (body["status"], body["config"]["resume"], body["attempt"]) == ("queued", True, 2)
    assert (body["progress"]["step"], body["latest_metrics"]) == (None, {})
    assert body["config"]["output_dir"] == run["config"]["output_dir"]
    run_queries.claim_run(session, run_id=run_id, worker_name="w1")  # type: ignore[arg-type]
    run_queries.update_run_status(session, run_id=run_id, status="interrupted", error="worker died")  # type: ignore[arg-type]

    make_run_files(settings.run_dir(run_id))
    (settings.run_dir(run_id) / "STOP").touch()
    resumed = client.post(f"/api/runs/{run_id}/resume").json()
    assert resumed["status"] == "queued"
    assert resumed["config"]["resume"] is True
    assert resumed["config"]["output_dir"] == run["config"]["output_dir"]
    assert resumed["attempt"] == 3
    assert resumed["error"] is None
    assert not (settings.run_dir(run_id) / "STOP").exists()

    run_queries.claim_run(session, run_id=run_id, worker_name="w1")  # type: ignore[arg-type]
    run_queries.update_run_status(session, run_id=run_id, status="completed", exit_code=0)  # type: ignore[arg-type]
    completed = client.post(f"/api/runs/{run_id}/resume")
    assert completed.status_code == 409
    assert "clone" in completed.json()["detail"]


def test_eval_runs_cannot_resume(client: TestClient, session: object, settings: Settings) -> None:
    run = client.post(
        "/api/runs", json={"kind": "eval", "config": {"dataset": "synthetic", "backbone": "resnet5m"}}
    ).json()
    run_queries.claim_run(session, run_id=run["id"], worker_name="w1")  # type: ignore[arg-type]
    run_queries.update_run_status(session, run_id=run["id"], status="failed")  # type: ignore[arg-type]
    make_run_files(settings.run_dir(run["id"]))
    response = client.post(f"/api/runs/{run['id']}/resume")
    assert response.status_code == 409
    assert "clone" in response.json()["detail"]


def test_clone_copies_config_with_overrides(client: TestClient, settings: Settings) -> None:
    original = submit(client, name="base", tags=["a"])
    clone = client.post(f"/api/runs/{original['id']}/clone", json={"config": {"batch_size": 32}})
    assert clone.status_code == 201
    body = clone.json()
    assert body["id"] != original["id"]
    assert body["parent_id"] == original["id"]
    assert body["status"] == "queued"
    assert body["tags"] == ["a"]
    assert body["name"] == "base (copy)"
    assert body["config"]["batch_size"] == 32
    assert body["config"]["backbone"] == original["config"]["backbone"]
    assert body["config"]["output_dir"] == str(settings.run_dir(body["id"]))
    bad = client.post(f"/api/runs/{original['id']}/clone", json={"config": {"batch_size": -1}})
    assert bad.status_code == 422
    assert "batch_size" in bad.json()["detail"]
    plain = client.post(f"/api/runs/{original['id']}/clone")
    assert plain.status_code == 201
    assert plain.json()["config"]["batch_size"] == 16


def test_delete_removes_row_metrics_and_files(
    client: TestClient, session: object, settings: Settings
) -> None:
    run = submit(client)
    run_id = run["id"]
    run_queries.claim_run(session, run_id=run_id, worker_name="w1")  # type: ignore[arg-type]
    metric_queries.ingest_metrics(session, run_id=run_id, records=[{"step": 1, "loss": 2.0}])  # type: ignore[arg-type]
    make_run_files(settings.run_dir(run_id))
    assert client.delete(f"/api/runs/{run_id}").status_code == 409  # running
    run_queries.update_run_status(session, run_id=run_id, status="failed")  # type: ignore[arg-type]
    assert client.delete(f"/api/runs/{run_id}").status_code == 204
    assert client.get(f"/api/runs/{run_id}").status_code == 404
    assert not settings.run_dir(run_id).exists()
    assert metric_queries.count_points(session, run_id=run_id) == 0  # type: ignore[arg-type]
    assert event_queries.events_after(session, run_id=run_id) == []  # type: ignore[arg-type]


def test_delete_never_touches_directories_outside_runs_dir(
    client: TestClient, session: object, tmp_path: Path
) -> None:
    run = submit(client)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    # Even if a row pointed elsewhere (a bug or an old database), deletion stays inside runs_dir.
    run_queries.update_run_status(session, run_id=run["id"], status="failed", output_dir=str(precious))  # type: ignore[arg-type]
    assert client.delete(f"/api/runs/{run['id']}").status_code == 204
    assert (precious / "keep.txt").read_text() == "mine"


def test_broker_down_fails_the_run_with_503(settings: Settings) -> None:
    from server.http.app import create_app

    down = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    app = create_app(down)
    with TestClient(app) as client:
        response = client.post("/api/runs", json={"kind": "pretrain", "config": dict(TINY)})
        assert response.status_code == 503
        assert "broker" in response.json()["detail"]
        runs = client.get("/api/runs").json()["data"]
        assert [run["status"] for run in runs] == ["failed"]
        assert "unreachable" in runs[0]["error"]
    app.state.engine.dispose()
