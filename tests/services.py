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
from typing import Any

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
    from server.storage.engine import create_db_engine

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


def _server_binary(name: str) -> str | None:
    """A PostgreSQL server program (initdb, pg_ctl) from PATH or /usr/lib/postgresql/<version>/bin."""
    import glob
    import shutil

    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb in a temporary folder, pg_ctl on a free port).

    For tests that stop and start the database mid-run: doing that to the shared cluster would break
    every other test using it. PostgreSQL refuses to run as root; as root, the programs run as the
    `postgres` system user (runuser).
    """

    def __init__(self) -> None:
        import pwd
        import shutil
        import subprocess
        import tempfile

        self.initdb, self.pg_ctl = _server_binary("initdb"), _server_binary("pg_ctl")
        if self.initdb is None or self.pg_ctl is None:
            pytest.skip("PostgreSQL server programs (initdb, pg_ctl) are not installed")
        self.prefix: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="lowdino-pg-"))
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                owner = None
            if runuser is None or owner is None:
                pytest.skip("running as root without a `postgres` user to run a private PostgreSQL as")
            self.prefix = [runuser, "-u", "postgres", "--"]
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        subprocess.run(
            [*self.prefix, self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        import subprocess

        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
             "-w", "-t", "60", "start"],
            check=True,
            capture_output=True,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """`fast`: disconnect every client and shut down cleanly; `immediate`: like a crash."""
        import subprocess

        subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"],
            check=False,
            capture_output=True,
        )

    def remove(self) -> None:
        import shutil

        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running private PostgreSQL (see PrivatePostgres), removed afterwards."""
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


class PrivateRedis:
    """A redis-server of the test's own on a free port, without persistence (restarting it loses all)."""

    def __init__(self) -> None:
        import shutil

        self.binary = shutil.which("redis-server")
        if self.binary is None:
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: Any = None

    def start(self) -> None:
        import subprocess
        import time

        assert self.binary is not None
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not reachable("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "the private redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def latency_row(runtime: str, batch: int, threads: int, ms: float, size: int, **extra: object) -> dict:
    """One results.json `latency` row as `lowdino eval --protocols latency` writes it."""
    from lowdino.eval.latency import LatencyRow

    return LatencyRow(
        runtime=runtime,
        batch_size=batch,
        threads=threads,
        median_ms=ms,
        p90_ms=ms * 1.1,
        images_per_s=1000 / ms,
        batch_median_ms=ms * batch,
        peak_memory_mb=100.0,
        peak_memory_kind="rss",
        image_size=size,
        device="cpu",
        cpu_model="Test CPU @ 2.0GHz",
        repetitions=50,
        warmup=10,
        **extra,  # type: ignore[arg-type]
    ).as_dict()
