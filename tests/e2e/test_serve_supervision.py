"""`lowdino serve` heals itself: kill -9 of its worker -> /api/health degraded, submissions warn ->
a new worker within 30 s -> the waiting run completes. A real serve process, real worker, real trainer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2elib import free_port, tiny_pretrain, wait_for

pytestmark = pytest.mark.slow
RESTART_DEADLINE_S = 30.0


def serve_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LOWDINO_")}
    env.update(LOWDINO_HOME=str(home), LOWDINO_HEARTBEAT_INTERVAL="1", LOWDINO_HEARTBEAT_TIMEOUT="10")
    return env


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "lowdino", "serve", "--port", str(port), "--log-level", "info"],
            env=serve_env(tmp_path / "home"),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process, f"http://127.0.0.1:{port}", log_path
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def health(base: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{base}/api/health", timeout=5)
    except httpx.TransportError:
        return None
    return response.json() if response.status_code == 200 else None


def test_killed_worker_is_restarted_and_health_says_degraded_meanwhile(
    served: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    process, base, log_path = served

    def one_worker() -> dict[str, Any] | None:
        assert process.poll() is None, log_path.read_text(errors="replace")
        body = health(base)
        return body if body and len(body["workers"]) == 1 else None

    first = wait_for(one_worker, "the embedded worker to register", deadline_s=120, every_s=0.2)
    assert first["status"] == "ok"
    dead_pid = first["workers"][0]["pid"]
    dead_name = first["workers"][0]["name"]

    os.kill(dead_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    degraded = wait_for(
        lambda: (body := health(base)) and body["status"] == "degraded" and body,
        "/api/health to say degraded",
        deadline_s=10,
        every_s=0.05,
    )
    assert degraded["workers"] == []
    assert "no live worker" in degraded["detail"]

    # Submitted while no worker lives: it queues, and the response says why it may wait.
    created = httpx.post(
        f"{base}/api/runs",
        json={"kind": "pretrain", "name": "after-kill", "config": tiny_pretrain()},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    run = created.json()
    assert run["status"] == "queued"
    assert run["warning"]
    assert "no live worker takes queue 'cpu'" in run["warning"]

    def replaced() -> dict[str, Any] | None:
        body = health(base)
        workers = body["workers"] if body else []
        return body if workers and workers[0]["pid"] != dead_pid else None

    healed = wait_for(replaced, "a new worker", deadline_s=RESTART_DEADLINE_S, every_s=0.2)
    assert time.monotonic() - killed_at < RESTART_DEADLINE_S
    assert healed["status"] == "ok"
    assert healed["detail"] is None
    assert [worker["name"] for worker in healed["workers"]] != [dead_name]

    def finished() -> dict[str, Any] | None:
        body = httpx.get(f"{base}/api/runs/{run['id']}", timeout=10).json()
        return body if body["status"] in ("completed", "failed", "cancelled", "interrupted") else None

    final = wait_for(finished, "the waiting run to finish", deadline_s=240, every_s=0.5)
    assert final["status"] == "completed", final["error"]

    # With a live worker again, a submission carries no warning.
    again = httpx.post(f"{base}/api/runs", json={"kind": "pretrain", "config": tiny_pretrain()}, timeout=10)
    assert again.json()["warning"] is None
    log = log_path.read_text(errors="replace")
    assert "exited unexpectedly with exit code -9 (SIGKILL); restarting it in 1 s (restart 1)" in log
