"""benchmarks/eval_table.py: every row names its image size; baselines run at their declared size."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import eval_table  # noqa: E402

CIFAR_ZIP = Path(
    os.environ.get("LOWDINO_CIFAR_ZIP", REPO_ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.zip")
)


def test_baselines_run_at_their_declared_size_and_at_the_original_works_side_by_side() -> None:
    runs = eval_table.plan_runs(["runs/x/checkpoint.pth"], ["resnet5m"], ["dinov2_vits14", "mobilenetv2_100"])
    sizes = [
        (run.get("backbone", "checkpoint"), run.get("pretrained", False), run["image_size"]) for run in runs
    ]
    assert sizes == [
        ("checkpoint", False, None),  # native 32 px, what it was trained at
        ("resnet5m", False, None),
        ("dinov2_vits14", True, 224),  # was 42 px (32 rounded up to the patch size)
        ("dinov2_vits14", True, 56),  # the original work's 32-56 px
        ("mobilenetv2_100", True, 224),  # was 32 px
        ("mobilenetv2_100", True, 32),
    ]


@pytest.mark.slow
def test_every_row_of_the_output_names_its_image_size(tmp_path, monkeypatch, capsys) -> None:
    if not CIFAR_ZIP.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CIFAR-10 JPEG zip not found at {CIFAR_ZIP} (CI must run the real-data tests)")
        pytest.skip(f"CIFAR-10 JPEG zip not found at {CIFAR_ZIP}; set LOWDINO_CIFAR_ZIP")
    monkeypatch.setenv("LOWDINO_HOME", str(tmp_path / "home"))
    argv = [
        "eval_table.py", "--zip", str(CIFAR_ZIP), "--data-root", str(tmp_path / "data"),
        "--train-per-class", "10", "--test-per-class", "4", "--random-init", "resnet5m", "--baselines", "",
        "--linear-epochs", "2", "--device", "cpu", "--output-dir", str(tmp_path / "out"),
        "--markdown", str(tmp_path / "table.md"),
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    eval_table.main()
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(row["backbone"], row["image_size"], row["size_rule"]) for row in report["measured"]] == [
        ("resnet5m", 32, "native")
    ]
    header, _, measured_row = (tmp_path / "table.md").read_text().splitlines()[2:5]
    assert "| image size |" in header
    assert "| 32 px |" in measured_row
