"""`lowdino runs submit` + `lowdino runs watch` follow a real run to completion against a real
`lowdino serve` (its embedded worker trains it), as separate processes talking HTTP only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from e2elib import free_port, tiny_pretrain, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("LOWDINO_")}
    env.update(LOWDINO_HOME=str(tmp_path / "home"))
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "lowdino", "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def worker_alive() -> bool:
        assert process.poll() is None, log_path.read_text(errors="replace")
        try:
            return bool(httpx.get(f"{base}/api/health", timeout=5).json()["workers"])
        except (httpx.TransportError, ValueError):
            return False

    try:
        wait_for(worker_alive, "lowdino serve and its worker", deadline_s=120, every_s=0.3)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cli(*argv: str, server: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LOWDINO_")}
    env["LOWDINO_SERVER"] = server  # the default the commands take when --server is left out
    return subprocess.run(
        [sys.executable, "-m", "lowdino", *argv], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_watch_follows_a_real_run_to_completion(served: str, tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_pretrain(n_epochs=6)))
    submitted = cli("runs", "submit", "--config", str(config), "--name", "watched", server=served)
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted.stdout.split()[3]

    watched = cli("runs", "watch", run_id, server=served, timeout=300)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    lines = watched.stdout.splitlines()
    # Piped, it prints a line per status change and per tenth of the run, the last one at 100 %.
    assert any("running" in line and "%" in line for line in lines), watched.stdout
    last = lines[-1]
    assert "completed" in last, watched.stdout
    assert "100.0 %" in last, watched.stdout
    assert "step 24/24" in last, watched.stdout
    assert "loss " in lines[-1]
    run = httpx.get(f"{served}/api/runs/{run_id}", timeout=10).json()
    assert run["status"] == "completed"

    listed = cli("runs", "list", "--where", "status = 'completed' and loss > 0", server=served)
    assert listed.returncode == 0
    assert run_id in listed.stdout
    assert "100 %" in listed.stdout
