"""`python -m server.http.healthcheck`: the containers' health checks (docker-compose.yml), as real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn

from server.http.app import create_app
from server.settings import Settings
from server.storage.engine import create_db_engine, session_scope, upgrade_database
from server.storage.models import Worker, utcnow
from server.workers import queries as worker_queries

ROOT = Path(__file__).resolve().parents[2]


def probe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("LOWDINO_")}
    return subprocess.run(
        [sys.executable, "-m", "server.http.healthcheck", *args],
        env={**base, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_worker_check_follows_that_workers_heartbeat(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lowdino.db'}"
    engine = create_db_engine(url)
    upgrade_database(engine)
    env = {"LOWDINO_HOME": str(tmp_path), "LOWDINO_DATABASE_URL": url}
    name = f"gpu0@{socket.gethostname()}"

    missing = probe("worker", "--name", "gpu0", env=env)
    assert missing.returncode == 1
    assert missing.stdout.strip() == f"worker {name}: no heartbeat within 30 s"

    with session_scope(engine) as session:
        worker_queries.upsert_worker(session, name=name, queues=["gpu"], gpus=[0])
        worker_queries.upsert_worker(session, name="gpu1@elsewhere", queues=["gpu"], gpus=[1])
    alive = probe("worker", "--name", "gpu0", env=env)
    assert alive.returncode == 0, alive.stdout
    assert probe("worker", "--name", "gpu1", env=env).returncode == 1  # another host's gpu1 is not ours

    with session_scope(engine) as session:
        session.get(Worker, name).last_seen = utcnow() - timedelta(seconds=31)
        session.commit()
    assert probe("worker", "--name", "gpu0", env=env).returncode == 1
    engine.dispose()


def test_worker_check_says_when_the_database_is_down(tmp_path: Path) -> None:
    env = {
        "LOWDINO_HOME": str(tmp_path),
        "LOWDINO_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/x",
    }
    result = probe("worker", "--name", "gpu0", env=env)
    assert result.returncode == 1
    assert result.stdout.startswith("cannot read worker heartbeats: OperationalError")


@pytest.fixture
def api_port(tmp_path: Path) -> Iterator[int]:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = int(free.getsockname()[1])
    app = create_app(Settings(home=tmp_path / "home"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def test_api_check_is_healthy_while_answering_even_if_degraded(api_port: int) -> None:
    result = probe("api", "--url", f"http://127.0.0.1:{api_port}/api/health")
    assert result.returncode == 0, result.stdout
    assert "degraded (no live worker" in result.stdout  # no worker here: still serving, still healthy


def test_api_check_fails_when_nothing_answers() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    result = probe("api", "--url", f"http://127.0.0.1:{port}/api/health")
    assert result.returncode == 1
    assert "Connection refused" in result.stdout
