"""A real two-process DistributedDataParallel run (torchrun, gloo on CPU), and the torchrun environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from _train_utils import TINY, pretrain_module_args

from lowdino.contract import rundir
from lowdino.contract.metrics_log import iter_records
from lowdino.train.checkpoint import load_checkpoint
from lowdino.train.distributed import context_from_env


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dino", "byol"])  # BYOL's predictor lies outside the DDP module
def test_torchrun_two_processes_write_one_run_from_rank_zero(tmp_path, method) -> None:
    recipe = tmp_path / "tiny.yaml"
    # Global batch 8 -> 4 images per process; 5 steps per epoch over the 40 images left after the
    # monitor's validation split (1 of 5 per class), 2 epochs.
    options = {
        "knn_monitor": True,
        "synthetic_size": 50,
        "val_fraction": 0.2,
        "method": method,
        "byol_projection_dim": 16,
        "byol_hidden_dim": 32,
    }
    recipe.write_text(yaml.safe_dump({**TINY, **options}))
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        *pretrain_module_args(recipe, out),
        "--device",
        "cpu",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]

    summaries = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1  # rank 0 alone prints
    assert summaries[0]["world_size"] == 2
    assert summaries[0]["status"] == "completed"

    records = list(iter_records(out / rundir.METRICS_FILE))
    assert [r["step"] for r in records] == list(range(0, 11))  # one writer: every step once
    assert [r["step"] for r in records if "knn_top1" in r] == [0, 5, 10]  # step 0: random init
    assert (out / rundir.LOG_FILE).read_text().count(f"starting {method}") == 1
    checkpoint = load_checkpoint(out / rundir.CHECKPOINT_FILE)
    assert len(checkpoint["rng"]) == 2  # one RNG state per rank, for an exact resume
    assert not [key for key in checkpoint["method"] if "module." in key]


def test_context_from_torchrun_env() -> None:
    ctx = context_from_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"})
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.is_main, ctx.distributed) == (2, 4, 0, False, True)
    assert not context_from_env({}).distributed
