"""Fixtures for the worker tests: a migrated database (SQLite file, or PostgreSQL when reachable)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from workerlib import POSTGRES_ADMIN_URL, require_service

from server.db import create_db_engine, upgrade_database
from worker.identity import WorkerIdentity


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this session, dropped afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"lowdino_worker_{uuid.uuid4().hex[:8]}"
    admin = create_db_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = create_db_engine(url)
    upgrade_database(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'lowdino.db'}")
    upgrade_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The same test on both supported databases."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_engine")
        return
    engine = create_db_engine(request.getfixturevalue("postgres_url"))
    yield engine
    engine.dispose()


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def identity() -> WorkerIdentity:
    return WorkerIdentity(name="test-worker@host", hostname="host", queues=("cpu",), gpus=(), pid=os.getpid())
