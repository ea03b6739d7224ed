"""What the service benchmarks share: a temporary PostgreSQL database and an API process on a free port.

Benchmarks run as scripts (`python benchmarks/<name>.py`), so this module is imported by its bare name.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx


def _load_test_services() -> ModuleType:
    """tests/services.py, the one definition of these helpers, loaded by path: putting tests/ on
    sys.path would let its folders (tests/lowdino, tests/server) shadow the real packages."""
    path = Path(__file__).resolve().parents[1] / "tests" / "services.py"
    spec = importlib.util.spec_from_file_location("lowdino_test_services", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_services = _load_test_services()
POSTGRES_HOST, POSTGRES_PORT = _services.POSTGRES_HOST, _services.POSTGRES_PORT
free_port = _services.free_port
reachable = _services.reachable
temporary_postgres = _services.temporary_postgres


def postgres_available() -> bool:
    return reachable(POSTGRES_HOST, POSTGRES_PORT)


__all__ = ["free_port", "postgres_available", "start_api", "temporary_postgres"]


def start_api(
    home: Path, database_url: str, *, env_extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`uvicorn --factory server.http.app:create_app` configured like `lowdino serve`; returns (process, base URL).

    `env_extra`: more LOWDINO_* settings (e.g. LOWDINO_BROKER_URL)."""
    port = free_port()
    env = {**os.environ, "LOWDINO_HOME": str(home), "LOWDINO_DATABASE_URL": database_url, **(env_extra or {})}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "server.http.app:create_app",
        "--port",
        str(port),
    ]
    # Open event streams never end by themselves: without a grace limit uvicorn waits for them on exit.
    command += ["--timeout-graceful-shutdown", "2", "--log-level", "warning"]
    process = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the API process did not start")
