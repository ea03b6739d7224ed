"""Datasets decoded once into uint8 tensors, the on-disk cache, and batch iteration."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lowdino.data import (
    BatchIterator,
    LabeledImages,
    iterate_batches,
    load_dataset,
    make_synthetic,
    steps_per_epoch,
)
from lowdino.data.imagefolder import check_fits_in_memory
from lowdino.data.synthetic import CLASSES
from lowdino.errors import ConfigError, DataError

pytestmark = pytest.mark.usefixtures("torch_single_thread")

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _per_class(folder: Path) -> int:
    """Images per class of a fixture split (the fixture is stratified: every class the same)."""
    counts = {len(list(d.iterdir())) for d in folder.iterdir()}
    assert len(counts) == 1
    return counts.pop()


# --- synthetic -------------------------------------------------------------------------------------


def test_synthetic_is_deterministic_by_seed() -> None:
    a, b = make_synthetic(60, seed=3), make_synthetic(60, seed=3)
    assert torch.equal(a.images, b.images)
    assert torch.equal(a.labels, b.labels)
    c = make_synthetic(60, seed=4)
    assert not torch.equal(a.images, c.images)


def test_synthetic_labels_are_balanced_and_images_vary() -> None:
    data = make_synthetic(205, seed=0)
    counts = torch.bincount(data.labels, minlength=10)
    assert counts.min() >= 20
    assert counts.max() <= 21
    assert counts.sum() == 205
    assert data.images.shape == (205, 3, 32, 32)
    assert data.images.dtype == torch.uint8
    assert data.classes == CLASSES
    assert len(set(CLASSES)) == 10
    # Nuisance factors: no two images of a class are the same.
    same_class = data.images[data.labels == 0].flatten(1).float()
    assert torch.cdist(same_class, same_class).fill_diagonal_(float("inf")).min() > 100


def test_synthetic_class_is_not_given_away_by_colour() -> None:
    """Mean colour per class is nearly the same, so telling classes apart needs shape and texture."""
    data = make_synthetic(2000, seed=0)
    colour = data.images.float().mean(dim=(2, 3)) / 255  # (N, 3)
    class_means = torch.stack([colour[data.labels == c].mean(0) for c in range(10)])
    spread_between = class_means.std(0).mean()
    spread_within = torch.stack([colour[data.labels == c].std(0) for c in range(10)]).mean()
    assert spread_between < 0.25 * spread_within


def test_synthetic_splits_through_load_dataset() -> None:
    train = load_dataset("synthetic", "unused", "train", synthetic_size=80, seed=1)
    test = load_dataset("synthetic", "unused", "test", synthetic_size=80, seed=1)
    assert len(train) == 80
    assert len(test) == 20
    assert not torch.equal(train.images[:20], test.images)
    bigger = load_dataset("synthetic", "unused", "test", synthetic_size=80, seed=1, image_size=48)
    assert bigger.images.shape == (20, 3, 48, 48)


def test_unknown_dataset_and_split() -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'; valid names: cifar10"):
        load_dataset("imagenet", "data", "train")
    with pytest.raises(ConfigError, match="unknown split 'val'"):
        load_dataset("synthetic", "data", "val")


# --- imagefolder -----------------------------------------------------------------------------------


def _decode_like_pil(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1)


def test_imagefolder_train_test_layout(cifar_folder: Path) -> None:
    train = load_dataset("imagefolder", cifar_folder, "train")
    test = load_dataset("imagefolder", cifar_folder, "test")
    n_train, n_test = _per_class(cifar_folder / "train"), _per_class(cifar_folder / "test")
    assert train.classes == CIFAR_CLASSES
    assert test.classes == CIFAR_CLASSES
    assert train.images.shape == (10 * n_train, 3, 32, 32)
    assert test.images.shape == (10 * n_test, 3, 32, 32)
    assert torch.bincount(train.labels).tolist() == [n_train] * 10
    # Files are in sorted order; 32 px CIFAR images are stored unchanged.
    first_cat = sorted((cifar_folder / "train" / "cat").iterdir())[0]
    index = int((train.labels == CIFAR_CLASSES.index("cat")).nonzero()[0])
    assert torch.equal(train.images[index], _decode_like_pil(first_cat))


def test_imagefolder_single_folder_is_split_stratified_and_fixed(cifar_folder: Path, tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    shutil.copytree(cifar_folder / "train", flat)
    per_class = _per_class(flat)
    n_test = round(per_class * 0.1)
    train = load_dataset("imagefolder", flat, "train")
    test = load_dataset("imagefolder", flat, "test", seed=123)  # the split ignores the run seed
    assert torch.bincount(test.labels).tolist() == [n_test] * 10
    assert torch.bincount(train.labels).tolist() == [per_class - n_test] * 10
    everything = torch.cat([train.images, test.images]).flatten(1)
    assert torch.unique(everything, dim=0).shape[0] == 10 * per_class  # disjoint, together all images
    again = load_dataset("imagefolder", flat, "test")
    assert torch.equal(again.images, test.images)


def test_imagefolder_resizes_and_centre_crops_large_images(tmp_path: Path) -> None:
    root = tmp_path / "large"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            # 150 x 100 image: red left/right margins, a green centre square of 100 x 100.
            pixels = np.zeros((100, 150, 3), dtype=np.uint8)
            pixels[:, :25, 0] = pixels[:, 125:, 0] = 255
            pixels[:, 25:125, 1] = 200 + i
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    data = load_dataset("imagefolder", root, "train")  # large images -> 256 px by default
    assert data.images.shape[1:] == (3, 256, 256)
    assert data.images[:, 0].float().mean() < 3  # red margins cropped away
    assert data.images[:, 1].float().mean() > 195
    small = load_dataset("imagefolder", root, "train", image_size=20)
    assert small.images.shape[1:] == (3, 20, 20)


def test_cache_hit_returns_identical_tensors_and_is_keyed_by_listing(
    cifar_folder: Path, tmp_path: Path
) -> None:
    root = tmp_path / "copy"
    shutil.copytree(cifar_folder, root, ignore=shutil.ignore_patterns(".lowdino-cache"))
    first = load_dataset("imagefolder", root, "test")
    cache_files = list((root / ".lowdino-cache").glob("test-32px-*.pt"))
    assert len(cache_files) == 1
    second = load_dataset("imagefolder", root, "test")
    assert torch.equal(first.images, second.images)
    assert torch.equal(first.labels, second.labels)

    # Same path, size and mtime: the listing is unchanged, so the cached pixels are returned.
    victim = sorted((root / "test" / "dog").iterdir())[0]
    stat = victim.stat()
    inverted = 255 - _decode_like_pil(victim)
    replacement = Image.fromarray(inverted.permute(1, 2, 0).numpy())
    replacement.save(victim, format="JPEG", quality=95)
    payload = victim.read_bytes()
    victim.write_bytes(payload[: stat.st_size].ljust(stat.st_size, b"\0"))
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert torch.equal(load_dataset("imagefolder", root, "test").images, first.images)

    # A new mtime changes the key: the folder is decoded again and the old cache file replaced.
    victim.write_bytes(payload)
    rebuilt = load_dataset("imagefolder", root, "test")
    assert not torch.equal(rebuilt.images, first.images)
    assert len(list((root / ".lowdino-cache").glob("test-32px-*.pt"))) == 1


@pytest.mark.parametrize("content", [b"\xff\xd8\xff\xe0 truncated jpeg", b"just some notes\n"])
def test_corrupt_or_non_image_file_is_named(content: bytes, cifar_folder: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(cifar_folder / "train", root)
    bad = root / "frog" / ("9999.jpg" if content.startswith(b"\xff") else "notes.txt")
    bad.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_dataset("imagefolder", root, "train")
    assert str(bad) in str(info.value)
    assert "remove it" in str(info.value)


def test_missing_or_empty_image_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist; pass --data-path"):
        load_dataset("imagefolder", tmp_path / "missing", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no class sub-folders"):
        load_dataset("imagefolder", tmp_path / "empty", "train")


def test_test_split_with_unknown_class(cifar_folder: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(cifar_folder, root, ignore=shutil.ignore_patterns(".lowdino-cache"))
    shutil.copytree(root / "test" / "cat", root / "test" / "zebra")
    with pytest.raises(DataError, match=r"classes that the training folder lacks \(zebra\)"):
        load_dataset("imagefolder", root, "test")


def test_too_big_for_memory_suggests_smaller_image_size(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"pass a smaller --image-size \(e\.g\. \d+\)"):
        check_fits_in_memory(1_000_000, 256, tmp_path, available=8 * 2**30)
    check_fits_in_memory(50_000, 32, tmp_path, available=8 * 2**30)


def test_torchvision_dataset_offline_explains_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled in tests")

    # Only the internet is mocked: name lookups and connections fail as on an offline machine.
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path / "data", "train")
    message = str(info.value)
    assert str(tmp_path / "data") in message
    assert "cifar-10-python.tar.gz" in message
    assert "\n" not in message


# --- batches ---------------------------------------------------------------------------------------


def _indexed(n: int) -> LabeledImages:
    """Images whose first pixel holds their index, so yielded batches reveal which rows they are."""
    images = torch.zeros((n, 3, 2, 2), dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    return LabeledImages(images, torch.arange(n) % 7, [str(i) for i in range(7)], name="indexed")


@pytest.mark.parametrize(("drop_last", "expected_seen"), [(True, 36), (False, 40)])
def test_sharding_covers_every_index_once_per_epoch(drop_last: bool, expected_seen: int) -> None:
    data = _indexed(40)
    world = 3
    seen: list[int] = []
    steps = []
    for rank in range(world):
        batches = list(
            iterate_batches(
                data, 4, shuffle=True, drop_last=drop_last, seed=5, epoch=2, rank=rank, world_size=world
            )
        )
        steps.append(len(batches))
        for images, labels in batches:
            indices = images[:, 0, 0, 0].long()
            assert torch.equal(labels, indices % 7)  # labels travel with their images
            if drop_last:
                assert images.shape[0] == 4
            seen += indices.tolist()
    assert len(set(steps)) == 1
    assert steps[0] == steps_per_epoch(40, 4, world, drop_last)
    assert len(seen) == len(set(seen)) == expected_seen


def test_order_is_determined_by_seed_and_epoch() -> None:
    data = _indexed(50)

    def order(seed: int, epoch: int) -> list[int]:
        batches = iterate_batches(data, 10, shuffle=True, drop_last=True, seed=seed, epoch=epoch)
        return torch.cat([images[:, 0, 0, 0] for images, _ in batches]).tolist()

    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(0, 1)
    assert order(0, 0) != order(1, 0)
    assert sorted(order(0, 3)) == list(range(50))
    unshuffled = iterate_batches(data, 10, shuffle=False, drop_last=False)
    assert torch.cat([images[:, 0, 0, 0] for images, _ in unshuffled]).tolist() == list(range(50))


def test_start_batch_resumes_mid_epoch() -> None:
    data = _indexed(50)
    full = list(iterate_batches(data, 5, shuffle=True, drop_last=True, seed=1, epoch=4))
    resumed = list(iterate_batches(data, 5, shuffle=True, drop_last=True, seed=1, epoch=4, start_batch=7))
    assert len(resumed) == len(full) - 7
    assert all(torch.equal(a[0], b[0]) for a, b in zip(full[7:], resumed, strict=True))


def test_batch_larger_than_dataset_is_a_data_error() -> None:
    data = _indexed(50)
    with pytest.raises(DataError) as info:
        BatchIterator(data, 1024, drop_last=True)
    assert (
        str(info.value)
        == "batch size 1024 is larger than the 50 training images of indexed; lower --batch-size"
    )
    # Evaluation (drop_last=False) simply gets one short batch.
    assert [len(labels) for _, labels in BatchIterator(data, 1024, drop_last=False, shuffle=False)] == [50]


def test_bad_rank_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"rank 2 is outside 0\.\.1"):
        BatchIterator(_indexed(10), 2, rank=2, world_size=2)
