"""`lowdino worker` options, identity parsing and the Celery configuration it runs with."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from lowdino.errors import ConfigError
from server.settings import Settings
from server.workers.broker import REDIS_VISIBILITY_TIMEOUT_S, broker_transport_options, make_celery
from worker.cli import celery_argv, register
from worker.identity import WorkerIdentity, default_name, parse_gpus, parse_queues


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["worker", *argv])


def test_defaults_and_options() -> None:
    args = _parse()
    assert (args.gpus, args.queues, args.concurrency, args.name) == (None, "cpu,gpu", 1, None)
    args = _parse("--gpus", "0,1", "--queues", "gpu", "--name", "big")
    assert (args.gpus, args.queues, args.name) == ("0,1", "gpu", "big")


def test_concurrency_other_than_one_is_refused() -> None:
    args = _parse("--concurrency", "2")
    with pytest.raises(ConfigError, match="one run at a time"):
        args.func(args)


def test_bad_options_exit_2_with_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", "--gpus", "zero"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "lowdino worker: error: --gpus must be comma-separated GPU indices like 0,1 (or none), got 'zero'"
    ]


def test_gpu_and_queue_parsing() -> None:
    assert parse_gpus(None) is None
    assert parse_gpus("none") == ()
    assert parse_gpus(" 0, 2 ") == (0, 2)
    with pytest.raises(ConfigError, match="distinct"):
        parse_gpus("1,1")
    assert parse_queues(None) == ("cpu", "gpu")
    assert parse_queues("gpu") == ("gpu",)
    with pytest.raises(ConfigError, match="at least one queue"):
        parse_queues(" , ")
    assert default_name((0, 1), "box", 7) == "gpu0-1-7@box"
    assert default_name((), "box", 7) == "cpu-7@box"


def test_identity_from_environment() -> None:
    env = {"LOWDINO_WORKER_NAME": "w@h", "LOWDINO_WORKER_GPUS": "3", "LOWDINO_WORKER_QUEUES": "gpu"}
    identity = WorkerIdentity.from_env(env)
    assert (identity.name, identity.gpus, identity.queues) == ("w@h", (3,), ("gpu",))
    assert WorkerIdentity.from_env({}).gpus is None


def test_celery_worker_arguments() -> None:
    argv = celery_argv(name="w@h", queues=("cpu", "gpu"), loglevel="INFO")
    assert argv[0] == "worker"
    assert {
        "--pool=solo",
        "--concurrency=1",
        "--prefetch-multiplier=1",
        "--queues=cpu,gpu",
        "--hostname=w@h",
    } <= set(argv)


def test_transport_options_fit_the_broker() -> None:
    assert broker_transport_options("redis://localhost:6379/0") == {
        "visibility_timeout": REDIS_VISIBILITY_TIMEOUT_S
    }
    # kombu's SQLAlchemy transport hands its options to create_engine(): no visibility_timeout there.
    assert broker_transport_options("sqla+sqlite:////tmp/b.db") == {"connect_args": {"timeout": 30}}
    assert broker_transport_options("filesystem://") == {}


def test_celery_app_delivery_settings(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)  # type: ignore[call-arg]
    app = make_celery(settings.broker_url, role="worker")
    conf = app.conf
    assert conf.broker_url == f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    assert (conf.task_acks_late, conf.worker_prefetch_multiplier, conf.worker_concurrency) == (True, 1, 1)
    assert conf.task_ignore_result is True
    assert conf.result_backend is None


def test_the_worker_registers_the_task_name_the_api_sends() -> None:
    import worker.tasks  # noqa: F401  (registers the task on the worker's app)
    from server.workers.queues import TASK_NAME
    from worker.celery_app import app

    assert app.tasks[TASK_NAME].name == TASK_NAME


def test_the_api_fails_fast_where_the_worker_retries(tmp_path: Path) -> None:
    url = Settings(home=tmp_path).broker_url  # type: ignore[call-arg]
    api, worker = make_celery(url), make_celery(url, role="worker")
    assert api.conf.broker_connection_retry_on_startup is False
    assert worker.conf.broker_connection_retry_on_startup is True
    assert api.conf.broker_transport_options == worker.conf.broker_transport_options
    assert "worker.tasks" not in api.conf.include
