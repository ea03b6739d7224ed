"""Real processes for the end-to-end tests: the API under uvicorn and `lowdino worker`, plus an SSE reader.

A `Stack` is one LOWDINO_HOME with its database and broker:
    embedded  SQLite database + kombu SQLAlchemy broker on SQLite (what `lowdino serve` uses by default)
    scaled    PostgreSQL database + Redis broker (a fresh database and an empty Redis db per stack)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from services import REDIS_HOST, REDIS_PORT, free_port, require_service, temporary_postgres

# Short heartbeats so that a killed worker's run is reaped within seconds.
HEARTBEAT_INTERVAL_S = 0.5
HEARTBEAT_TIMEOUT_S = 3.0
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "interrupted", "pruned"})


def wait_for(condition: Callable[[], Any], what: str, deadline_s: float = 60.0, every_s: float = 0.1) -> Any:
    """Poll `condition` until truthy; the deadline only bounds a hang, it asserts no speed."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"gave up waiting for {what}")


def processes_mentioning(*texts: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains every one of `texts`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if all(text in cmdline for text in texts) and state != "Z":
            found.append(int(entry.name))
    return found


def tiny_pretrain(**overrides: Any) -> dict[str, Any]:
    """The smallest real pretraining: synthetic 16 px images, resnet5m, batch 16, 4 steps per epoch."""
    return {
        "dataset": "synthetic",
        "synthetic_size": 64,
        "backbone": "resnet5m",
        "batch_size": 16,
        "n_epochs": 2,
        "global_crop_size": 16,
        "local_crop_size": 8,
        "out_dim": 64,
        "hidden_dim": 64,
        "bottleneck_dim": 32,
        "warmup_epochs": 0,
        "knn_monitor": False,
        "device": "cpu",
        "seed": 0,
        **overrides,
    }


@dataclass
class Stack:
    home: Path
    env: dict[str, str]
    database_url: str
    api_url: str = ""
    api: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    # -- processes -------------------------------------------------------------------------------------------
    def start_api(self, port: int | None = None) -> None:
        """The API under uvicorn; `port` reuses an address (a restart that open pages reconnect to)."""
        port = port or free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        command = [
            sys.executable, "-m", "uvicorn", "--factory", "server.http.app:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            # Open event streams never end by themselves: without a limit uvicorn waits for them on exit.
            "--timeout-graceful-shutdown", "2",
        ]  # fmt: skip
        log = (self.home / "api.log").open("ab")
        self.api = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._api_up, "the API to answer /api/health", deadline_s=60)

    def stop_api(self) -> None:
        assert self.api is not None
        self.api.terminate()
        self.api.wait(timeout=30)

    def _api_up(self) -> bool:
        assert self.api is not None
        if self.api.poll() is not None:
            raise AssertionError(f"the API exited with {self.api.returncode}:\n{self.tail('api.log')}")
        try:
            return httpx.get(f"{self.api_url}/api/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(
        self, name: str, *, queues: str = "cpu,gpu", gpus: str = "none"
    ) -> subprocess.Popen[bytes]:
        """A real `lowdino worker` process; returns once the API lists it as alive."""
        command = [
            sys.executable,
            "-m",
            "lowdino",
            "worker",
            "--name",
            name,
            "--queues",
            queues,
            "--gpus",
            gpus,
        ]
        log = (self.home / f"worker-{name}.log").open("ab")
        process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(process)

        def listed() -> bool:
            if process.poll() is not None:
                raise AssertionError(
                    f"worker {name} exited with {process.returncode}:\n{self.tail(f'worker-{name}.log')}"
                )
            workers = self.get("/api/health")["workers"]
            return any(worker["name"].startswith(f"{name}@") or worker["name"] == name for worker in workers)

        wait_for(listed, f"worker {name} to register", deadline_s=60, every_s=0.2)
        return process

    def stop(self) -> None:
        for process in [*self.workers, *([self.api] if self.api else [])]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers, *([self.api] if self.api else [])]:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for cleanup in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                cleanup()

    def tail(self, name: str, lines: int = 60) -> str:
        path = self.home / name
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""

    # -- REST ------------------------------------------------------------------------------------------------
    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.api_url}{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None, *, expect: int = 200) -> Any:
        response = httpx.post(f"{self.api_url}{path}", json=body, timeout=10)
        assert response.status_code == expect, response.text
        return response.json()

    def submit(self, config: dict[str, Any], name: str) -> str:
        run = self.post("/api/runs", {"kind": "pretrain", "config": config, "name": name}, expect=201)
        return str(run["id"])

    def run(self, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/api/runs/{run_id}"))

    def wait_status(
        self, run_id: str, statuses: set[str] | frozenset[str], deadline_s: float = 120
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            run = self.run(run_id)
            return run if run["status"] in statuses else None

        try:
            return dict(
                wait_for(reached, f"run {run_id} to become {sorted(statuses)}", deadline_s, every_s=0.2)
            )
        except AssertionError as exc:
            logs = "\n".join(self.tail(p.name, 30) for p in self.home.glob("worker-*.log"))
            raise AssertionError(f"{exc}; run is {self.run(run_id)['status']}\nworker logs:\n{logs}") from exc

    def artifact_names(self, run_id: str) -> set[str]:
        return {item["name"] for item in self.get(f"/api/runs/{run_id}/artifacts")["data"]}

    def artifact_text(self, run_id: str, name: str) -> str:
        response = httpx.get(f"{self.api_url}/api/runs/{run_id}/artifacts/{name}", timeout=10)
        response.raise_for_status()
        return response.text


class SSEReader:
    """Reads /api/runs/{id}/events in a thread until a final status event (or `close()`)."""

    def __init__(self, api_url: str, run_id: str) -> None:
        self.url = f"{api_url}/api/runs/{run_id}/events"
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=httpx.Timeout(10, read=30)) as response:
                response.raise_for_status()
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if self._closed.is_set():
                        return
                    if line.startswith(":"):
                        continue
                    if line:
                        key, _, value = line.partition(":")
                        fields[key] = value.lstrip(" ")
                        continue
                    if "data" in fields and "event" in fields:
                        data = json.loads(fields["data"])
                        self.events.append((int(fields.get("id", "0")), fields["event"], data))
                        if fields["event"] == "status" and data.get("status") in FINAL_STATUSES:
                            self.finished.set()
                            return
                    fields = {}
        except BaseException as exc:  # surfaced by the test through `error`
            self.error = exc
        finally:
            self.finished.set()

    def close(self) -> None:
        self._closed.set()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [data for _, event, data in self.events if event == kind]


def redis_db_for_test() -> tuple[int, Callable[[], None]]:
    """An empty Redis database number (another test run may use the others) and a flush for later."""
    import redis

    for number in range(15, 0, -1):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number)
        # SET NX on a marker claims the database against a concurrent test run doing the same.
        if client.dbsize() == 0 and client.set("lowdino-e2e-claim", str(os.getpid()), nx=True, ex=3600):
            return number, lambda client=client: client.flushdb() and None
    raise AssertionError("no empty Redis database (1-15) to run the test in; flush one")


