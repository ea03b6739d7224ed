"""Artifacts (listing, download, escape attempts), token auth, and the request-body limit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from server.http.app import create_app
from server.http.security import is_loopback
from server.settings import Settings

TINY = {"dataset": "synthetic", "batch_size": 16, "backbone": "resnet5m"}


@pytest.fixture
def run_with_files(client: TestClient, settings: Settings, tmp_path: Path) -> str:
    run = client.post("/api/runs", json={"kind": "pretrain", "config": TINY}).json()
    run_dir = settings.run_dir(run["id"])
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / "summary.json").write_text('{"status": "completed"}')
    (run_dir / "checkpoint.pth").write_bytes(b"\x00weights\x01")
    (run_dir / "logs" / "events.out").write_text("tb")
    (run_dir / ".checkpoint.pth.123.tmp").write_bytes(b"partial")  # an atomic write in progress
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    (run_dir / "link_out").symlink_to(secret)
    (run_dir / "dir_out").symlink_to(tmp_path)
    return run["id"]


def test_artifacts_list_and_download(client: TestClient, run_with_files: str) -> None:
    listing = client.get(f"/api/runs/{run_with_files}/artifacts").json()
    assert [item["name"] for item in listing["data"]] == ["checkpoint.pth", "logs/events.out", "summary.json"]
    assert listing["count"] == 3
    assert listing["data"][0]["size"] == 9
    download = client.get(f"/api/runs/{run_with_files}/artifacts/checkpoint.pth")
    assert download.status_code == 200
    assert download.content == b"\x00weights\x01"
    assert client.get(f"/api/runs/{run_with_files}/artifacts/logs/events.out").text == "tb"
    assert client.get(f"/api/runs/{run_with_files}/artifacts/summary.json").json() == {"status": "completed"}
    missing = client.get(f"/api/runs/{run_with_files}/artifacts/nothing.pth")
    assert missing.status_code == 404
    assert "nothing.pth" in missing.json()["detail"]


@pytest.mark.parametrize(
    "name",
    [
        "%2E%2E/%2E%2E/lowdino.db",
        "..%2F..%2Fhome%2Flowdino.db",
        "logs/%2E%2E/%2E%2E/%2E%2E/secret.txt",
        "%2Fetc%2Fpasswd",
        "link_out",
        "dir_out/secret.txt",
        "~root",
        "logs%5C..%5C..%5Csecret.txt",
    ],
)
def test_artifact_names_cannot_escape(client: TestClient, run_with_files: str, name: str) -> None:
    response = client.get(f"/api/runs/{run_with_files}/artifacts/{name}")
    assert response.status_code == 404, name  # none of the run's files, whatever it points at
    assert "do not serve" not in response.text
    assert "root:" not in response.text


def test_auth_off_by_default(client: TestClient) -> None:
    assert client.get("/api/runs").status_code == 200


@pytest.fixture
def secured(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"api_token": "s3cret-token"}))
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()


def test_token_required_everywhere_but_health(secured: TestClient) -> None:
    assert secured.get("/api/health").status_code == 200
    for method, path in [
        ("get", "/api/runs"),
        ("post", "/api/runs"),
        ("get", "/api/runs/x"),
        ("get", "/api/runs/x/metrics"),
        ("get", "/api/runs/x/metrics.csv"),
        ("get", "/api/runs/x/events"),
        ("get", "/api/runs/x/artifacts"),
        ("get", "/api/catalog"),
        ("get", "/api/compare?runs=x"),
        ("get", "/api/schema/pretrain"),
        ("delete", "/api/runs/x"),
    ]:
        response = secured.request(method, path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
    wrong = secured.get("/api/runs", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = secured.get("/api/runs", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200


def test_query_token_only_for_streams_and_downloads(secured: TestClient, settings: Settings) -> None:
    auth = {"Authorization": "Bearer s3cret-token"}
    run = secured.post("/api/runs", json={"kind": "pretrain", "config": TINY}, headers=auth).json()
    settings.run_dir(run["id"]).mkdir(parents=True, exist_ok=True)
    (settings.run_dir(run["id"]) / "summary.json").write_text("{}")
    assert secured.get("/api/runs", params={"token": "s3cret-token"}).status_code == 401
    artifact = f"/api/runs/{run['id']}/artifacts/summary.json"
    assert secured.get(artifact, params={"token": "s3cret-token"}).status_code == 200
    assert secured.get(artifact, params={"token": "wrong"}).status_code == 401
    assert (
        secured.get(f"/api/runs/{run['id']}/metrics.csv", params={"token": "s3cret-token"}).status_code == 200
    )
    # The raw token in a cookie is not a session: only the server-issued session cookie is.
    secured.cookies.set("lowdino_session", "s3cret-token")
    assert secured.get(artifact).status_code == 401


def test_body_limit(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"max_body_bytes": 2048}))
    with TestClient(app) as client:
        big = {"kind": "pretrain", "config": TINY, "name": "x" * 4000}
        response = client.post("/api/runs", json=big)
        assert response.status_code == 413
        assert "LOWDINO_MAX_BODY_BYTES" in response.json()["detail"]
        assert response.json()["field_errors"] is None  # the one error body
        assert "413" in client.get("/openapi.json").json()["paths"]["/api/runs"]["post"]["responses"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts streamed bytes
            yield b'{"kind": "pretrain", "name": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}'

        streamed = client.post("/api/runs", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        assert client.post("/api/runs", json={"kind": "pretrain", "config": TINY}).status_code == 201
    app.state.engine.dispose()


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("localhost")
    assert is_loopback("::1")
    assert is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.5")
    assert not is_loopback("example.org")


def test_health_reports_database_broker_and_live_workers(client: TestClient, session: object) -> None:
    from server.workers import queries as worker_queries

    worker_queries.upsert_worker(
        session, name="gpu-0", hostname="box", queues=["gpu"], gpus=[0], pid=os.getpid()
    )  # type: ignore[arg-type]
    body = client.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["database"]["ok"]
    assert body["broker"]["ok"]
    assert [(w["name"], w["gpus"], w["queues"]) for w in body["workers"]] == [("gpu-0", [0], ["gpu"])]


def test_health_says_when_the_broker_is_down(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))
    transport = httpx.ASGITransport(app=app)
    import asyncio

    async def get() -> dict:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get("/api/health")).json()

    body = asyncio.run(get())
    assert body["status"] == "degraded"
    assert body["broker"]["ok"] is False
    assert body["database"]["ok"]
    app.state.engine.dispose()
