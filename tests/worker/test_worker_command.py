"""The child's argv and environment."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from lowdino.errors import ConfigError
from worker.command import build_command, child_env, guarded, plan_launch


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


def test_plan_single_process_by_default() -> None:
    plan = plan_launch("pretrain", {"device": "auto", "device_ids": None}, worker_gpus=(2, 3))
    assert (plan.nproc, plan.visible_gpus, plan.config_overrides) == (1, [2, 3], {})
    assert plan_launch("pretrain", {}, worker_gpus=None).visible_gpus is None
    # eval and export never run distributed; neither does a CPU run.
    assert plan_launch("eval", {"device_ids": [0, 1]}, worker_gpus=None).nproc == 1
    assert plan_launch("export", {"device_ids": [0, 1]}, worker_gpus=None).nproc == 1
    assert plan_launch("pretrain", {"device": "cpu", "device_ids": [0, 1]}, worker_gpus=None).nproc == 1


def test_plan_several_gpus_becomes_ddp_on_the_workers_gpus() -> None:
    plan = plan_launch("distill", {"device": "cuda", "device_ids": [0, 1]}, worker_gpus=(4, 5, 6))
    assert (plan.nproc, plan.visible_gpus, plan.config_overrides) == (2, [4, 5], {"device_ids": None})
    unpinned = plan_launch("pretrain", {"device_ids": [1, 3]}, worker_gpus=None)
    assert (unpinned.nproc, unpinned.visible_gpus) == (2, [1, 3])


def test_plan_asking_for_more_gpus_than_the_worker_has_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"asks for GPUs \[0, 2\] but this worker has 2 \(--gpus 0,1\)"):
        plan_launch("pretrain", {"device_ids": [0, 2]}, worker_gpus=(0, 1))


def test_guarded_wraps_with_the_parent_pid_and_signal() -> None:
    argv = guarded(["python", "-m", "lowdino"], nproc=1, python="py")
    assert argv[:6] == ["py", "-m", "worker.orphan_guard", str(os.getpid()), str(int(signal.SIGKILL)), "--"]
    assert argv[6:] == ["python", "-m", "lowdino"]
    assert guarded(["x"], nproc=2)[4] == str(int(signal.SIGTERM))
