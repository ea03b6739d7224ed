"""`load_dataset`: every dataset LowDINO knows, as one `LabeledImages` of uint8 tensors."""

from __future__ import annotations

from pathlib import Path

from lowdino.data.resize import resize_center_crop
from lowdino.data.types import LabeledImages
from lowdino.errors import ConfigError

DATASETS = ("cifar10", "cifar100", "stl10", "imagefolder", "webdataset", "synthetic")
SHARDS_DEFAULT_SIZE = 256  # webdataset decoded into memory (evaluation); training streams shards
SPLITS = ("train", "test")


def load_dataset(
    name: str,
    data_path: str | Path,
    split: str,
    *,
    synthetic_size: int = 2000,
    seed: int = 0,
    image_size: int | None = None,
) -> LabeledImages:
    """Decode split ``split`` of dataset ``name`` once into memory.

    ``image_size`` resizes (shorter side + centre crop) to a square side; None keeps the native
    size (imagefolder: 32 px for tiny images, else 256 px; synthetic: 32 px). ``seed`` only affects
    the synthetic dataset: the imagefolder split uses a fixed seed so train and test never mix.
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; use 'train' or 'test'")
    if image_size is not None and image_size < 1:
        raise ConfigError(f"image_size must be >= 1 (got {image_size})")
    if name == "synthetic":
        from lowdino.data.synthetic import synthetic_split

        return synthetic_split(split, synthetic_size=synthetic_size, seed=seed, image_size=image_size or 32)
    if name == "imagefolder":
        from lowdino.data.imagefolder import load_imagefolder

        return load_imagefolder(data_path, split, image_size=image_size)
    if name == "webdataset":
        from lowdino.data.shards import open_shard_source

        return open_shard_source(data_path, split).sample_images(
            None, image_size or SHARDS_DEFAULT_SIZE, seed
        )
    from lowdino.data.torchvision_sets import load_torchvision

    data = load_torchvision(name, data_path, split)
    if image_size is not None:
        data = LabeledImages(
            resize_center_crop(data.images, image_size), data.labels, data.classes, data.name
        )
    return data
