"""Streaming image folders and webdataset shards: each image once per epoch over ranks and workers,
exact mid-epoch resume, bad files skipped and counted, the in-memory / streaming choice."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch
from _stream_utils import all_ids, image_ids, write_coded_folder

from lowdino.cli.main import main as lowdino_main
from lowdino.data.crops import CropSpec
from lowdino.data.folderstream import open_folder_source
from lowdino.data.loader import LoaderOptions, StreamingBatches
from lowdino.data.shards import open_shard_source, read_index
from lowdino.data.shardwriter import shard_folder
from lowdino.data.sources import choose_loading, open_training_data
from lowdino.data.types import LabeledImages
from lowdino.errors import ConfigError, DataError

pytestmark = pytest.mark.usefixtures("torch_single_thread")

COUNT = 48  # 2 ranks x batch 4 = 8 per step: 6 steps per epoch, every image used
SPECS = (CropSpec(16, (0.4, 1.0), 2), CropSpec(8, (0.05, 0.4), 2))
WORKERS = LoaderOptions(num_workers=2, prefetch_factor=2, persistent_workers=True)


@pytest.fixture(scope="module")
def coded_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/ with the COUNT coded images and test/ with four more."""
    root = tmp_path_factory.mktemp("coded")
    write_coded_folder(root / "train", COUNT)
    write_coded_folder(root / "test", 4)
    return root


