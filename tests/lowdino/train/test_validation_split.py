"""The validation split: held out of training and the kNN monitor's only queries."""

from __future__ import annotations

import pytest
import torch
from _train_utils import tiny_config

from lowdino.errors import ConfigError, DataError
from lowdino.train.builders import build_knn_monitor, load_datasets


def _rows(images: torch.Tensor) -> set[bytes]:
    return {image.numpy().tobytes() for image in images}


def test_validation_images_are_held_out_of_training_and_feed_the_monitor(tmp_path) -> None:
    config = tiny_config(tmp_path, knn_monitor=True, synthetic_size=200, val_fraction=0.1, knn_max_val=None)
    full = tiny_config(tmp_path, knn_monitor=False, synthetic_size=200)
    datasets, everything = load_datasets(config), load_datasets(full)
    assert datasets.val is not None
    assert everything.val is None
    assert len(datasets.train) == 180
    assert len(datasets.val) == 20
    assert torch.bincount(datasets.val.labels).tolist() == [2] * 10  # stratified
    train, val = _rows(datasets.train.images), _rows(datasets.val.images)
    assert not train & val
    assert train | val == _rows(everything.train.images)

    monitor = build_knn_monitor(config, datasets, torch.device("cpu"))
    assert monitor is not None
    assert _rows(monitor.query_images) == val  # queries: validation images, never the test split
    assert not _rows(monitor.train_images) & val  # memory bank: training images only


def test_monitor_without_a_validation_split_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="val-fraction"):
        load_datasets(tiny_config(tmp_path, knn_monitor=True, val_fraction=0.0))


def test_a_validation_split_that_empties_a_class_names_the_flag(tmp_path) -> None:
    # 40 images, 4 per class: 10 % rounds to none of a class.
    with pytest.raises(DataError, match=r"val-fraction"):
        load_datasets(tiny_config(tmp_path, knn_monitor=True, val_fraction=0.1))
