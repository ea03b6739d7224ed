"""What a run reads must exist when it is submitted: a missing data path, weights file or checkpoint, or a
teacher that is no backbone, run or file, is refused with a 409 naming the field (not a run that fails in
the worker minutes later): the request is one the schema allows, refused for what this server lacks
(server.http.contract). A dataset torchvision downloads may name a folder yet to exist. On SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serverlib import extract_cifar, make_run_files

from server.settings import Settings

TINY = {"batch_size": 16, "backbone": "resnet5m", "max_steps": 5}


def post(client: TestClient, kind: str, config: dict) -> tuple[int, dict]:
    response = client.post("/api/runs", json={"kind": kind, "config": config})
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("kind", "config", "field", "words"),
    [
        (
            "pretrain",
            {**TINY, "dataset": "imagefolder", "data_path": "no-such-folder"},
            "data_path",
            "does not exist",
        ),
        (
            "eval",
            {"dataset": "synthetic", "checkpoint": "runs/gone/checkpoint.pth"},
            "checkpoint",
            "does not exist",
        ),
        (
            "eval",
            {"dataset": "synthetic", "backbone": "resnet5m", "pretrained": True, "weights": "w.pth"},
            "weights",
            "does not exist",
        ),
        (
            "distill",
            {"dataset": "synthetic", "student": "resnet5m", "teacher": "dinov9_giant"},
            "teacher",
            "backbone name",
        ),
        (
            "distill",
            {"dataset": "synthetic", "student": "resnet5m", "teacher": "teachers/t.pth"},
            "teacher",
            "does not exist",
        ),
    ],
)
def test_missing_inputs_are_refused_at_their_field(
    client: TestClient, kind: str, config: dict, field: str, words: str
) -> None:
    before = client.get("/api/runs").json()["count"]
    status, body = post(client, kind, config)
    assert status == 409, body
    assert body["detail"].startswith(f"config.{field}: ")
    assert words in body["field_errors"][field]
    assert client.get("/api/runs").json()["count"] == before  # nothing was queued


def test_existing_inputs_are_accepted(client: TestClient, settings: Settings, data_root: Path) -> None:
    folder = extract_cifar(data_root, per_class=1)
    status, body = post(client, "pretrain", {**TINY, "dataset": "imagefolder", "data_path": str(folder)})
    assert status == 201, body
    # torchvision downloads cifar10 into its folder, creating it (the shipped presets say `data`); synthetic
    # reads none.
    assert (
        post(client, "pretrain", {**TINY, "dataset": "cifar10", "data_path": "not-downloaded-yet"})[0] == 201
    )
    assert post(client, "pretrain", {**TINY, "dataset": "synthetic", "data_path": "nowhere"})[0] == 201
    # A run that has a checkpoint, named by id or directory; a registry teacher; a checkpoint teacher.
    trained = body["id"]
    make_run_files(settings.run_dir(trained))
    for checkpoint in (
        trained,
        str(settings.run_dir(trained)),
        str(settings.run_dir(trained) / "checkpoint.pth"),
    ):
        status, eval_body = post(client, "eval", {"dataset": "synthetic", "checkpoint": checkpoint})
        assert status == 201, eval_body
    for teacher in ("mobilevit_xxs", trained, str(settings.run_dir(trained) / "checkpoint.pth")):
        status, distill = post(
            client, "distill", {"dataset": "synthetic", "student": "resnet5m", "teacher": teacher}
        )
        assert status == 201, distill


def test_a_run_directory_without_a_checkpoint_is_refused(client: TestClient, settings: Settings) -> None:
    queued = post(client, "pretrain", {**TINY, "dataset": "synthetic"})[1]
    status, body = post(
        client, "eval", {"dataset": "synthetic", "checkpoint": str(settings.run_dir(queued["id"]))}
    )
    assert status == 409, body
    assert "without checkpoint.pth" in body["field_errors"]["checkpoint"]
