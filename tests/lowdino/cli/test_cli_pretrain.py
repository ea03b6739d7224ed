"""`lowdino pretrain`: flags generated from PretrainConfig, --config layering, errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from _train_utils import TINY, pretrain_module_args

from lowdino.cli.main import build_parser, main
from lowdino.cli.pretrain import config_from_args
from lowdino.config import PretrainConfig
from lowdino.contract import rundir
from lowdino.train.builders import check_crop_sizes, default_output_dir

ORIGINAL_TRAINER_FLAGS = [
    "-b",
    "64",
    "-l",
    "1",
    "--momentum-teacher",
    "0.996",
    "-c",
    "6",
    "-e",
    "2",
    "-o",
    "2048",
    "-t",
    "logs",
    "--clip-grad",
    "3",
    "--norm-last-layer",
    "--batch-size-eval",
    "8",
    "--teacher-temp",
    "0.04",
    "--student-temp",
    "0.1",
    "-d",
    "0,1",
    "--pretrained",
    "--weight-decay",
    "0.4",
]


def _config(*argv: str) -> PretrainConfig:
    return config_from_args(build_parser().parse_args(["pretrain", *argv]))


def test_every_flag_of_the_original_trainer_parses() -> None:
    config = _config(*ORIGINAL_TRAINER_FLAGS)
    assert config.batch_size == 64
    assert config.logging_freq == 1
    assert config.momentum_teacher == 0.996
    assert config.n_crops == 6
    assert config.n_epochs == 2
    assert config.out_dim == 2048
    assert config.tensorboard_dir == "logs"
    assert config.clip_grad == 3.0
    assert config.norm_last_layer is True
    assert config.batch_size_eval == 8
    assert config.teacher_temp == 0.04
    assert config.student_temp == 0.1
    assert config.device_ids == [0, 1]
    assert config.pretrained is True
    assert config.weight_decay == 0.4


def test_flags_override_the_config_file(tmp_path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("backbone: resnet5m\nbatch-size: 32\nlr: 0.001\nnorm_last_layer: true\n")
    config = _config("--config", str(path), "-b", "16", "--no-norm-last-layer")
    assert config.backbone == "resnet5m"  # from the file
    assert config.lr == 0.001  # from the file
    assert config.batch_size == 16  # flag beats file
    assert config.norm_last_layer is False  # flag beats file
    assert config.out_dim == PretrainConfig.model_fields["out_dim"].default  # neither: model default


def test_every_recipe_in_configs_is_valid() -> None:
    recipes = sorted((Path(__file__).parents[3] / "configs").glob("*.yaml"))
    assert {path.name for path in recipes} >= {
        "quickstart.yaml",
        "cifar10_mobilevit_s.yaml",
        "cifar10_mobilevit_xs.yaml",
        "cifar10_mobilevit_xxs.yaml",
        "cifar10_mobilenetv2_100.yaml",
        "cifar10_resnet5m.yaml",
        "imagenette.yaml",
        "imagenet.yaml",
    }
    for path in recipes:
        config = _config("--config", str(path))
        check_crop_sizes(config)  # the backbone accepts the recipe's crops
        assert path.read_text().startswith("#"), (
            f"{path.name} needs a header comment saying where its numbers come from"
        )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-b", "0"], "batch_size: must be >= 1 (got 0)"),
        (["--local-crop-size", "64", "--global-crop-size", "32"], "local_crop_size (64) must not exceed"),
        (["--config", "/nonexistent/recipe.yaml"], "does not exist; pass an existing YAML file to --config"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, message) -> None:
    assert main(["pretrain", *argv]) == rundir.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("lowdino pretrain: error: ")
    assert message in err


def test_unknown_option_in_the_config_file(tmp_path, capsys) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("batch_sise: 32\n")
    assert main(["pretrain", "--config", str(path)]) == rundir.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "batch_sise: is not an option" in err


def test_malformed_flag_value_is_an_argparse_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "-b", "many"])
    assert exit_info.value.code == rundir.EXIT_USER_ERROR
    assert "argument -b/--batch-size: invalid int value: 'many'" in capsys.readouterr().err


def test_default_output_dir_names_backbone_and_time() -> None:
    config = PretrainConfig(backbone="mobilevit_xxs")
    path = default_output_dir(config, now=datetime(2025, 1, 2, 3, 4, 5))
    assert path == Path("runs") / "pretrain-mobilevit_xxs-20250102-030405"


@pytest.mark.slow
def test_python_m_lowdino_pretrain_exit_codes(tmp_path) -> None:
    """Through a real process: 75 when stopped, 0 when resumed to the end, 2 on a second fresh start."""
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump({**TINY, "max_steps": 3}))
    out = tmp_path / "run"
    rundir.RunDir(out).request_stop()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, *pretrain_module_args(recipe, out)]
        return subprocess.run(
            [*argv, *extra], capture_output=True, text=True, env=env, timeout=300, check=False
        )

    stopped = run()
    assert stopped.returncode == rundir.EXIT_CANCELLED, stopped.stderr
    assert json.loads(stopped.stdout)["status"] == "cancelled"

    resumed = run("--resume")
    assert resumed.returncode == rundir.EXIT_OK, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert (summary["status"], summary["steps"]) == ("completed", 3)

    again = run()
    assert again.returncode == rundir.EXIT_USER_ERROR
    assert again.stderr.strip().splitlines() == [
        f"lowdino pretrain: error: {out} already holds a run; pass --resume to continue it or choose another "
        "--output-dir"
    ]


def test_eval_without_a_model_source_names_the_options_in_one_line(capsys) -> None:
    # The library's message names the options (the REST API shows it too); the flags are --<option>.
    assert main(["eval", "--dataset", "synthetic"]) == rundir.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "exactly one of checkpoint" in err
    assert "backbone" in err
    assert "--checkpoint" not in err