def postgres_database() -> tuple[str, Callable[[], None]]:
    """A fresh database's URL and the call that drops it (a Stack lives longer than a `with` block)."""
    database = temporary_postgres("lowdino_e2e")
    url = database.__enter__()
    return url, lambda: database.__exit__(None, None, None) and None


def make_stack(home: Path, kind: str, *, broker_url: str | None = None) -> Stack:
    """`broker_url` (scaled only): a Redis of the test's own instead of a database of the shared one."""
    home.mkdir(parents=True, exist_ok=True)
    cleanups: list[Callable[[], None]] = []
    if kind == "scaled":
        require_service("PostgreSQL", "127.0.0.1", 5432)
        database_url, drop = postgres_database()
        cleanups.append(drop)
        if broker_url is None:
            require_service("Redis", REDIS_HOST, REDIS_PORT)
            db_number, flush = redis_db_for_test()
            cleanups.append(flush)
            broker_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{db_number}"
    else:
        database_url = f"sqlite:///{home / 'lowdino.db'}"
        broker_url = f"sqla+sqlite:///{home / 'broker.db'}"
    env = {
        **os.environ,
        "LOWDINO_HOME": str(home),
        "LOWDINO_DATABASE_URL": database_url,
        "LOWDINO_BROKER_URL": broker_url,
        "LOWDINO_HEARTBEAT_INTERVAL": str(HEARTBEAT_INTERVAL_S),
        "LOWDINO_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
        # Two shared cores: one thread per trainer avoids oversubscription that makes tiny steps crawl.
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    env.pop("LOWDINO_API_TOKEN", None)
    stack = Stack(home=home, env=env, database_url=database_url, cleanups=cleanups)
    return stack


@contextlib.contextmanager
def running_stack(home: Path, kind: str) -> Iterator[Stack]:
    stack = make_stack(home, kind)
    try:
        stack.start_api()
        yield stack
    finally:
        stack.stop()


def loss_rows_per_step(database_url: str, run_id: str) -> dict[int, int]:
    """step -> number of stored `loss` points, read straight from the database."""
    from sqlalchemy import func, select

    from server.storage.engine import create_db_engine, session_scope
    from server.storage.models import Metric

    engine = create_db_engine(database_url)
    try:
        with session_scope(engine) as session:
            rows = session.execute(
                select(Metric.step, func.count())
                .where(Metric.run_id == run_id, Metric.key == "loss")
                .group_by(Metric.step)
            ).all()
        return {int(step): int(count) for step, count in rows}
    finally:
        engine.dispose()
