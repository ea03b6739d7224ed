"""`lowdino serve` as a real process: API on the port, embedded SQLite + file broker, its worker child."""

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
from services import free_port


def serve_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LOWDINO_")}
    env.update(LOWDINO_HOME=str(home), LOWDINO_HEARTBEAT_INTERVAL="1", LOWDINO_HEARTBEAT_TIMEOUT="10")
    return env


def wait_for_health(base: str, process: subprocess.Popen[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"serve exited early with {process.returncode}: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            response = httpx.get(f"{base}/api/health", timeout=2)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the API did not answer /api/health in time")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[callable]:
    processes: list[subprocess.Popen[str]] = []

    def start(*flags: str) -> tuple[subprocess.Popen[str], str]:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "lowdino", "serve", "--port", str(port), "--log-level", "warning", *flags],
            env=serve_env(tmp_path / "home"),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        return process, f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    status = Path(f"/proc/{pid}/status")
    return not (status.is_file() and "\nState:\tZ" in status.read_text())


@pytest.mark.slow
def test_serve_api_only_uses_embedded_sqlite(serve: callable, tmp_path: Path) -> None:
    process, base = serve("--no-worker")
    health = wait_for_health(base, process)
    assert health["database"] == {"ok": True, "detail": "sqlite"}
    assert health["broker"]["ok"]
    assert health["workers"] == []
    created = httpx.post(
        f"{base}/api/runs", json={"kind": "pretrain", "config": {"dataset": "synthetic"}}, timeout=10
    )
    assert created.status_code == 201
    assert created.json()["status"] == "queued"
    assert (tmp_path / "home" / "lowdino.db").is_file()
    assert (tmp_path / "home" / "broker.db").is_file()
    assert created.json()["output_dir"].startswith(str(tmp_path / "home" / "runs"))
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0


@pytest.mark.slow
def test_serve_starts_and_stops_its_worker(serve: callable) -> None:
    process, base = serve()
    wait_for_health(base, process)
    deadline = time.monotonic() + 90
    workers: list[dict] = []
    while time.monotonic() < deadline and not workers:
        workers = httpx.get(f"{base}/api/health", timeout=5).json()["workers"]
        time.sleep(0.5)
    assert len(workers) == 1, "the worker never sent a heartbeat"
    assert set(workers[0]["queues"]) == {"cpu", "gpu"}
    worker_pid = workers[0]["pid"]
    assert pid_alive(worker_pid)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=90) == 0
    deadline = time.monotonic() + 10
    while pid_alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(worker_pid), "the worker outlived `lowdino serve`"


@pytest.mark.slow
def test_port_in_use_is_one_clear_line(serve: callable) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "lowdino", "serve", "--no-worker", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use; pass another --port" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_warns_without_token_on_a_public_interface(serve: callable, tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lowdino", "serve", "--no-worker", "--host", "0.0.0.0", "--port", str(port)],
        env=serve_env(tmp_path / "home"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}", process)
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    assert "without LOWDINO_API_TOKEN" in err
    assert process.returncode == 0
