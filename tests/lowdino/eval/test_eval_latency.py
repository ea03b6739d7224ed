"""The latency protocol: rows with every field, for torch eager and ONNX Runtime, for an artifact, and for
a baseline whose weights are missing (timed with random weights, and saying so)."""

from __future__ import annotations

import json

import pytest

from lowdino.cli.main import main
from lowdino.config import EvalConfig
from lowdino.config.loading import build_config
from lowdino.contract.metrics import EVAL_SERIES_FIELD, latency_metric_key
from lowdino.contract.rundir import RunDir
from lowdino.errors import ConfigError
from lowdino.eval.latency import all_cores, thread_counts

pytestmark = pytest.mark.usefixtures("torch_single_thread")

REQUIRED = {
    "protocol", "runtime", "batch_size", "threads", "median_ms", "p90_ms", "image_size", "device",
    "images_per_s", "peak_memory_mb", "cpu_model",
}  # fmt: skip
FAST = ["--latency-batch-sizes", "1,4", "--latency-threads", "1", "--latency-warmup", "2", "--device", "cpu"]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWDINO_HOME", str(tmp_path / "home"))


def _rows(out) -> list[dict]:
    return json.loads((out / "results.json").read_text())["latency"]


def test_checkpoint_free_backbone_is_timed_in_torch_and_onnxruntime_without_a_dataset(tmp_path, capsys):
    out = tmp_path / "latency"
    argv = ["eval", "--backbone", "resnet5m", "--protocols", "latency", "--image-size", "32", *FAST]
    # --data-path points nowhere: latency alone never reads the dataset.
    assert main([*argv, "--data-path", str(tmp_path / "none"), "--output-dir", str(out)]) == 0
    rows = _rows(out)
    assert [(row["runtime"], row["batch_size"]) for row in rows] == [
        ("torch", 1), ("torch", 4), ("onnxruntime", 1), ("onnxruntime", 4),
    ]  # fmt: skip
    for row in rows:
        assert set(row) >= REQUIRED
        assert row["protocol"] == "latency"
        assert (row["threads"], row["image_size"], row["device"], row["precision"]) == (1, 32, "cpu", "fp32")
        assert row["repetitions"] == 50
        assert 0 < row["median_ms"] <= row["p90_ms"]
        assert row["images_per_s"] == pytest.approx(1000 / row["median_ms"])
        assert row["peak_memory_mb"] > 10
        assert row["cpu_model"]
    results = json.loads((out / "results.json").read_text())
    assert results["results"] == []  # no top-1 cells
    assert results["dataset"] == "none (latency only)"
    printed = capsys.readouterr().out
    assert "median ms/img" in printed
    assert "onnxruntime" in printed

    records = [json.loads(line) for line in RunDir(out).metrics.read_text().splitlines()]
    assert [record["step"] for record in records] == [1, 2, 3, 4]
    assert {record["total_steps"] for record in records} == {4}
    for record, row in zip(records, rows, strict=True):
        key = latency_metric_key(row["runtime"], row["batch_size"], row["threads"], row["precision"])
        assert record["key"] == record[EVAL_SERIES_FIELD] == key
        assert record["value"] == row["median_ms"]
    assert RunDir(out).read_summary()["latency_rows"] == 4


def test_an_artifact_is_timed_in_its_own_runtime(tmp_path):
    artifact = tmp_path / "m.onnx"
    assert main(["export", "mobilevit_xxs", "--image-size", "32", "--output", str(artifact)]) == 0
    out = tmp_path / "latency"
    assert (
        main(["eval", "--artifact", str(artifact), "--protocols", "latency", *FAST, "--output-dir", str(out)])
        == 0
    )
    rows = _rows(out)
    assert [(row["runtime"], row["artifact"]) for row in rows] == [("onnxruntime", str(artifact))] * 2
    assert all(row["image_size"] == 32 for row in rows)


def test_a_baseline_without_its_weights_is_timed_with_random_weights_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    out = tmp_path / "latency"
    argv = [
        "eval",
        "--backbone",
        "dinov2_vits14",
        "--pretrained",
        "--protocols",
        "latency",
        "--image-size",
        "28",
    ]
    assert main([*argv, *FAST, "--latency-runtimes", "torch", "--output-dir", str(out)]) == 0
    rows = _rows(out)
    assert len(rows) == 2
    assert all(row["note"] == "random weights: latency only" for row in rows)
    assert json.loads((out / "results.json").read_text())["note"] == "random weights: latency only"


def test_latency_options_are_checked():
    with pytest.raises(ConfigError, match="latency_repetitions"):
        build_config(EvalConfig, overrides={"backbone": "resnet5m", "latency_repetitions": 10})
    with pytest.raises(ConfigError, match="latency_threads: must be a list or comma-separated counts"):
        build_config(EvalConfig, overrides={"backbone": "resnet5m", "latency_threads": "-1"})
    with pytest.raises(ConfigError, match="latency_batch_sizes"):
        build_config(EvalConfig, overrides={"backbone": "resnet5m", "latency_batch_sizes": [0]})
    with pytest.raises(ConfigError, match="cannot be fine-tuned"):
        build_config(EvalConfig, overrides={"artifact": "m.onnx", "protocols": "knn,finetune"})
    with pytest.raises(ConfigError, match="exactly one of"):
        build_config(EvalConfig, overrides={"artifact": "m.onnx", "backbone": "resnet5m"})
    assert thread_counts([1, 0]) == ([1] if all_cores() == 1 else [1, all_cores()])
