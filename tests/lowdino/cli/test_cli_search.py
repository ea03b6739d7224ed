"""`lowdino search` end to end on the real trainer: trials as run directories, the study, the best preset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from lowdino.cli.main import main
from lowdino.config import PretrainConfig
from lowdino.config.loading import build_config
from lowdino.contract.rundir import RESULTS_JSON

pytestmark = pytest.mark.slow

# Synthetic 16 px images, resnet5m, a tiny head: 80 training images (batch 16, 5 steps per epoch) and a
# 20-image validation split for the kNN monitor.
BASE: dict[str, Any] = {
    "dataset": "synthetic",
    "synthetic_size": 100,
    "val_fraction": 0.2,
    "backbone": "resnet5m",
    "batch_size": 16,
    "n_epochs": 2,
    "global_crop_size": 16,
    "local_crop_size": 8,
    "out_dim": 64,
    "hidden_dim": 64,
    "bottleneck_dim": 32,
    "warmup_epochs": 0,
    "device": "cpu",
    "memory_check": False,
    "batch_size_eval": 64,
}
SPACE = {"lr": {"float": [1e-4, 1e-2], "log": True}, "out_dim": {"choice": [32, 64]}}


def knn_records(run_dir: Path) -> dict[int, float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return {record["step"]: record["knn_top1"] for record in records if "knn_top1" in record}


def _search_command(tmp_path: Path, space: dict[str, Any]) -> tuple[list[str], Path]:
    """`lowdino search` on BASE and `space` (written to tmp_path), and the output directory to pass it."""
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    argv = ["search", "--config", str(tmp_path / "base.yaml"), "--space", str(tmp_path / "space.yaml")]
    return argv, tmp_path / "search"


def test_search_runs_each_trial_as_a_run_directory_and_saves_the_best_recipe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, out = _search_command(tmp_path, SPACE)
    argv += ["--trials", "3", "--budget-steps", "6", "--reports", "2", "--sampler", "random"]
    argv += ["--pruner", "none", "--seed", "3", "--trial-minutes", "30", "--output-dir", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert [f"trial {n}/3 complete" in printed for n in (1, 2, 3)] == [True] * 3

    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 3
    for trial in study.trials:
        run_dir = out / "trials" / f"{trial.number:04d}"
        config = build_config(PretrainConfig, file=run_dir / "config.yaml")
        assert config.max_steps == 6
        assert config.max_minutes == 30  # the time limit each trial's trainer keeps
        assert config.knn_every_steps == 3
        assert config.lr == pytest.approx(trial.params["lr"])
        assert config.out_dim == trial.params["out_dim"]
        measured = knn_records(run_dir)
        assert 3 in measured
        assert 6 in measured
        # The trial's value is the validation kNN at the end of its budget, as its run recorded it.
        assert trial.value == pytest.approx(measured[6])
        assert not (run_dir / RESULTS_JSON).exists()  # no evaluation, on the test split or any other

    best = max(study.trials, key=lambda trial: trial.value)
    text = (out / "best.yaml").read_text()
    assert text.startswith("# Found by recipe search")
    assert "test split was not looked at" in text
    assert f"= {best.value:.2f} % after 6 steps (or 30 minutes if that comes first) per trial" in text
    preset = build_config(PretrainConfig, file=out / "best.yaml")
    assert preset.lr == pytest.approx(best.params["lr"])
    assert preset.out_dim == best.params["out_dim"]
    assert preset.max_steps is None  # the search's budget is not part of the recipe
    assert f"best: trial {best.number}, validation kNN {best.value:.2f} %" in printed
    # The closing lines say where the study and the best recipe are, and the one command that views them.
    assert (
        f"best recipe: {out / 'best.yaml'} (train it: lowdino pretrain --config {out / 'best.yaml'})"
        in printed
    )
    assert f"view it:     optuna-dashboard sqlite:///{(out / 'study.db').resolve()}" in printed

    # The same command again continues the study: nothing left to run, the same best.
    assert main(argv) == 0
    assert len(optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}").trials) == 3


def test_an_invalid_space_is_refused_before_any_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, out = _search_command(tmp_path, {"lr": {"float": [0.1, 50]}})
    assert main([*argv, "--trials", "2", "--budget-steps", "4", "--output-dir", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.strip() == "lowdino search: error: space.lr: 50 is refused: must be <= 10.0 (got 50)"
    assert not out.exists()


def test_a_non_positive_trial_time_is_refused_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, out = _search_command(tmp_path, SPACE)
    assert main([*argv, "--budget-steps", "4", "--trial-minutes", "0", "--output-dir", str(out)]) == 2
    error = capsys.readouterr().err
    assert (
        error.strip() == "lowdino search: error: invalid SearchConfig: trial_minutes: must be > 0.0 (got 0.0)"
    )
    assert not out.exists()
