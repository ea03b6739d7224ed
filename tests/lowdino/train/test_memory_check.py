"""CPU out-of-memory preflight: a batch that cannot fit is refused before step 1 with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _train_utils import tiny_config

from lowdino.train.memory_check import (
    AVAILABLE_MEMORY_ENV,
    GIB,
    InsufficientMemoryError,
    MemoryEstimate,
    available_memory_bytes,
    peak_growth,
    plan_memory,
    refusal,
)
from lowdino.train.trainer import pretrain

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def test_the_real_available_memory_is_read_and_the_override_replaces_it() -> None:
    env = {key: value for key, value in os.environ.items() if key != AVAILABLE_MEMORY_ENV}
    real = available_memory_bytes(env)
    assert real is not None
    assert real > 0
    assert available_memory_bytes({AVAILABLE_MEMORY_ENV: "0.5"}) == GIB // 2
    with pytest.raises(
        InsufficientMemoryError, match=f"{AVAILABLE_MEMORY_ENV}='lots' is not a number of GiB"
    ):
        available_memory_bytes({AVAILABLE_MEMORY_ENV: "lots"})


def test_peak_growth_sees_a_temporary_allocation() -> None:
    def allocate() -> None:
        block = torch.ones(64 * 1024 * 1024 // 4)  # 64 MiB, freed before the call returns
        del block

    growth = peak_growth(allocate)
    assert growth is not None
    assert growth >= 60 * 1024 * 1024


def test_the_plan_scales_the_probe_and_names_the_batch_and_crops_that_fit() -> None:
    estimate = MemoryEstimate(fixed=GIB, per_image=GIB // 10)
    plan = plan_memory(
        estimate,
        per_rank_batch=512,
        world_size=1,
        local_processes=1,
        weight_bytes=GIB // 3,  # AdamW: 3 x weights = 1 GiB
        available=8 * GIB,
        crops=[("global_crop_size", 224), ("local_crop_size", 96)],
    )
    assert not plan.fits
    assert plan.needed == GIB + 512 * (GIB // 10) + 3 * (GIB // 3)
    assert plan.largest_batch == 60  # (8 - 1 - 1) GiB / 0.1 GiB
    message = str(refusal(plan, batch_size=512))
    assert "\n" not in message
    assert message.startswith("not enough memory on the CPU: one step at batch 512 needs about 53.2 GiB")
    assert "8.0 GiB is available; use --batch-size 60 or smaller" in message
    # sqrt(6 / 51.2) = 0.342: 224 -> 76 -> 72, 96 -> 32
    assert "(or keep it with --global-crop-size 72 --local-crop-size 32)" in message


def test_two_local_processes_need_twice_and_get_half_each() -> None:
    plan = plan_memory(
        MemoryEstimate(fixed=0, per_image=GIB),
        per_rank_batch=4,
        world_size=2,
        local_processes=2,
        weight_bytes=0,
        available=6 * GIB,
        crops=[],
    )
    assert plan.needed == 8 * GIB
    assert plan.largest_batch == 6  # 3 per process, 2 processes


def test_a_batch_beyond_the_available_memory_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Deterministic: the check reads this cap instead of the machine's free memory.
    monkeypatch.setenv(AVAILABLE_MEMORY_ENV, "0.001")
    out = tmp_path / "run"
    with pytest.raises(
        InsufficientMemoryError,
        match=r"one step at batch 8 needs about .* GiB \(scaled from probes of 2 and 4 images\)",
    ):
        pretrain(tiny_config(out))
    assert not out.exists()


@pytest.mark.slow
def test_the_check_can_be_turned_off_and_leaves_a_roomy_run_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AVAILABLE_MEMORY_ENV, "0.001")
    assert pretrain(tiny_config(tmp_path / "off", memory_check=False, max_steps=1))["steps"] == 1
    monkeypatch.setenv(AVAILABLE_MEMORY_ENV, "1000")
    assert pretrain(tiny_config(tmp_path / "roomy", max_steps=1))["steps"] == 1


@pytest.mark.parametrize(
    "overrides",
    [{"koleo_weight": 0.1}, {"method": "byol"}, {"use_bn_in_head": True}],
    ids=["dino-koleo", "byol", "dino-bn-head"],
)
def test_the_probe_runs_the_trainers_own_step_at_batches_every_loss_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: dict[str, object]
) -> None:
    # KoLeo needs 2 images per global crop: a 1-image probe crashed the flagship recipe before step 1.
    # 1 GiB is below obviously_fits' generous bound for this batch, so the probe does run.
    monkeypatch.setenv(AVAILABLE_MEMORY_ENV, "1")
    out = tmp_path / "run"
    assert pretrain(tiny_config(out, max_steps=1, **overrides))["steps"] == 1
    log = (out / "train.log").read_text()
    assert "memory check: one step at batch 8 needs about" in log, log


@pytest.mark.slow
def test_the_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    command = [
        sys.executable, "-m", "lowdino", "pretrain", "--dataset", "synthetic", "--synthetic-size", "40",
        "--backbone", "mobilevit_xxs", "--global-crop-size", "32", "--local-crop-size", "16",
        "--batch-size", "8", "--max-steps", "1", "--no-knn-monitor", "--device", "cpu",
        "--output-dir", str(out),
    ]  # fmt: skip
    env = {**os.environ, AVAILABLE_MEMORY_ENV: "0.001", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("lowdino pretrain: error: not enough memory on the CPU: one step at batch 8")
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_a_rank_whose_own_plan_fits_still_refuses_with_its_peers() -> None:
    message = str(refusal(None, batch_size=64))
    assert message.startswith("not enough memory on the CPU of another process of this run at batch 64")


@pytest.mark.slow
def test_under_torchrun_every_rank_refuses_and_none_waits(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "lowdino", "pretrain", "--dataset", "synthetic", "--synthetic-size", "40",
        "--backbone", "mobilevit_xxs", "--global-crop-size", "32", "--local-crop-size", "16",
        "--batch-size", "16", "--max-steps", "1", "--no-knn-monitor", "--device", "cpu",
        "--output-dir", str(out),
    ]  # fmt: skip
    env = {**os.environ, AVAILABLE_MEMORY_ENV: "0.001", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode != 0
    # Counted in the text, not per line: two ranks writing to one pipe can interleave their lines.
    refusals = result.stderr.count("error: not enough memory on the CPU")
    assert refusals == 2, result.stderr[-3000:]  # one per rank: 8 images each > the 4-image probe
    assert not (out / "metrics.jsonl").exists()
