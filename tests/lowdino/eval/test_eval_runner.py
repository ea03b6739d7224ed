"""`lowdino eval` end to end on tiny synthetic data, checkpoints, the feature cache, and bad input."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
import timm.models
import torch

from lowdino.backbones import backbone_names, create_backbone, get_spec
from lowdino.cli.main import main
from lowdino.config import EvalConfig
from lowdino.config.loading import build_config
from lowdino.contract.metrics import EVAL_SERIES_FIELD, eval_metric_key
from lowdino.contract.rundir import EXIT_CANCELLED, RunDir
from lowdino.errors import CheckpointError, ConfigError, DataError, WeightsNotFoundError
from lowdino.eval.runner import EvalCancelled, default_output_dir, evaluate, resolve_image_size
from lowdino.train.checkpoint import save_checkpoint

TINY = ["--dataset", "synthetic", "--synthetic-size", "60", "--device", "cpu", "--batch-size", "32"]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    # The default feature cache lives under $LOWDINO_HOME: keep every test's cache to itself.
    monkeypatch.setenv("LOWDINO_HOME", str(tmp_path / "home"))


def tiny_config(tmp_path: Path, **overrides) -> EvalConfig:
    values = {
        "dataset": "synthetic",
        "synthetic_size": 60,
        "device": "cpu",
        "batch_size": 32,
        "protocols": "knn,linear",
        "label_fractions": "0.5",
        "seeds": "0",
        "linear_epochs": 5,
        "output_dir": str(tmp_path / "out"),
        **overrides,
    }
    if "checkpoint" not in overrides:
        values.setdefault("backbone", "resnet5m")
    return build_config(EvalConfig, overrides=values)


def test_cli_runs_every_protocol_and_writes_results(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "eval", "--backbone", "resnet5m", *TINY, "--protocols", "knn,linear,finetune",
        "--label-fractions", "0.2,0.5", "--seeds", "0,1", "--linear-epochs", "5", "--finetune-epochs", "1",
        "--knn-protocol", "both", "--image-size", "16", "--output-dir", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "resnet5m (random init)" in printed
    for column in ("kNN", "1-NN", "linear@20%", "linear@50%", "finetune@20%", "finetune@50%"):
        assert column in printed

    results = json.loads((out / "results.json").read_text())
    assert results["measured"] is True
    assert (results["backbone"], results["image_size"], results["dataset"]) == ("resnet5m", 16, "synthetic")
    assert (results["train_size"], results["test_size"], results["num_classes"]) == (60, 15, 10)
    cells = {cell["column"]: cell for cell in results["results"]}
    assert set(cells) == {"kNN", "1-NN", "linear@20%", "linear@50%", "finetune@20%", "finetune@50%"}
    assert cells["linear@50%"]["seeds"] == [0, 1]
    for cell in cells.values():
        assert all(0.0 <= value <= 100.0 for value in cell["values"])
        assert cell["mean"] == pytest.approx(sum(cell["values"]) / len(cell["values"]))

    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 + 2 * 2 * 2  # kNN + 1-NN, then (linear, finetune) x 2 fractions x 2 seeds
    assert {row["protocol"] for row in rows} == {"knn", "knn_seed", "linear", "finetune"}

    run = RunDir(out)
    assert run.read_summary()["status"] == "completed"
    assert build_config(EvalConfig, file=run.config).protocols == ["knn", "linear", "finetune"]
    records = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    assert [record["step"] for record in records] == list(range(1, 11))
    assert {record["total_steps"] for record in records} == {10}
    # Each record names the series of its top-1 itself (the service keys the curves by it).
    for record in records:
        assert record[EVAL_SERIES_FIELD] == eval_metric_key(record["protocol"], record["label_fraction"])
    assert {record[EVAL_SERIES_FIELD] for record in records} >= {"knn_top1", "linear_20pct_top1"}


def test_second_run_hits_the_feature_cache_with_identical_figures(tmp_path, capsys):
    first = evaluate(tiny_config(tmp_path, output_dir=str(tmp_path / "a")), progress=False)
    assert "extracted" in capsys.readouterr().err
    second = evaluate(tiny_config(tmp_path, output_dir=str(tmp_path / "b")), progress=False)
    log = capsys.readouterr().err
    assert "train features (60, 512) (cache hit)" in log
    assert "test features (15, 512) (cache hit)" in log
    assert [cell.values for cell in first.results] == [cell.values for cell in second.results]
    # Another seed is another random-init network: its features must not come from the cache.
    evaluate(tiny_config(tmp_path, output_dir=str(tmp_path / "c"), seed=1), progress=False)
    assert "cache hit" not in capsys.readouterr().err


def _resnet5m_checkpoint(
    run_dir: Path, *, name: str = "resnet5m", kind: str = "pretrain", config: dict | None = None
) -> torch.nn.Module:
    """A run checkpoint in the trainer's format (lowdino.train.checkpoint), with trained-looking weights."""
    torch.manual_seed(7)
    backbone = create_backbone("resnet5m")
    with torch.no_grad():
        for parameter in backbone.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    save_checkpoint(
        run_dir / "checkpoint.pth",
        {
            "kind": kind,
            "backbone_name": name,
            "backbone": backbone.state_dict(),
            "step": 3,
            "epoch": 1.0,
            "config": config or {},
        },
    )
    return backbone


