"""`export` as a run kind through the API: what `source` may name, what is refused (422 at the field),
what the row says (backbone, queue), and the lifecycle rules (cloned, never resumed). SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serverlib import make_run_files

from server.runs import queries as run_queries
from server.settings import Settings

TINY = {"dataset": "synthetic", "batch_size": 16, "backbone": "resnet5m", "max_steps": 5}


def completed_pretrain(client: TestClient, session: object, settings: Settings) -> dict:
    run = client.post("/api/runs", json={"kind": "pretrain", "config": dict(TINY)}).json()
    run_queries.claim_run(session, run_id=run["id"], worker_name="w1")  # type: ignore[arg-type]
    make_run_files(settings.run_dir(run["id"]))
    run_queries.update_run_status(session, run_id=run["id"], status="completed", exit_code=0)  # type: ignore[arg-type]
    return run


def export(client: TestClient, config: dict, **body: object):  # type: ignore[no-untyped-def]
    return client.post("/api/runs", json={"kind": "export", "config": config, **body})


def test_export_of_a_completed_run_names_its_directory_and_backbone(
    client: TestClient, session: object, settings: Settings
) -> None:
    trained = completed_pretrain(client, session, settings)
    response = export(client, {"source": trained["id"], "format": "onnx"}, name="deploy")
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["kind"] == "export"
    assert run["status"] == "queued"
    assert run["queue"] == "cpu"
    # The run id became the run's directory (as eval's checkpoint does), and the row shows its backbone.
    assert run["config"]["source"] == str(settings.run_dir(trained["id"]).resolve())
    assert run["backbone"] == "resnet5m"
    assert run["parent_id"] == trained["id"]  # the run it exports: GET /api/runs?parent=<id> lists them
    assert run["config"]["output_dir"] == str(settings.run_dir(run["id"]))
    assert run["config"]["quantize"] == "none"
    # The checkpoint file itself names the run too.
    by_file = export(client, {"source": str(settings.run_dir(trained["id"]) / "checkpoint.pth")})
    assert by_file.status_code == 201, by_file.text
    assert by_file.json()["backbone"] == "resnet5m"
    assert client.get("/api/runs", params={"kind": "export"}).json()["count"] == 2
    assert client.get("/api/runs", params={"parent": trained["id"], "kind": "export"}).json()["count"] == 2
    clone = client.post(f"/api/runs/{run['id']}/clone", json={"config": {"quantize": "int8"}})
    assert clone.status_code == 201, clone.text
    assert clone.json()["parent_id"] == trained["id"]


def test_export_of_a_backbone_name(client: TestClient) -> None:
    response = export(client, {"source": "mobilenetv2_100", "image_size": 32, "format": "torchscript"})
    assert response.status_code == 201, response.text
    assert response.json()["backbone"] == "mobilenetv2_100"
    assert response.json()["config"]["source"] == "mobilenetv2_100"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("0123456789abcdef0123456789abcdef", "neither a run id"),  # an unknown run id
        ("not_a_backbone", "backbones: "),
        ("runs/gone/checkpoint.pth", "does not exist"),
        ("/etc/passwd", "outside the allowed directories"),
    ],
)
def test_bad_source_is_refused_at_the_field(client: TestClient, source: str, expected: str) -> None:
    response = export(client, {"source": source})
    # What the source names is server state (its runs, files, registry): 409, as the API document says.
    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert detail.startswith("config.source: ")
    assert expected in detail
    assert "\n" not in detail


def test_export_of_a_run_without_checkpoint_is_refused(client: TestClient, data_root: Path) -> None:
    queued = client.post("/api/runs", json={"kind": "pretrain", "config": dict(TINY)}).json()
    response = export(client, {"source": queued["id"]})
    assert response.status_code == 409  # server state: what the run holds now
    assert "config.source" in response.json()["detail"]
    assert "once it has completed" in response.json()["detail"]
    empty = data_root / "empty-run"
    empty.mkdir()
    response = export(client, {"source": str(empty)})
    assert response.status_code == 409
    assert "without checkpoint.pth" in response.json()["detail"]


def test_server_owned_and_invalid_export_fields(client: TestClient) -> None:
    output = export(client, {"source": "resnet5m", "output": "/tmp/x.onnx"})
    assert output.status_code == 422
    assert output.json()["detail"].startswith("config.output: ")
    int8_torchscript = export(client, {"source": "resnet5m", "format": "torchscript", "quantize": "int8"})
    assert int8_torchscript.status_code == 422
    assert "format onnx" in int8_torchscript.json()["detail"]
    assert "--" not in int8_torchscript.json()["detail"]  # REST names the JSON fields, not CLI flags
    calibration = export(client, {"source": "resnet5m", "quantize": "int8", "calibration_data": "/etc"})
    assert calibration.status_code == 409  # outside this server's data roots: server state
    assert "config.calibration_data" in calibration.json()["detail"]
    chained = export(client, {"source": "resnet5m"}, evaluate={"protocols": ["knn"]})
    assert chained.status_code == 422
    assert "evaluate" in chained.json()["detail"]


def test_export_is_cloned_not_resumed(client: TestClient, session: object, settings: Settings) -> None:
    run = export(client, {"source": "resnet5m", "image_size": 32}).json()
    run_queries.claim_run(session, run_id=run["id"], worker_name="w1")  # type: ignore[arg-type]
    run_queries.update_run_status(session, run_id=run["id"], status="failed")  # type: ignore[arg-type]
    resumed = client.post(f"/api/runs/{run['id']}/resume")
    assert resumed.status_code == 409
    assert "clone" in resumed.json()["detail"]
    clone = client.post(f"/api/runs/{run['id']}/clone", json={"config": {"quantize": "none", "opset": 17}})
    assert clone.status_code == 201, clone.text
    assert clone.json()["kind"] == "export"
    assert clone.json()["config"]["opset"] == 17
    assert clone.json()["parent_id"] is None  # a backbone name names no run


def test_chained_evaluation_may_time_latency(client: TestClient) -> None:
    response = client.post(
        "/api/runs",
        json={"kind": "pretrain", "config": dict(TINY), "evaluate": {"protocols": ["knn", "latency"]}},
    )
    assert response.status_code == 201, response.text
    assert response.json()["evaluate"]["protocols"] == ["knn", "latency"]
    bad = client.post(
        "/api/runs",
        json={"kind": "pretrain", "config": dict(TINY), "evaluate": {"protocols": ["knn", "speed"]}},
    )
    assert bad.status_code == 422
    assert "protocols" in bad.json()["detail"]
    assert "'latency'" in bad.json()["detail"]  # the refusal lists it among the choices
