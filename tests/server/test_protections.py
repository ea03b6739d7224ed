"""Browser-facing protections: Host allowlist (DNS rebinding), cross-origin writes, CORS, security headers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from server.http.app import create_app
from server.http.protections import DASHBOARD_CSP
from server.http.web import DOCS_CSP
from server.settings import Settings

RUN = {"kind": "pretrain", "config": {"dataset": "synthetic", "max_steps": 2}}


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", data_roots=[tmp_path])


@pytest.fixture
def make_client(sqlite_settings: Settings) -> Iterator:
    apps: list[FastAPI] = []

    def make(**updates: object) -> TestClient:
        settings = Settings(**{**sqlite_settings.model_dump(), **updates})
        app = create_app(settings)
        apps.append(app)
        return TestClient(app)

    yield make
    for app in apps:
        app.state.engine.dispose()


def run_count(client: TestClient) -> int:
    return int(client.get("/api/runs").json()["count"])


def test_foreign_host_is_refused_with_the_fix(make_client) -> None:
    client = make_client()
    response = client.get("/api/health", headers={"host": "evil.example.com"})
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Host 'evil.example.com' is not allowed (DNS rebinding protection); if you reach LowDINO under this "
        "name, add it to LOWDINO_ALLOWED_HOSTS or pass `lowdino serve --allowed-host evil.example.com`"
    )
    # A rebinding page posting a run is refused before the API sees the request.
    posted = client.post("/api/runs", json=RUN, headers={"host": "evil.example.com:8000"})
    assert posted.status_code == 400
    assert run_count(client) == 0
    assert client.get("/", headers={"host": "evil.example.com"}).status_code == 400


@pytest.mark.parametrize(
    "host", ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST", socket.gethostname()]
)
def test_loopback_and_machine_names_are_accepted(make_client, host: str) -> None:
    assert make_client().get("/api/health", headers={"host": host}).status_code == 200


def test_a_request_without_host_is_not_a_browser_and_passes(make_client) -> None:
    # HTTP/1.0 probes may omit Host; a browser (the only thing DNS rebinding can drive) always sends it.
    assert make_client().get("/api/health", headers={"host": ""}).status_code == 200


def test_allowed_hosts_setting_extends_the_defaults(make_client) -> None:
    client = make_client(allowed_hosts="lowdino.example.com, *.corp.example")
    assert client.get("/api/health", headers={"host": "lowdino.example.com"}).status_code == 200
    assert client.get("/api/health", headers={"host": "gpu1.corp.example:8000"}).status_code == 200
    assert client.get("/api/health", headers={"host": "localhost"}).status_code == 200
    assert client.get("/api/health", headers={"host": "corp.example.evil.com"}).status_code == 400
    anything = make_client(allowed_hosts="*")
    assert anything.get("/api/health", headers={"host": "evil.example.com"}).status_code == 200


def test_cross_origin_writes_are_refused(make_client) -> None:
    client = make_client()
    refused = client.post("/api/runs", json=RUN, headers={"origin": "https://evil.example.com"})
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "cross-origin POST from https://evil.example.com refused; if that web app may drive this API, "
        "add https://evil.example.com to LOWDINO_CORS_ORIGINS"
    )
    assert client.post("/api/runs", json=RUN, headers={"origin": "null"}).status_code == 403
    # Same host, other port: another origin (another local web app).
    other_port = client.post("/api/runs", json=RUN, headers={"origin": "http://testserver:3000"})
    assert other_port.status_code == 403
    assert run_count(client) == 0
    run_id = client.post("/api/runs", json=RUN).json()["id"]  # no Origin: curl, scripts
    assert (
        client.delete(f"/api/runs/{run_id}", headers={"origin": "https://evil.example.com"}).status_code
        == 403
    )
    # The dashboard itself sends its own origin.
    assert client.post("/api/runs", json=RUN, headers={"origin": "http://testserver"}).status_code == 201
    assert (
        client.post(
            "/api/runs", json=RUN, headers={"host": "localhost:8000", "origin": "http://localhost:8000"}
        ).status_code
        == 201
    )
    assert run_count(client) == 3
    # Reads are not refused (the browser keeps a foreign page from reading them: no CORS answer).
    read = client.get("/api/runs", headers={"origin": "https://evil.example.com"})
    assert read.status_code == 200
    assert "access-control-allow-origin" not in read.headers


def test_behind_a_tls_proxy_that_forwards_host(make_client) -> None:
    client = make_client(allowed_hosts="lowdino.example.com")
    headers = {"host": "lowdino.example.com", "origin": "https://lowdino.example.com"}
    assert client.post("/api/runs", json=RUN, headers=headers).status_code == 201
    other_port = {"host": "lowdino.example.com", "origin": "https://lowdino.example.com:8443"}
    assert client.post("/api/runs", json=RUN, headers=other_port).status_code == 403


def test_cors_answers_only_configured_origins(make_client) -> None:
    client = make_client(cors_origins="https://notebook.example.com")
    preflight = client.options(
        "/api/runs",
        headers={
            "origin": "https://notebook.example.com",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://notebook.example.com"
    posted = client.post("/api/runs", json=RUN, headers={"origin": "https://notebook.example.com"})
    assert posted.status_code == 201
    assert posted.headers["access-control-allow-origin"] == "https://notebook.example.com"
    foreign = client.options(
        "/api/runs", headers={"origin": "https://evil.example.com", "access-control-request-method": "POST"}
    )
    assert "access-control-allow-origin" not in foreign.headers
    assert (
        client.post("/api/runs", json=RUN, headers={"origin": "https://evil.example.com"}).status_code == 403
    )
    unconfigured = make_client().options(
        "/api/runs",
        headers={"origin": "https://notebook.example.com", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in unconfigured.headers


@pytest.mark.parametrize(
    "path", ["/", "/runs", "/static/js/main.js", "/api/health", "/api/runs/nope", "/login"]
)
def test_security_headers_on_every_response(make_client, path: str) -> None:
    response = make_client().get(path)
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["content-security-policy"] == DASHBOARD_CSP


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_keep_their_own_policy(make_client, path: str) -> None:
    response = make_client().get(path)
    assert response.headers.get_list("content-security-policy") == [DOCS_CSP]
    assert response.headers["x-frame-options"] == "SAMEORIGIN"


def test_refusals_carry_the_headers_too(make_client) -> None:
    response = make_client().get("/", headers={"host": "evil.example.com"})
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert response.headers["content-security-policy"] == DASHBOARD_CSP


@pytest.mark.slow
def test_a_malformed_cors_origin_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is not an origin; write scheme://host"):
        Settings(home=tmp_path, cors_origins="https://notebook.example.com/lab")
    env = {key: value for key, value in os.environ.items() if not key.startswith("LOWDINO_")}
    env.update(LOWDINO_HOME=str(tmp_path), LOWDINO_CORS_ORIGINS="https://notebook.example.com/lab")
    result = subprocess.run(
        [sys.executable, "-m", "lowdino", "serve", "--no-worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "lowdino serve: error: invalid LOWDINO_* settings: cors_origins: 'https://notebook.example.com/lab' "
        "is not an origin"
    )


@pytest.mark.slow
def test_serve_flag_and_bind_name_extend_the_allowlist(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if not key.startswith("LOWDINO_")}
    env.update(LOWDINO_HOME=str(tmp_path / "home"), LOWDINO_ALLOWED_HOSTS="from-env.example")
    command = [
        sys.executable, "-m", "lowdino", "serve", "--no-worker", "--port", str(port),
        "--allowed-host", "lowdino.example", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.2)

        def status(host: str) -> int:
            return httpx.get(f"{base}/api/health", headers={"host": host}, timeout=5).status_code

        assert status("lowdino.example") == 200
        assert status("from-env.example") == 200
        assert status(f"127.0.0.1:{port}") == 200
        assert status("evil.example.com") == 400
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