@pytest.fixture(scope="module")
def coded_shards(coded_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("shards") / "out"
    shard_folder(coded_folder, dst, shard_size=5)  # 10 shards, the last one short
    return dst


def _source(kind: str, coded_folder: Path, coded_shards: Path, buffer: int = 3):  # type: ignore[no-untyped-def]
    if kind == "folder":
        return open_folder_source(str(coded_folder), "train")
    return open_shard_source(coded_shards, "train", shuffle_buffer=buffer)


def _rank_loader(source, rank: int, world: int = 2, seed: int = 0) -> StreamingBatches:  # type: ignore[no-untyped-def]
    return StreamingBatches(source, SPECS, 4, seed=seed, rank=rank, world_size=world, options=WORKERS)


@pytest.mark.parametrize("kind", ["folder", "shards"])
def test_each_image_once_per_epoch_over_two_ranks_and_two_workers(
    kind: str, coded_folder: Path, coded_shards: Path
) -> None:
    orders = []
    for epoch in range(2):
        seen: list[int] = []
        for rank in range(2):
            loader = _rank_loader(_source(kind, coded_folder, coded_shards), rank)
            batches = all_ids(loader.epoch(epoch))
            assert len(batches) == len(loader) == 6
            assert all(len(batch) == 4 for batch in batches)
            seen += [i for batch in batches for i in batch]
        assert sorted(seen) == list(range(COUNT))
        orders.append(seen)
    assert orders[0] != orders[1]  # reshuffled every epoch


@pytest.mark.parametrize("kind", ["folder", "shards"])
def test_resume_mid_epoch_continues_exactly(kind: str, coded_folder: Path, coded_shards: Path) -> None:
    for rank in range(2):
        full = all_ids(_rank_loader(_source(kind, coded_folder, coded_shards), rank).epoch(1))
        for start in (1, 3):
            resumed = all_ids(_rank_loader(_source(kind, coded_folder, coded_shards), rank).epoch(1, start))
            assert resumed == full[start:]


def test_labels_travel_with_their_images(coded_folder: Path, coded_shards: Path) -> None:
    for kind in ("folder", "shards"):
        loader = _rank_loader(_source(kind, coded_folder, coded_shards), 0, world=1)
        for batch, labels in loader.epoch(0):
            assert [i % 2 for i in image_ids(batch)] == labels.tolist()


def test_batches_are_uint8_crops_of_every_spec(coded_folder: Path) -> None:
    loader = StreamingBatches(open_folder_source(str(coded_folder), "train"), SPECS, 4, seed=0)
    batch, labels = next(iter(loader.epoch(0)))
    assert [tuple(group.shape) for group in batch.groups] == [(4, 2, 3, 16, 16), (4, 2, 3, 8, 8)]
    assert all(group.dtype == torch.uint8 for group in batch.groups)
    assert labels.dtype == torch.int64


def test_corrupt_file_is_skipped_and_counted(coded_folder: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "folder"
    shutil.copytree(coded_folder, root)
    (root / "train" / "c0" / "zz-bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")  # 49 files, one bad
    loader = StreamingBatches(open_folder_source(str(root), "train"), SPECS, 7, seed=0, options=WORKERS)
    ids = [i for batch in all_ids(loader.epoch(0)) for i in batch]
    assert loader.skipped == 1
    assert len(ids) == COUNT
    assert sorted(ids) == list(range(COUNT))


def test_corrupt_sample_in_a_shard_is_skipped_and_counted(coded_folder: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "folder"
    shutil.copytree(coded_folder, root)
    (root / "train" / "c1" / "zz-bad.jpg").write_bytes(b"garbage")
    shard_folder(root, tmp_path / "shards", shard_size=8)
    source = open_shard_source(tmp_path / "shards", "train", shuffle_buffer=4)
    loader = StreamingBatches(source, SPECS, 7, seed=0, options=WORKERS)
    ids = [i for batch in all_ids(loader.epoch(0)) for i in batch]
    assert loader.skipped == 1
    assert sorted(ids) == list(range(COUNT))


def test_folder_without_a_readable_image_fails_fast(tmp_path: Path) -> None:
    for index in range(5):
        (tmp_path / "c0").mkdir(exist_ok=True)
        (tmp_path / "c0" / f"{index}.jpg").write_text("not an image")
    # 5 files, one held out for the test split: the 4 training files are all probed.
    with pytest.raises(DataError, match=r"none of 4 files .* readable image"):
        open_folder_source(str(tmp_path), "train")


def test_batch_of_only_unreadable_files_is_a_clear_error(tmp_path: Path) -> None:
    write_coded_folder(tmp_path / "train", 1)
    write_coded_folder(tmp_path / "test", 2)
    for index in range(8):
        (tmp_path / "train" / "c0" / f"x{index}.jpg").write_text("not an image")
    loader = StreamingBatches(open_folder_source(str(tmp_path), "train"), SPECS, 4, seed=0)

    # 9 files, 2 steps of 4: at most one batch holds the good image, another only bad files.
    def three_epochs() -> None:
        for epoch in range(3):
            all_ids(loader.epoch(epoch))

    with pytest.raises(DataError, match=r"every image of a batch of 4 .* is unreadable"):
        three_epochs()


def test_shard_layout_is_webdataset_with_a_wids_index(coded_shards: Path) -> None:
    index = json.loads((coded_shards / "train.json").read_text())
    assert index["__kind__"] == "wids-shard-index-v1"
    assert [entry["nsamples"] for entry in index["shardlist"]] == [5] * 9 + [3]
    assert index["classes"] == ["c0", "c1"]
    with tarfile.open(coded_shards / index["shardlist"][0]["url"]) as tar:
        names = tar.getnames()
    assert names[:2] == ["000000000.jpg", "000000000.cls"]
    assert len(names) == 10
    assert read_index(coded_shards, "train").total == COUNT


def test_shard_command_writes_shards_and_refuses_to_overwrite(
    coded_folder: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    dst = tmp_path / "shards"
    one_folder = coded_folder / "train"
    assert lowdino_main(["data", "shard", str(one_folder), str(dst), "--shard-size", "20"]) == 0
    report = json.loads(capsys.readouterr().out)
    # One folder of classes: split 90/10 with the fixed seed, as the in-memory loader does.
    assert report["images"] == {"train": COUNT - 4, "test": 4}
    assert read_index(dst, "train").total == COUNT - 4
    assert [entry.total for entry in (read_index(dst, "test"),)] == [4]
    assert lowdino_main(["data", "shard", str(one_folder), str(dst)]) == 2
    assert "already holds shards" in capsys.readouterr().err


def test_missing_or_truncated_shards_are_clear_errors(coded_shards: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="lowdino data shard"):
        read_index(tmp_path, "train")
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(coded_shards, copy)
    index = json.loads((copy / "train.json").read_text())
    (copy / index["shardlist"][0]["url"]).unlink()
    with pytest.raises(DataError, match="is missing"):
        read_index(copy, "train")


def test_auto_choice_streams_above_the_memory_limit(coded_folder: Path) -> None:
    small = choose_loading("imagefolder", coded_folder, data_loading="auto", memory_limit_gb=8.0)
    assert not small.streaming
    assert "within" in small.reason
    large = choose_loading("imagefolder", coded_folder, data_loading="auto", memory_limit_gb=1e-6)
    assert large.streaming
    assert "above" in large.reason
    data = open_training_data("imagefolder", coded_folder, memory_limit_gb=8.0)
    assert isinstance(data, LabeledImages)
    stream = open_training_data("imagefolder", coded_folder, memory_limit_gb=1e-6)
    assert not isinstance(stream, LabeledImages)
    assert len(stream) == len(data)
    assert choose_loading("webdataset", "x", data_loading="auto", memory_limit_gb=8.0).streaming


def test_streaming_a_torchvision_dataset_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="imagefolder and webdataset"):
        choose_loading("cifar10", "data", data_loading="stream", memory_limit_gb=8.0)


def test_workers_can_apply_the_augmentation(coded_folder: Path) -> None:
    from lowdino.augment import MultiCropAugmentation

    augment = MultiCropAugmentation(16, 8, 2)
    loader = StreamingBatches(
        open_folder_source(str(coded_folder), "train"),
        augment.specs(),
        4,
        seed=0,
        options=WORKERS,
        augment_in_workers=augment,
    )
    batch, labels = next(iter(loader.epoch(0)))
    assert batch.groups == []
    assert batch.views is not None
    assert len(batch) == 4
    # Handed over as uint8 (a quarter of the bytes of float views); the training process normalises.
    assert [v.dtype for v in batch.views] == [torch.uint8] * 4
    views = augment(batch)
    assert [tuple(v.shape) for v in views] == [(4, 3, 16, 16)] * 2 + [(4, 3, 8, 8)] * 2
    assert views[0].dtype == torch.float32
    for raw, view in zip(batch.views, views, strict=True):
        assert torch.allclose(augment.global1.normalize(raw.float() / 255), view, atol=1e-5)
    assert labels.shape == (4,)


def test_default_workers_follow_the_resource_plan_of_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    from lowdino import resources

    monkeypatch.setattr(resources.os, "sched_getaffinity", lambda _pid: set(range(32)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert LoaderOptions().workers("cpu") == 8  # one per 4 cores, at most 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert LoaderOptions().workers("cpu") == 1  # 4 cores per rank
    monkeypatch.setattr(resources.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert LoaderOptions().workers("cpu") == 1
    assert LoaderOptions(num_workers=0).workers("cpu") == 0


def test_webdataset_split_loads_into_memory_for_evaluation(coded_shards: Path) -> None:
    from lowdino.data import load_dataset

    data = load_dataset("webdataset", coded_shards, "train", image_size=16)
    assert len(data) == COUNT
    assert tuple(data.images.shape[1:]) == (3, 16, 16)
    assert data.classes == ["c0", "c1"]
    # Labels stay with their images: image i is class i % 2 and has red 5 i.
    ids = torch.round(data.images[:, 0].float().mean(dim=(1, 2)) / 5).long()
    assert sorted(ids.tolist()) == list(range(COUNT))
    assert torch.equal(data.labels, ids % 2)