def test_checkpoint_and_its_weights_evaluate_identically(tmp_path):
    backbone = _resnet5m_checkpoint(tmp_path / "pretrain-run")
    from_run = evaluate(tiny_config(tmp_path, checkpoint=str(tmp_path / "pretrain-run")), progress=False)
    assert from_run.source == "checkpoint"
    assert from_run.model.startswith("resnet5m (")
    weights = tmp_path / "weights.pth"
    torch.save(backbone.state_dict(), weights)
    from_file = evaluate(tiny_config(tmp_path, backbone="resnet5m", weights=str(weights)), progress=False)
    assert [cell.values for cell in from_run.results] == [cell.values for cell in from_file.results]


def test_stop_file_cancels_with_exit_75(tmp_path):
    out = tmp_path / "stopped"
    RunDir(out).request_stop()
    argv = ["eval", "--backbone", "resnet5m", *TINY, "--protocols", "knn", "--output-dir", str(out)]
    assert main(argv) == EXIT_CANCELLED
    assert RunDir(out).read_summary()["status"] == "cancelled"
    with pytest.raises(EvalCancelled):
        evaluate(tiny_config(tmp_path, backbone="resnet5m", output_dir=str(out)), progress=False)


def test_default_output_dir_names_the_model():
    now = datetime(2025, 1, 2, 3, 4, 5)
    by_name = build_config(EvalConfig, overrides={"backbone": "resnet5m"})
    assert default_output_dir(by_name, now) == Path("runs/eval-resnet5m-20250102-030405")
    for checkpoint in ("runs/pretrain-x", "runs/pretrain-x/checkpoint.pth"):
        config = build_config(EvalConfig, overrides={"checkpoint": checkpoint})
        assert default_output_dir(config, now) == Path("runs/eval-pretrain-x-20250102-030405")


def test_default_image_size_rounds_up_to_the_backbone_multiple():
    assert resolve_image_size(None, 32, "resnet5m") == 32
    assert resolve_image_size(None, 32, "dinov2_vits14") == 42
    assert resolve_image_size(28, 32, "dinov2_vits14") == 28


def test_pretrained_weights_are_evaluated_at_the_resolution_they_were_trained_at():
    # Before: 42 px for DINOv2 and 32 px for the ImageNet models on CIFAR-10.
    declared = {"dinov2_vits14": 224, "resnet50": 224, "mobilenetv2_100": 224, "mobilevit_xxs": 256}
    for name, size in declared.items():
        assert resolve_image_size(None, 32, name, pretrained=True) == size
    assert resolve_image_size(56, 32, "dinov2_vits14", pretrained=True) == 56  # an explicit size wins
    for name in backbone_names():
        spec = get_spec(name)
        if spec.pretrained_in_timm and name != "dinov2_vits14":
            # timm's record of the weights' training resolution (DINOv2 trained at 224 and only
            # adapted to 518 at the end; the paper's linear results are at 224).
            assert spec.default_eval_size == timm.models.get_pretrained_cfg(spec.timm_model_id).input_size[-1]


def test_a_distillation_with_labels_is_marked_in_its_results(tmp_path):
    _resnet5m_checkpoint(tmp_path / "distill-run", kind="distill", config={"label_loss_weight": 0.5})
    results = evaluate(
        tiny_config(tmp_path, checkpoint=str(tmp_path / "distill-run"), protocols=["knn", "linear"]),
        progress=False,
    )
    assert results.labels_used == 1.0
    saved = json.loads((Path(results.output_dir) / "results.json").read_text())
    assert saved["labels_used"] == 1.0
    csv_header, first = (Path(results.output_dir) / "results.csv").read_text().splitlines()[:2]
    assert csv_header.split(",")[4:6] == ["image_size", "labels_used"]
    assert first.split(",")[5] == "1.0"
    row = next(line for line in results.table().splitlines() if line.startswith("resnet5m ("))
    assert "pretraining used 100 % of the labels" in row

    _resnet5m_checkpoint(tmp_path / "pretrain-run")
    plain = evaluate(tiny_config(tmp_path, checkpoint=str(tmp_path / "pretrain-run")), progress=False)
    assert plain.labels_used == 0.0


