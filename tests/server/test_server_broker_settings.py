"""Settings from the environment, the queue rule, and publishing to a real Redis broker."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError
from services import REDIS_HOST, REDIS_PORT, require_service

from server.errors import BrokerUnavailableError
from server.settings import Settings
from server.workers.broker import make_celery, send_run
from server.workers.queues import TASK_NAME, queue_for


def test_defaults_follow_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOWDINO_HOME", str(tmp_path / "lh"))
    settings = Settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'lh' / 'lowdino.db'}"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path / 'lh' / 'broker.db'}"
    assert settings.runs_dir == tmp_path / "lh" / "runs"
    assert settings.data_roots == [(tmp_path / "lh" / "data").resolve()]  # ./data does not exist here
    (tmp_path / "data").mkdir()
    assert (tmp_path / "data").resolve() in Settings().data_roots
    assert settings.heartbeat_timeout < 60


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOWDINO_DATABASE_URL", "postgresql+psycopg://u@db/lowdino")
    monkeypatch.setenv("LOWDINO_BROKER_URL", "redis://cache:6379/0")
    monkeypatch.setenv("LOWDINO_API_TOKEN", "t")
    monkeypatch.setenv("LOWDINO_DATA_ROOTS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    settings = Settings()
    assert (settings.database_url, settings.broker_url, settings.api_token) == (
        "postgresql+psycopg://u@db/lowdino",
        "redis://cache:6379/0",
        "t",
    )
    assert settings.data_roots == [tmp_path / "a", tmp_path / "b"]
    monkeypatch.setenv("LOWDINO_DATA_ROOTS", json.dumps([str(tmp_path / "c")]))
    assert Settings().data_roots == [tmp_path / "c"]


def test_heartbeat_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="heartbeat_timeout"):
        Settings(heartbeat_timeout=90)
    with pytest.raises(ValidationError, match="heartbeat_interval"):
        Settings(heartbeat_interval=20, heartbeat_timeout=10)


@pytest.mark.parametrize(
    ("config", "queue"),
    [
        ({"device": "cpu"}, "cpu"),
        ({"device": "auto"}, "cpu"),
        ({"device": "cuda"}, "gpu"),
        ({"device": "auto", "device_ids": [0, 1]}, "gpu2"),
        ({"device": "cuda", "device_ids": [3]}, "gpu"),
        ({"device": "cpu", "device_ids": [0, 1]}, "cpu"),
        ({"device": "auto", "device_ids": None}, "cpu"),
    ],
)
def test_queue_rule(config: dict, queue: str) -> None:
    assert queue_for("pretrain", config) == queue


def test_send_task_arrives_in_a_real_redis_queue() -> None:
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    import redis

    # A private queue name, so that no worker of another test session can consume the message first.
    queue = f"lowdino-test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0)
    celery_app = make_celery(f"redis://{REDIS_HOST}:{REDIS_PORT}/0")
    try:
        task_id = send_run(celery_app, run_id="abc123", queue=queue)
        raw = client.lpop(queue)
        assert raw is not None
        message = json.loads(raw)
        assert message["headers"]["task"] == TASK_NAME
        assert message["headers"]["id"] == task_id
        assert message["properties"]["delivery_info"]["routing_key"] == queue
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        assert (args, kwargs) == (["abc123"], {})
    finally:
        client.delete(queue)
        client.close()


def test_unreachable_broker_is_a_clear_error() -> None:
    celery_app = make_celery("redis://127.0.0.1:1/0")
    with pytest.raises(BrokerUnavailableError, match="unreachable"):
        send_run(celery_app, run_id="x", queue="cpu")
