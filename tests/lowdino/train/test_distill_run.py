"""`lowdino distill` end to end: run directory, metrics, checkpoint, resume, evaluation of the student."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lowdino.backbones import create_backbone
from lowdino.cli.main import main
from lowdino.config import DistillConfig
from lowdino.contract.rundir import RunDir
from lowdino.eval.model import load_checkpoint_model
from lowdino.train.trainer import train


@pytest.fixture(scope="module")
def teacher_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("teacher") / "resnet18.pth"
    torch.manual_seed(0)
    torch.save(create_backbone("resnet18").state_dict(), path)
    return path


def _distill(out: Path, weights: Path, *extra: str) -> int:
    return main(
        [
            "distill",
            "--teacher", "resnet18", "--teacher-weights", str(weights), "--student", "resnet5m",
            "--dataset", "synthetic", "--synthetic-size", "64", "--crop-size", "16", "-b", "16",
            "--n-epochs", "2", "--device", "cpu", "--knn-max-train", "32", "--knn-max-val", "16",
            "--batch-size-eval", "32", "--output-dir", str(out), *extra,
        ]
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["kl", "cosine"])
def test_two_step_distill_writes_the_run_directory(tmp_path: Path, teacher_weights: Path, loss: str) -> None:
    out = tmp_path / "run"
    assert (
        _distill(out, teacher_weights, "--max-steps", "2", "--loss", loss, "--label-loss-weight", "0.5") == 0
    )
    run = RunDir(out)
    records = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1, 2]  # step 0: the untrained student's kNN
    assert set(records[0]) == {"step", "epoch", "time", "total_steps", "knn_top1"}
    records = records[1:]
    assert {"loss", "distill_loss", "label_loss", "lr"} <= set(records[0])
    assert "momentum" not in records[0]  # a frozen teacher has no EMA schedule to report
    summary = run.read_summary()
    assert summary is not None
    assert (summary["status"], summary["kind"], summary["backbone"]) == ("completed", "distill", "resnet5m")
    assert summary["method"] == f"distill-{loss}"
    assert summary["labels_used"] == 1.0  # the label loss saw every training label
    checkpoint = torch.load(run.checkpoint, map_location="cpu", weights_only=True)
    assert checkpoint["kind"] == "distill"
    assert checkpoint["backbone_name"] == "resnet5m"
    model = load_checkpoint_model(out)
    assert model.backbone_name == "resnet5m"
    assert model.labels_used == 1.0
    loaded = model.backbone.state_dict()
    assert loaded.keys() == checkpoint["backbone"].keys()
    assert all(torch.equal(loaded[key], checkpoint["backbone"][key]) for key in loaded)


class StopAfter:
    """Trainer callback that asks for a stop once `step` has been recorded."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.seen: list[int] = []

    def on_metrics(self, record: dict) -> None:
        self.seen.append(record["step"])

    def should_stop(self) -> bool:
        return bool(self.seen) and self.seen[-1] >= self.step


@pytest.mark.slow
def test_distill_stop_and_resume_equals_an_uninterrupted_run(tmp_path: Path, teacher_weights: Path) -> None:
    base = {
        "teacher": "resnet18", "teacher_weights": str(teacher_weights), "student": "resnet5m",
        "dataset": "synthetic", "synthetic_size": 64, "crop_size": 16, "batch_size": 16, "n_epochs": 2,
        "max_steps": 4, "device": "cpu", "knn_monitor": False, "label_loss_weight": 0.5,
    }  # fmt: skip
    straight = train(DistillConfig(**base, output_dir=str(tmp_path / "straight")))
    assert straight["status"] == "completed"

    stopper = StopAfter(2)
    first = train(DistillConfig(**base, output_dir=str(tmp_path / "split")), callbacks=[stopper])
    assert first["status"] == "cancelled"
    assert stopper.seen == [1, 2]
    second = train(DistillConfig(**base, output_dir=str(tmp_path / "split"), resume=True))
    assert second["status"] == "completed"

    steps = [
        json.loads(line)["step"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4]
    a = torch.load(tmp_path / "straight" / "checkpoint.pth", map_location="cpu", weights_only=True)["method"]
    b = torch.load(tmp_path / "split" / "checkpoint.pth", map_location="cpu", weights_only=True)["method"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_random_teacher_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["distill", "--teacher", "resnet18", "--no-teacher-pretrained", "--student", "resnet5m",
         "--dataset", "synthetic", "--synthetic-size", "64", "-b", "16", "--crop-size", "16",
         "--device", "cpu", "--output-dir", str(tmp_path / "r")]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "randomly initialised" in err[0]
    assert not (tmp_path / "r").exists()