# ---- bad input: one line naming the cause and the fix, exit status 2 from the CLI ----


def _cli_error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("lowdino eval: error: ")
    assert "\n" not in message
    return message


def test_fraction_outside_range_is_a_config_error(capsys):
    message = _cli_error(["eval", "--backbone", "resnet5m", "--label-fractions", "0.1,1.5"], capsys)
    assert "label fraction 1.5 is outside" in message


def test_checkpoint_with_pretrained_is_a_config_error():
    with pytest.raises(ConfigError, match="pretrained and weights go with backbone"):
        build_config(EvalConfig, overrides={"checkpoint": "runs/x", "pretrained": True})


def test_image_size_the_backbone_cannot_take(tmp_path, capsys):
    message = _cli_error(["eval", "--backbone", "dinov2_vits14", *TINY, "--image-size", "30"], capsys)
    assert "multiples of 14" in message


def test_checkpoint_of_another_backbone(tmp_path):
    _resnet5m_checkpoint(tmp_path / "run")
    with pytest.raises(CheckpointError, match="does not fit backbone mobilevit_xxs"):
        evaluate(
            tiny_config(tmp_path, backbone="mobilevit_xxs", weights=str(tmp_path / "run" / "checkpoint.pth")),
            progress=False,
        )
    # A checkpoint whose recorded name disagrees with its weights.
    _resnet5m_checkpoint(tmp_path / "lying", name="mobilevit_xxs")
    with pytest.raises(CheckpointError, match="does not fit backbone mobilevit_xxs"):
        evaluate(tiny_config(tmp_path, checkpoint=str(tmp_path / "lying")), progress=False)


def test_missing_or_foreign_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        evaluate(tiny_config(tmp_path, checkpoint=str(tmp_path / "nothing-here")), progress=False)
    foreign = tmp_path / "foreign.pth"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a LowDINO run checkpoint"):
        evaluate(tiny_config(tmp_path, checkpoint=str(foreign)), progress=False)


def test_dataset_without_labels(tmp_path):
    from PIL import Image

    for folder in (tmp_path / "one-class" / "cats", tmp_path / "flat"):
        folder.mkdir(parents=True)
        for index in range(12):
            Image.new("RGB", (8, 8), (index * 20, 0, 0)).save(folder / f"{index}.png")
    with pytest.raises(DataError, match="no class labels"):
        evaluate(
            tiny_config(
                tmp_path, backbone="resnet5m", dataset="imagefolder", data_path=str(tmp_path / "one-class")
            ),
            progress=False,
        )
    with pytest.raises(DataError, match="no class sub-folders"):
        evaluate(
            tiny_config(
                tmp_path, backbone="resnet5m", dataset="imagefolder", data_path=str(tmp_path / "flat")
            ),
            progress=False,
        )


def test_missing_baseline_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    with pytest.raises(WeightsNotFoundError, match="not in the local Hugging Face cache"):
        evaluate(tiny_config(tmp_path, backbone="mobilevit_xxs", pretrained=True), progress=False)


def test_fraction_too_small_for_a_class(tmp_path):
    with pytest.raises(DataError, match=r"leaves class .* with no image; use a fraction >="):
        evaluate(tiny_config(tmp_path, backbone="resnet5m", label_fractions="0.05"), progress=False)


def test_real_cifar_images_and_an_edited_image_invalidates_the_cache(cifar_folder, tmp_path, capsys):
    folder = tmp_path / "cifar"
    shutil.copytree(cifar_folder, folder, ignore=shutil.ignore_patterns(".lowdino-cache"))
    config = tiny_config(tmp_path, dataset="imagefolder", data_path=str(folder), protocols="knn")
    first = evaluate(config, progress=False)
    assert (first.image_size, first.num_classes, first.train_size, first.test_size) == (32, 10, 300, 100)
    capsys.readouterr()
    # One training image replaced by another: the train features must be extracted again.
    train_cats = sorted((folder / "train" / "cat").iterdir())
    shutil.copyfile(train_cats[1], train_cats[0])
    evaluate(config, progress=False)
    log = capsys.readouterr().err
    assert "train features (300, 512) (extracted)" in log
    assert "test features (100, 512) (cache hit)" in log
