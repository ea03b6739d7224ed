"""Config layering, validation messages and CLI flag generation."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest

from lowdino.cli.args import add_model_arguments
from lowdino.config import CONFIG_MODELS, DistillConfig, EvalConfig, PretrainConfig, RunKind
from lowdino.config.loading import build_config, dump_config
from lowdino.errors import ConfigError


def test_defaults_match_the_original_trainer() -> None:
    config = PretrainConfig()
    assert (config.batch_size, config.logging_freq, config.n_crops, config.n_epochs) == (1024, 1, 4, 50)
    assert config.momentum_teacher == 0.9995
    assert isinstance(config.momentum_teacher, float)
    assert (config.out_dim, config.clip_grad, config.batch_size_eval) == (1024, 2.0, 8)
    assert (config.teacher_temp, config.student_temp, config.weight_decay) == (0.04, 0.1, 0.4)
    assert config.tensorboard_dir == "logs"
    assert config.norm_last_layer is False
    assert config.pretrained is False


def test_yaml_file_then_overrides(tmp_path: Path) -> None:
    file = tmp_path / "recipe.yaml"
    file.write_text("batch-size: 64\nout_dim: 2048\nteacher_temp: 0.02\n")
    config = build_config(PretrainConfig, file=file, overrides={"out_dim": 512})
    assert config.batch_size == 64
    assert config.teacher_temp == 0.02
    assert config.out_dim == 512
    again = tmp_path / "dump.yaml"
    again.write_text(dump_config(config))
    assert build_config(PretrainConfig, file=again) == config


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"batch_size": 0}, "batch_size: must be >= 1 (got 0)"),
        ({"momentum_teacher": 1.5}, "momentum_teacher: must be <= 1"),
        ({"dataset": "mnist"}, "dataset: must be one of"),
        ({"batchsize": 3}, "batchsize: is not an option"),
        ({"global_crop_size": 16, "local_crop_size": 32}, "local_crop_size (32) must not exceed"),
        ({"device_ids": "0,x"}, "device_ids must be comma-separated integers"),
    ],
)
def test_invalid_values_give_one_line_naming_field_and_range(overrides: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(PretrainConfig, overrides=overrides)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_missing_and_malformed_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        build_config(PretrainConfig, file=tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("batch_size: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        build_config(PretrainConfig, file=bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="mapping"):
        build_config(PretrainConfig, file=scalar)


def test_eval_config_parses_comma_lists_and_checks_fractions() -> None:
    config = EvalConfig(backbone="resnet5m", protocols="knn,finetune", label_fractions="0.1,0.3", seeds="0,1")
    assert config.protocols == ["knn", "finetune"]
    assert config.label_fractions == [0.1, 0.3]
    assert config.seeds == [0, 1]
    with pytest.raises(ConfigError, match=r"label fraction 1.5 is outside"):
        build_config(EvalConfig, overrides={"backbone": "resnet5m", "label_fractions": "0.1,1.5"})
    with pytest.raises(ConfigError, match="exactly one of"):
        build_config(EvalConfig, overrides={})


def test_distill_rejects_identical_teacher_and_student() -> None:
    with pytest.raises(ConfigError, match="same backbone"):
        build_config(DistillConfig, overrides={"teacher": "resnet5m", "student": "resnet5m"})


def _parse(args: list[str]) -> dict:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser, PretrainConfig)
    return vars(parser.parse_args(args))


def test_generated_flags_accept_original_short_and_long_forms() -> None:
    given = _parse(
        shlex.split(
            "-b 64 -l 2 --momentum-teacher 0.996 -c 6 -e 3 -o 2048 -t tb --clip-grad 3 --norm-last-layer "
            "--batch-size-eval 16 --teacher-temp 0.02 --student-temp 0.1 -d 0,1 --pretrained --weight-decay 0.04"
        )
    )
    config = PretrainConfig(**given)
    assert (config.batch_size, config.logging_freq, config.n_crops, config.n_epochs) == (64, 2, 6, 3)
    assert config.momentum_teacher == 0.996
    assert (config.out_dim, config.tensorboard_dir, config.clip_grad) == (2048, "tb", 3.0)
    assert config.norm_last_layer is True
    assert config.pretrained is True
    assert config.device_ids == [0, 1]
    assert config.weight_decay == 0.04


def test_flags_not_given_do_not_override_the_file() -> None:
    assert _parse([]) == {}
    assert _parse(["--no-knn-monitor"]) == {"knn_monitor": False}


def test_an_unknown_backbone_is_a_one_line_config_error_listing_the_names() -> None:
    from lowdino.config import CONFIG_MODELS
    from lowdino.config.loading import build_config
    from lowdino.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        build_config(CONFIG_MODELS["pretrain"], overrides={"backbone": "resnet9000"})
    message = str(caught.value)
    assert "\n" not in message
    assert "unknown backbone 'resnet9000'" in message
    assert "resnet5m" in message


@pytest.mark.parametrize("kind", list(RunKind))
def test_help_marks_required_fields_and_never_prints_pydantics_sentinel(kind: RunKind) -> None:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser, CONFIG_MODELS[kind])
    assert "PydanticUndefined" not in parser.format_help()
    helps = {action.dest: action.help or "" for action in parser._actions}
    for name, info in CONFIG_MODELS[kind].model_fields.items():
        assert helps[name].endswith("[required]") == info.is_required(), name
