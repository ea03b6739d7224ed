"""What the service benchmarks share: a temporary PostgreSQL database and an API process on a free port.

Benchmarks run as scripts (`python benchmarks/<name>.py`), so this module is imported by its bare name.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from sqlalchemy import text

from server.db import create_db_engine

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def temporary_postgres() -> Iterator[str]:
    """The URL of a fresh database on the local server, dropped afterwards."""
    name = f"lowdino_bench_{uuid.uuid4().hex[:8]}"
    admin = create_db_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def start_api(home: Path, database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """`uvicorn --factory server.app:create_app` configured like `lowdino serve`; returns (process, base URL)."""
    port = free_port()
    env = {**os.environ, "LOWDINO_HOME": str(home), "LOWDINO_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "uvicorn", "--factory", "server.app:create_app", "--port", str(port)]
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
