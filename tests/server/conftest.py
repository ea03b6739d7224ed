"""Fixtures for the server tests: the API against SQLite (embedded default) and PostgreSQL.

Services: PostgreSQL 127.0.0.1:5432 (user postgres, database `test` for admin) gets a fresh
`lowdino_test_<random>` database per test session, dropped afterwards; Redis 127.0.0.1:6379 for the
broker test. A missing service skips its tests with the reason, except under CI (env CI set), where
it fails them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from serverlib import serving
from sqlalchemy import Engine, text

from server.http.app import create_app
from server.settings import Settings
from server.storage.engine import create_db_engine, upgrade_database

TABLES = ("search_trials", "searches", "events", "metric_blocks", "metrics", "workers", "runs", "sweeps")


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sqlite") / "lowdino.db"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    engine.dispose()
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The embedded default broker (kombu SQLAlchemy transport on a SQLite file)."""
    return f"sqla+sqlite:///{tmp_path_factory.mktemp('broker') / 'broker.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on both databases, starting from empty tables."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    engine = create_db_engine(url)
    with engine.begin() as connection:
        for table in TABLES:
            connection.execute(text(f"DELETE FROM {table}"))
    engine.dispose()
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture
def settings(tmp_path: Path, database_url: str, broker_url: str, data_root: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        broker_url=broker_url,
        data_roots=[data_root],
        api_token=None,
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def session(app: FastAPI) -> Iterator[object]:
    """A session on the app's database, for arranging state the way the worker would."""
    with app.state.session_factory() as db_session:
        yield db_session


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn in a thread; yields its base URL."""
    with serving(app) as base:
        yield base
