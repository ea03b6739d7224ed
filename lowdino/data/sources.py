"""In memory or streamed: which path a training set takes, decided once and logged.

Small sets (CIFAR, STL-10, synthetic, small image folders) are decoded once into uint8 tensors,
which is the fastest path while they fit. An image folder whose decoded size would pass
``memory_limit_gb`` (or the free memory) is streamed instead, and so are webdataset shards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lowdino.data.folderstream import FolderSource, open_folder_source
from lowdino.data.imagefolder import (
    MEMORY_SHARE,
    FolderSplit,
    available_memory,
    default_image_size,
    list_split,
)
from lowdino.data.loader import StreamSource
from lowdino.data.loading import load_dataset
from lowdino.data.shards import ShardSource, open_shard_source
from lowdino.data.types import LabeledImages
from lowdino.errors import ConfigError

STREAMABLE = ("imagefolder", "webdataset")


@dataclass(frozen=True)
class DataChoice:
    streaming: bool
    reason: str
    listing: FolderSplit | None = None  # the training files, when listing them was part of the choice


def choose_loading(
    dataset: str, data_path: str | Path, *, data_loading: str, memory_limit_gb: float
) -> DataChoice:
    if data_loading != "auto" and dataset not in STREAMABLE:
        if data_loading == "stream":
            raise ConfigError(
                f"--data-loading stream applies to imagefolder and webdataset, not {dataset}; drop it"
            )
        return DataChoice(False, "requested")
    if dataset not in STREAMABLE:
        return DataChoice(False, f"{dataset} is decoded in memory")
    if data_loading != "auto":
        return DataChoice(data_loading == "stream", f"--data-loading {data_loading}")
    if dataset == "webdataset":
        return DataChoice(True, "webdataset shards always stream")
    split = list_split(data_path, "train")
    size = default_image_size(split.probe)
    needed = len(split.files) * 3 * size * size
    limit = memory_limit_gb * 2**30
    free = available_memory()
    if free is not None:
        limit = min(limit, free * MEMORY_SHARE / 2)  # decoding holds a staging copy too
    streaming = needed > limit
    return DataChoice(
        streaming,
        listing=split,
        reason=f"{len(split.files)} images decode to {needed / 2**30:.2f} GiB at {size} px, "
        f"{'above' if streaming else 'within'} the {limit / 2**30:.2f} GiB limit (memory_limit_gb / free memory)",
    )


def open_stream(
    dataset: str,
    data_path: str | Path,
    split: str,
    *,
    shuffle_buffer: int,
    listing: FolderSplit | None = None,
) -> StreamSource:
    if dataset == "webdataset":
        return open_shard_source(data_path, split, shuffle_buffer=shuffle_buffer)
    return open_folder_source(str(data_path), split, listing=listing)


def open_training_data(
    dataset: str,
    data_path: str | Path,
    *,
    data_loading: str = "auto",
    memory_limit_gb: float = 8.0,
    shuffle_buffer: int = 1000,
    synthetic_size: int = 2000,
    seed: int = 0,
    choice: DataChoice | None = None,
) -> LabeledImages | StreamSource:
    """The training split: decoded `LabeledImages`, or a `StreamSource` for lowdino.data.loader."""
    choice = choice or choose_loading(
        dataset, data_path, data_loading=data_loading, memory_limit_gb=memory_limit_gb
    )
    if choice.streaming:
        # A million-file listing takes minutes on a network filesystem: reuse the one of the choice.
        return open_stream(dataset, data_path, "train", shuffle_buffer=shuffle_buffer, listing=choice.listing)
    return load_dataset(dataset, data_path, "train", synthetic_size=synthetic_size, seed=seed)


def describe(choice: DataChoice, dataset: str) -> str:
    return f"training data {dataset}: {'streamed' if choice.streaming else 'in memory'} ({choice.reason})"


def sample_split(source: StreamSource, count: int | None, size: int, seed: int) -> LabeledImages:
    """A fixed subset of a streamed split decoded at ``size`` px (the kNN monitor's memory bank)."""
    assert isinstance(source, FolderSource | ShardSource)
    return source.sample_images(count, size, seed)
