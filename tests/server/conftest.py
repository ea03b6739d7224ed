"""Fixtures for the server tests: the API against SQLite (embedded default) and PostgreSQL.

Services: PostgreSQL 127.0.0.1:5432 (user postgres, database `test` for admin) gets a fresh
`lowdino_test_<random>` database per test session, dropped afterwards; Redis 127.0.0.1:6379 for the
broker test. A missing service skips its tests with the reason, except under CI (env CI set), where
it fails them.
"""

from __future__ import annotations

import os
import socket
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from server.app import create_app
from server.db import create_db_engine, upgrade_database
from server.settings import Settings

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
CIFAR_ZIP = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "cifar10-jpeg.zip"
TABLES = ("events", "metrics", "workers", "runs")


def require_service(name: str, host: str, port: int) -> None:
    """Skip (fail under CI) when nothing listens on host:port."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        reason = f"{name} is not reachable at {host}:{port} ({exc.__class__.__name__})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI requires it")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database for this session (dropped at the end)."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"lowdino_test_{uuid.uuid4().hex[:10]}"
    admin = create_db_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = create_db_engine(url)
    upgrade_database(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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


def extract_cifar(dest: Path, *, per_class: int = 3, split: str = "train") -> Path:
    """A few real CIFAR-10 JPEGs in ImageFolder layout under dest/cifar10/<split>/<class>/."""
    if not CIFAR_ZIP.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CIFAR_ZIP} is missing; CI requires the dataset zip")
        pytest.skip(f"{CIFAR_ZIP} is missing")
    taken: dict[str, int] = {}
    with zipfile.ZipFile(CIFAR_ZIP) as archive:
        for member in archive.namelist():
            parts = member.split("/")
            if len(parts) != 4 or parts[1] != split or not parts[3].endswith(".jpg"):
                continue
            if taken.get(parts[2], 0) >= per_class:
                continue
            taken[parts[2]] = taken.get(parts[2], 0) + 1
            archive.extract(member, dest)
    return dest / "cifar10"


def make_run_files(run_dir: Path, *, checkpoint: bool = True) -> None:
    """What a stopped trainer leaves behind (the worker would have written these)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text("batch_size: 16\n")
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    if checkpoint:
        (run_dir / "checkpoint.pth").write_bytes(b"not really a checkpoint")
