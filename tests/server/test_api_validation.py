"""Submissions are checked against what the library knows before a run exists (issue 10, item 8)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("pretrain", {"backbone": "resnet9000"}, "backbone"),
        ("eval", {"backbone": "resnet9000"}, "backbone"),
        ("distill", {"student": "resnet9000"}, "student"),
    ],
)
def test_an_unknown_backbone_is_refused_at_submission(
    client: TestClient, kind: str, config: dict[str, str], field: str
) -> None:
    response = client.post("/api/runs", json={"kind": kind, "config": {"dataset": "synthetic", **config}})
    assert response.status_code == 422
    message = response.json()["field_errors"][field]
    assert "unknown backbone 'resnet9000'" in message
    assert "mobilevit_xxs" in message  # the valid names come with the refusal
    assert client.get("/api/runs").json()["count"] == 0  # nothing was created


def test_unknown_kind_and_status_filters_name_the_choices(client: TestClient) -> None:
    response = client.get("/api/runs", params={"status": "sleeping"})
    assert response.status_code == 422
    assert client.get("/api/runs", params={"kind": "finetune"}).status_code == 422
    assert client.get("/api/schema/finetune").status_code == 422


def test_openapi_enums_come_from_the_one_definition(client: TestClient) -> None:
    from lowdino.config import CONFIG_MODELS
    from server.vocabulary import RunStatus

    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["RunKind"]["enum"] == list(CONFIG_MODELS)
    assert schemas["RunStatus"]["enum"] == [status.value for status in RunStatus]
