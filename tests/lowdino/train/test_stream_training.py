"""`lowdino pretrain` end to end on streamed data: an image folder above the memory limit, and
webdataset shards interrupted mid-epoch and resumed."""

from __future__ import annotations

from pathlib import Path

import pytest
from _stream_utils import write_coded_folder
from _train_utils import StopAtStep, tiny_config

from lowdino.contract import rundir
from lowdino.contract.metrics_log import iter_records
from lowdino.data.shardwriter import shard_folder
from lowdino.train.trainer import pretrain

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream-train")
    write_coded_folder(root / "train", 40)
    write_coded_folder(root / "test", 10)
    return root


@pytest.mark.slow
def test_large_folder_streams_with_knn_monitor(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = tiny_config(
        out,
        dataset="imagefolder",
        data_path=str(folder),
        memory_limit_gb=1e-6,  # "too large": the auto choice streams it
        num_workers=1,
        threads=1,
        augment_in="workers",
        knn_monitor=True,
        max_steps=5,
    )
    summary = pretrain(config)
    assert summary["status"] == "completed"
    assert summary["final_knn_top1"] is not None
    log = (out / rundir.LOG_FILE).read_text()
    assert "training data imagefolder: streamed" in log
    assert "above the" in log
    # The resource plan, with the overrides it followed: the worker augments, this process normalises.
    assert "threads: 1 torch, 1 loader worker, augmentation in workers: " in log
    assert "--threads 1, --num-workers 1, --augment-in workers" in log
    init, *records = iter_records(out / rundir.METRICS_FILE)
    assert (init["step"], summary["init_knn_top1"]) == (0, init["knn_top1"])  # the random-init look
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5]
    assert all(r["skipped_images"] == 0 for r in records)


@pytest.mark.slow
def test_shards_stop_mid_epoch_and_resume(folder: Path, tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shard_folder(folder, shards, shard_size=7)
    options = {"dataset": "webdataset", "data_path": str(shards), "num_workers": 2, "shuffle_buffer": 4}
    out = tmp_path / "run"
    interrupted = pretrain(tiny_config(out, **options), callbacks=[StopAtStep(3)])
    assert interrupted["status"] == "cancelled"
    resumed = pretrain(tiny_config(out, resume=True, **options))
    assert resumed["status"] == "completed"
    assert resumed["steps"] == 10  # 40 images / batch 8 = 5 steps per epoch, 2 epochs
    records = list(iter_records(out / rundir.METRICS_FILE))
    assert [r["step"] for r in records] == list(range(1, 11))
