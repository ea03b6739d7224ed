"""The child's argv and environment."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lowdino.errors import ConfigError
from worker.command import build_command, child_env


def test_single_process_command(tmp_path: Path) -> None:
    argv = build_command("pretrain", tmp_path)
    assert argv == [
        sys.executable, "-m", "lowdino", "pretrain",
        "--config", str(tmp_path / "config.yaml"), "--output-dir", str(tmp_path),
    ]  # fmt: skip
    assert build_command("eval", tmp_path, resume=True)[-1] == "--resume"


def test_several_processes_go_through_torchrun(tmp_path: Path) -> None:
    argv = build_command("distill", tmp_path, nproc=2)
    assert argv[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc_per_node=2" in argv
    assert argv[argv.index("-m", 3) :][:3] == ["-m", "lowdino", "distill"]


def test_bad_kind_or_nproc_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not one of"):
        build_command("train", tmp_path)
    with pytest.raises(ConfigError, match="at least one process"):
        build_command("pretrain", tmp_path, nproc=0)


def test_child_env_pins_gpus_and_unbuffers() -> None:
    env = child_env([0, 3], base={"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "7"})
    assert env == {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0,3", "PYTHONUNBUFFERED": "1"}
    assert child_env([], base={})["CUDA_VISIBLE_DEVICES"] == ""
    assert child_env(None, base={"CUDA_VISIBLE_DEVICES": "1"})["CUDA_VISIBLE_DEVICES"] == "1"
    assert child_env(None, base={}, extra={"A": "b"})["A"] == "b"
