"""System metrics of a real training run reach the service as ordinary metric series.

The library's trainer samples CPU, memory and the data-loader wait share (and, on a GPU, NVML's
utilisation, memory and power) into its metrics records; the service ingests the run's metrics.jsonl
as the worker does and serves the sys_* series like the loss.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from lowdino.config import PretrainConfig
from lowdino.contract import metrics as names
from lowdino.contract.metrics_log import iter_records
from lowdino.contract.rundir import RunDir
from lowdino.train.trainer import pretrain
from server.metrics.queries import ingest_metrics
from server.runs import queries as run_queries
from server.settings import Settings

# The smallest real pretraining; samples every 0.05 s so that a run of a few seconds has several.
TINY = {
    "backbone": "resnet5m",
    "dataset": "synthetic",
    "synthetic_size": 48,
    "global_crop_size": 16,
    "local_crop_size": 8,
    "n_crops": 2,
    "batch_size": 16,
    "n_epochs": 3,
    "warmup_epochs": 0,
    "out_dim": 32,
    "hidden_dim": 32,
    "bottleneck_dim": 16,
    "knn_monitor": False,
    "memory_check": False,
    "system_metrics_every_seconds": 0.05,
}
ALWAYS = (names.CPU_PERCENT, names.RSS_MB, names.DATA_WAIT_PERCENT)
GPU_ONLY = (names.GPU_UTIL_PERCENT, names.GPU_MEMORY_MB, names.GPU_POWER_W)


def train(output_dir: Path, device: str) -> list[dict[str, Any]]:
    pretrain(PretrainConfig.model_validate({**TINY, "device": device, "output_dir": str(output_dir)}))
    return list(iter_records(RunDir(output_dir).metrics))


@pytest.fixture(scope="module")
def cpu_records(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, Any]]]:
    return train(tmp_path_factory.mktemp("system-cpu") / "run", "cpu")


def test_a_real_run_records_cpu_memory_and_data_wait(cpu_records: list[dict[str, Any]]) -> None:
    sampled = [record for record in cpu_records if names.CPU_PERCENT in record]
    assert sampled, "no record carries system metrics"
    # The last step always carries a sample, however short the run.
    assert names.RSS_MB in cpu_records[-1]
    for record in sampled:
        assert record[names.RSS_MB] > 50  # a trainer with torch loaded is never below 50 MiB
        assert record[names.CPU_PERCENT] >= 0
        assert 0 <= record[names.DATA_WAIT_PERCENT] <= 100
        assert not any(key in record for key in GPU_ONLY)  # a CPU run has no GPU figures
    assert any(record[names.CPU_PERCENT] > 0 for record in sampled)


def test_system_series_are_stored_and_served(
    cpu_records: list[dict[str, Any]], client: TestClient, session: Any, settings: Settings
) -> None:
    run = run_queries.create_run(session, kind="pretrain", config=TINY, name="system")
    ingest_metrics(session, run_id=run.id, records=cpu_records)
    body = client.get(f"/api/runs/{run.id}/metrics", params={"keys": ",".join(ALWAYS)}).json()
    series = {item["key"]: item for item in body["series"]}
    sampled_steps = [record["step"] for record in cpu_records if names.CPU_PERCENT in record]
    for key in ALWAYS:
        assert series[key]["step"] == sampled_steps, key
    assert all(value > 50 for value in series[names.RSS_MB]["y"])
    # No "best" for a system metric: it is neither a loss nor an accuracy.
    detail = client.get(f"/api/runs/{run.id}").json()
    assert not any(key.startswith(names.SYSTEM_METRIC_PREFIX) for key in detail["best_metrics"])
    assert detail["latest_metrics"][names.RSS_MB] == cpu_records[-1][names.RSS_MB]
    catalog = client.get("/api/catalog").json()
    assert catalog["data_bound_wait_percent"] == names.DATA_BOUND_WAIT_PERCENT


def test_zero_interval_records_no_system_metrics(tmp_path: Path) -> None:
    config = {**TINY, "n_epochs": 1, "system_metrics_every_seconds": 0}
    pretrain(PretrainConfig.model_validate({**config, "device": "cpu", "output_dir": str(tmp_path / "run")}))
    records = list(iter_records(RunDir(tmp_path / "run").metrics))
    assert records
    assert not any(key.startswith(names.SYSTEM_METRIC_PREFIX) for record in records for key in record)


def test_a_gpu_run_records_utilisation_memory_and_power(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here: GPU utilisation, memory and power are recorded only on a GPU run")
    records = train(tmp_path / "run", "cuda")
    sampled = [record for record in records if names.GPU_MEMORY_MB in record]
    assert sampled, "a GPU run recorded no GPU memory"
    assert all(record[names.GPU_MEMORY_MB] > 0 for record in sampled)
    assert any(names.GPU_UTIL_PERCENT in record for record in sampled)
