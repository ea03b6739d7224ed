"""Fixtures for the worker tests: a migrated database (SQLite file, or PostgreSQL when reachable)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from server.storage.engine import create_db_engine, upgrade_database
from worker.identity import WorkerIdentity


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
