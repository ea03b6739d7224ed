"""Three API processes started at once on an empty PostgreSQL database all come up, with one schema.

Each API runs `alembic upgrade head` at start; server.storage.engine serialises that with a PostgreSQL advisory
lock, so the first creates the schema and the others find it at head (no duplicate-table errors).
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from e2elib import free_port, postgres_database, require_service, wait_for
from sqlalchemy import inspect, text

from server.storage.engine import alembic_config, create_db_engine

pytestmark = [pytest.mark.slow, pytest.mark.services]
REPLICAS = 3


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


def schema_of(url: str) -> tuple[list[tuple[str]], set[str]]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            versions = [
                tuple(row) for row in connection.execute(text("SELECT version_num FROM alembic_version"))
            ]
        return versions, set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture
def empty_postgres() -> str:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    url, drop = postgres_database()
    yield url
    drop()


def test_three_api_processes_on_an_empty_database(empty_postgres: str, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "OMP_NUM_THREADS": "1",
        "LOWDINO_HOME": str(tmp_path / "home"),
        "LOWDINO_DATABASE_URL": empty_postgres,
        "LOWDINO_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.db'}",
    }
    processes = []
    for index in range(REPLICAS):
        port = free_port()
        log = (tmp_path / f"api{index}.log").open("wb")
        command = [
            sys.executable, "-m", "uvicorn", "--factory", "server.http.app:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        ]  # fmt: skip
        processes.append((subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT), port))
    try:
        for index, (process, port) in enumerate(processes):

            def up(process: subprocess.Popen[bytes] = process, port: int = port, index: int = index) -> bool:
                if process.poll() is not None:
                    raise AssertionError((tmp_path / f"api{index}.log").read_text(errors="replace"))
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                except httpx.TransportError:
                    return False
                return response.status_code == 200 and response.json()["database"]["ok"]

            wait_for(up, f"API {index} to answer", deadline_s=120, every_s=0.2)
    finally:
        for process, _port in processes:
            process.terminate()
            process.wait(timeout=30)
    versions, tables = schema_of(empty_postgres)
    assert versions == [(head_revision(),)]
    assert {"runs", "metrics", "events", "workers"} <= tables


def _upgrade_at_once(url: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    from server.storage.engine import upgrade_database

    engine = create_db_engine(url)
    barrier.wait()
    upgrade_database(engine)
    engine.dispose()


def test_concurrent_upgrades_do_not_race(empty_postgres: str) -> None:
    # The same race made deterministic: the processes enter `upgrade_database` together.
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(REPLICAS)
    workers = [
        context.Process(target=_upgrade_at_once, args=(empty_postgres, barrier)) for _ in range(REPLICAS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0] * REPLICAS
    assert schema_of(empty_postgres)[0] == [(head_revision(),)]
