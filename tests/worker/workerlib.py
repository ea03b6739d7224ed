"""Helpers for the worker tests: services, tiny queued runs, supervisor options with the fake trainer."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from lowdino.config import PretrainConfig
from server.runs import queries as run_queries
from server.storage.engine import session_scope
from worker.command import build_command, guarded
from worker.supervisor import SupervisorOptions

FAKE_TRAINER = Path(__file__).with_name("fake_trainer.py")


def tiny_pretrain_config(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "dataset": "synthetic",
        "synthetic_size": 64,
        "backbone": "resnet5m",
        "batch_size": 16,
        "n_epochs": 1,
        "global_crop_size": 16,
        "local_crop_size": 8,
        "knn_monitor": False,
        "device": "cpu",
        **overrides,
    }
    return PretrainConfig(**values).model_dump(mode="json")


def make_run(engine: Engine, runs_root: Path, **config_overrides: Any) -> str:
    """A queued pretrain run whose output_dir lies under `runs_root` (as the API would create it)."""
    run_id = uuid.uuid4().hex[:12]
    config = tiny_pretrain_config(**config_overrides)
    with session_scope(engine) as session:
        run_queries.create_run(
            session,
            kind="pretrain",
            config=config,
            run_id=run_id,
            output_dir=str(runs_root / run_id),
            queue="cpu",
        )
    return run_id


def fake_launcher(kind: str, run_dir: Path, resume: bool, nproc: int) -> list[str]:
    """The real command line with `-m lowdino` swapped for the fake trainer, behind the orphan guard."""
    argv = build_command(kind, run_dir, resume=resume, nproc=nproc)
    return guarded([sys.executable, str(FAKE_TRAINER), *argv[3:]], nproc=nproc)


def options_for(runs_root: Path, **fake_env: str) -> SupervisorOptions:
    return SupervisorOptions(
        runs_root=runs_root,
        heartbeat_interval=0.2,
        poll_interval=0.05,
        launcher=fake_launcher,
        env_extra=fake_env,
    )


def wait_for(condition: Callable[[], Any], what: str, deadline_s: float = 30.0) -> Any:
    """Poll `condition` until truthy; the deadline only bounds a hang, it asserts no speed."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")
