"""The local services the tests use, in one place: PostgreSQL and Redis on 127.0.0.1, free ports.

A missing service skips the tests that need it with the reason, except under CI (env CI set), where
its absence is a failure (`.ci/run` starts both). A plain module (imported as `services`), since
`conftest` modules of different folders cannot import each other.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a local service is missing, except under CI, where its absence is a failure."""
    if reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must start it before the tests")
    pytest.skip(f"{message} (start it to run this test; under CI this fails)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def temporary_postgres(prefix: str = "lowdino_test") -> Iterator[str]:
    """The URL of a new, empty database on the local PostgreSQL, dropped afterwards (even if in use)."""
    from server.db import create_db_engine

    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_db_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# The real CIFAR-10 JPEGs (ImageFolder layout: cifar10/<split>/<class>/*.jpg) beside the repository.
CIFAR_ZIP = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "cifar10-jpeg.zip"


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
