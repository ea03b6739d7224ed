"""The kNN monitor's validation split on streamed data: held out of the stream, never trained on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _stream_utils import STEP, write_coded_folder
from _train_utils import tiny_config

from lowdino.data.folderstream import FolderSource
from lowdino.data.shardwriter import shard_folder
from lowdino.errors import ConfigError
from lowdino.train.builders import load_datasets

pytestmark = pytest.mark.usefixtures("torch_single_thread")
IMAGES = 40


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream-val")
    write_coded_folder(root / "train", IMAGES)
    write_coded_folder(root / "test", 10)
    return root


def test_a_streamed_folder_holds_its_validation_files_out_of_the_stream(folder: Path, tmp_path: Path) -> None:
    config = tiny_config(
        tmp_path / "run",
        dataset="imagefolder",
        data_path=str(folder),
        memory_limit_gb=1e-6,  # streamed
        knn_monitor=True,
        val_fraction=0.25,
    )
    datasets = load_datasets(config)
    assert isinstance(datasets.train, FolderSource)
    assert datasets.val is not None
    streamed = {int(Path(path.decode()).stem) for path in datasets.train.paths}
    red = datasets.val.images[:, 0].float().mean(dim=(1, 2))
    validation = {int(value) for value in torch.round(red / STEP)}
    assert len(validation) == IMAGES // 4  # a quarter of each class
    assert streamed.isdisjoint(validation)
    assert streamed | validation == set(range(IMAGES))
    assert datasets.knn_train is not None
    assert len(datasets.knn_train.labels) == len(streamed)  # the memory bank comes from training files only


def test_shards_refuse_the_monitor_with_the_fix(folder: Path, tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shard_folder(folder, shards, shard_size=7)
    config = tiny_config(tmp_path / "run", dataset="webdataset", data_path=str(shards), knn_monitor=True)
    with pytest.raises(ConfigError, match="--no-knn-monitor"):
        load_datasets(config)
