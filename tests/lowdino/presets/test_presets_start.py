"""Every shipped preset starts: two steps through the CLI on the CPU, CPU memory check on.

A preset that crashes before its first step (the flagship recipe once did, in the memory check's
probe) is found here, not by a user. Each preset keeps its own settings; only what a CPU test cannot
afford shrinks: the data (a small real CIFAR-10 subset instead of the preset's dataset), the steps
(2), the kNN monitor's subsets, and the batch and crop sides of the 224 px recipes (`_cpu_step`: at
224 / 96 px and 8 images, imagenet.yaml took 40 s of CPU, over a minute on a shared 2-core machine).
The device is the CPU, whatever the preset asks for.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from pydantic import BaseModel, ValidationError

from lowdino.backbones import create_backbone, get_spec
from lowdino.config import DistillConfig, PretrainConfig
from lowdino.contract.rundir import RunDir
from lowdino.methods.teacher import is_checkpoint_path
from lowdino.train.kinds import model_name, step_crops
from lowdino.train.memory_check import AVAILABLE_MEMORY_ENV

PRESETS_DIR = Path(__file__).resolve().parents[3] / "lowdino" / "presets"
PRESETS = sorted(PRESETS_DIR.glob("*.yaml"))  # studies/ holds study presets, not run configs
TRAIN_KINDS: dict[str, type[BaseModel]] = {"pretrain": PretrainConfig, "distill": DistillConfig}

# Pixels of one step's crops the test affords: a CIFAR-10 recipe's batch of 128 at 2 x 32 px crops.
PIXEL_BUDGET = 128 * 2 * 32 * 32
# Above the memory check's larger probe (4 images), so that the check runs rather than skips.
MIN_BATCH = 8
# Below what obviously_fits needs to skip the probe for any preset here, above what any step needs.
AVAILABLE_GB = "8"


def _kind(values: dict[str, Any]) -> str:
    """The training run kind whose config model accepts the preset (the models refuse unknown keys)."""
    kinds = []
    for kind, model in TRAIN_KINDS.items():
        try:
            model.model_validate(values)
        except ValidationError:
            continue
        kinds.append(kind)
    assert len(kinds) == 1, (
        f"a preset must be exactly one training kind of {sorted(TRAIN_KINDS)}, got {kinds}"
    )
    return kinds[0]


def _cpu_step(config: PretrainConfig | DistillConfig) -> list[str]:
    """Flags keeping one step within PIXEL_BUDGET pixels of crops: the preset's batch where it fits
    (never below MIN_BATCH), and where even MIN_BATCH images do not, every crop side scaled by one
    factor (to the backbone's input multiple)."""
    crops = step_crops(config)
    pixels = sum(side * side for _, side in crops)
    flags = ["--batch-size", str(min(config.batch_size, max(MIN_BATCH, PIXEL_BUDGET // pixels)))]
    if MIN_BATCH * pixels > PIXEL_BUDGET:
        scale = math.sqrt(PIXEL_BUDGET / (MIN_BATCH * pixels))
        spec = get_spec(model_name(config))
        for field, side in dict(crops).items():
            smaller = max(spec.min_input_size, int(side * scale) // spec.input_multiple * spec.input_multiple)
            flags += [f"--{field.replace('_', '-')}", str(smaller)]
    return flags


def _distill_teacher(config: DistillConfig, tmp_path: Path) -> list[str]:
    """Weights for a registry teacher (the preset's would come from timm's cache, offline here)."""
    if is_checkpoint_path(config.teacher) or config.teacher_weights:
        return []
    path = tmp_path / "teacher.pth"
    torch.save(create_backbone(config.teacher).state_dict(), path)
    return ["--teacher-weights", str(path)]


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS, ids=[path.stem for path in PRESETS])
def test_every_preset_trains_two_steps_on_the_cpu_with_the_memory_check(
    preset: Path, cifar_folder: Path, tmp_path: Path
) -> None:
    values = yaml.safe_load(preset.read_text())
    kind = _kind(values)
    config = TRAIN_KINDS[kind].model_validate(values)
    assert isinstance(config, PretrainConfig | DistillConfig)
    out = tmp_path / "run"
    args = ["--config", str(preset), "--device", "cpu", "--max-steps", "2", "--output-dir", str(out)]
    if config.dataset != "synthetic":
        args += ["--dataset", "imagefolder", "--data-path", str(cifar_folder)]
    args += [*_cpu_step(config), "--knn-max-train", "50", "--knn-max-val", "20"]
    if isinstance(config, DistillConfig):
        args += _distill_teacher(config, tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", AVAILABLE_MEMORY_ENV: AVAILABLE_GB}
    result = subprocess.run(
        [sys.executable, "-m", "lowdino", kind, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(result.stdout.splitlines()[-1])
    assert (summary["status"], summary["steps"]) == ("completed", 2)
    run = RunDir(out)
    steps = [json.loads(line)["step"] for line in run.metrics.read_text().splitlines()]
    assert steps == ([0, 1, 2] if config.knn_monitor else [1, 2])  # step 0: the random-init kNN look
    log = run.log.read_text()
    assert "memory check: one step at batch" in log, log  # the probe ran the real step, not a shortcut
