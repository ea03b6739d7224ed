"""Wall-clock checkpoint cadence (checkpoint_every_minutes): a kill loses at most that much time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _train_utils import tiny_config

from lowdino.config import PretrainConfig
from lowdino.contract import rundir
from lowdino.train.checkpoint import load_checkpoint
from lowdino.train.trainer import pretrain

pytestmark = pytest.mark.usefixtures("torch_single_thread")


class CheckpointSeen:
    """Records, at each step's metrics record, the step of checkpoint.pth on disk (None: no file yet)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / rundir.CHECKPOINT_FILE
        self.seen: dict[int, int | None] = {}

    def on_metrics(self, record: dict[str, Any]) -> None:
        self.seen[record["step"]] = int(load_checkpoint(self.path)["step"]) if self.path.is_file() else None

    def should_stop(self) -> bool:
        return False


@pytest.mark.slow
def test_wall_clock_cadence_saves_before_the_step_cadence_would(tmp_path: Path) -> None:
    out = tmp_path / "run"
    seen = CheckpointSeen(out)
    # 6e-7 minutes (36 µs) is shorter than any training step: a save after every step.
    pretrain(
        tiny_config(out, checkpoint_every_steps=4, checkpoint_every_minutes=6e-7, max_steps=3),
        callbacks=[seen],
    )
    # The record of step k is written before step k's save: step 2 sees the save of step 1.
    assert seen.seen == {1: None, 2: 1, 3: 2}
    assert load_checkpoint(out / rundir.CHECKPOINT_FILE)["step"] == 3


@pytest.mark.slow
def test_without_the_wall_clock_cadence_only_steps_and_epochs_save(tmp_path: Path) -> None:
    out = tmp_path / "run"
    seen = CheckpointSeen(out)
    pretrain(
        tiny_config(out, checkpoint_every_steps=2, checkpoint_every_minutes=0, max_steps=4),
        callbacks=[seen],
    )
    assert seen.seen == {1: None, 2: None, 3: 2, 4: 2}


def test_the_default_cadence_is_a_few_minutes() -> None:
    assert PretrainConfig().checkpoint_every_minutes == 5.0
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        PretrainConfig(checkpoint_every_minutes=-1)
