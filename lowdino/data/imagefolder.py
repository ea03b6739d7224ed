"""Image folders decoded once, in parallel, into uint8 tensors, with an on-disk cache.

Layouts (``root`` = --data-path):

    root/train/<class>/... and root/test/<class>/... (or root/val/...; test/ wins when both exist)
    root/<class>/...   one folder: a fixed-seed, class-stratified split, 10% of each class to test

Every image is resized (shorter side) and centre-cropped to one square size. The decoded split is
cached in root/.lowdino-cache/, keyed by the listing (relative paths, sizes, mtimes) and the size.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from lowdino.data.cache import TensorCache
from lowdino.data.types import LabeledImages
from lowdino.errors import DataError

TEST_FRACTION = 0.1
SPLIT_SEED = 0  # fixed on purpose: train and test must never swap images between runs
TINY_SIDE = 64
TINY_SIZE, LARGE_SIZE = 32, 256
PROBE_FILES = 8
CACHE_VERSION = 1
# Decoding holds the decoded tensor plus one (N, S, S, 3) staging copy.
MEMORY_FACTOR = 2
MEMORY_SHARE = 0.8


@dataclass(frozen=True)
class FileEntry:
    path: str  # str, not Path: building 50 000 Path objects costs more than reading the cache
    label: int
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FolderSplit:
    """The files of one split, their class list, and where the listing came from (for messages)."""

    files: list[FileEntry]
    classes: list[str]
    root: Path
    # A few training files: both splits pick the default image size from the same images.
    probe: list[str]


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(entry for entry in folder.iterdir() if entry.is_dir() and _visible(entry.name))


def _walk_files(folder: Path) -> list[os.DirEntry[str]]:
    """Every visible file under ``folder`` (recursively), sorted by path for a stable order."""
    found: list[os.DirEntry[str]] = []
    stack = [folder]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if not _visible(entry.name):
                    continue
                if entry.is_dir():
                    stack.append(Path(entry.path))
                elif entry.is_file():
                    found.append(entry)
    return sorted(found, key=lambda entry: entry.path)


def _class_names(folder: Path) -> list[str]:
    names = [d.name for d in _class_dirs(folder)]
    if not names:
        raise DataError(
            f"{folder} has no class sub-folders; put images in {folder}/<class>/ (or train/ and test/ "
            "folders of class sub-folders)"
        )
    return names


def _list_files(folder: Path, classes: list[str]) -> list[FileEntry]:
    """Every image under folder/<class>/ with its label (index into ``classes``), sorted by path."""
    dirs = _class_dirs(folder)
    unknown = sorted({d.name for d in dirs} - set(classes))
    if unknown:
        raise DataError(
            f"{folder} has classes that the training folder lacks ({', '.join(unknown[:3])}); "
            "give both splits the same class sub-folders"
        )
    index = {name: i for i, name in enumerate(classes)}
    files = []
    for directory in dirs:
        for entry in _walk_files(directory):
            stat = entry.stat()
            files.append(FileEntry(entry.path, index[directory.name], stat.st_size, stat.st_mtime_ns))
    if not files:
        raise DataError(f"{folder} has class sub-folders but no images; add images or fix --data-path")
    return files


def _stratified_split(files: list[FileEntry], num_classes: int) -> tuple[list[FileEntry], list[FileEntry]]:
    rng = random.Random(SPLIT_SEED)
    train, test = [], []
    for label in range(num_classes):
        members = [f for f in files if f.label == label]
        rng.shuffle(members)
        n_test = max(1, round(len(members) * TEST_FRACTION)) if len(members) >= 2 else 0
        test += members[:n_test]
        train += members[n_test:]
    key = lambda entry: entry.path  # noqa: E731
    return sorted(train, key=key), sorted(test, key=key)


def list_split(root: str | Path, split: str) -> FolderSplit:
    """The files of ``split`` ('train' or 'test') under ``root`` in either layout."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(
            f"image folder {root} does not exist; pass --data-path pointing at a folder of class "
            "sub-folders (or with train/ and val/ or test/)"
        )
    held_out = next((root / name for name in ("test", "val") if (root / name).is_dir()), None)
    if (root / "train").is_dir() and held_out is not None:
        train_dir = root / "train"
        classes = _class_names(train_dir)
        folder = train_dir if split == "train" else held_out
        files = _list_files(folder, classes)
        probe = [entry.path for entry in _walk_files(train_dir / classes[0])[:PROBE_FILES]]
        return FolderSplit(files, classes, folder, probe)
    # One folder of classes (or a lone train/ folder): split it ourselves.
    folder = root / "train" if (root / "train").is_dir() else root
    classes = _class_names(folder)
    files = _list_files(folder, classes)
    train, test = _stratified_split(files, len(classes))
    probe = [entry.path for entry in files[:PROBE_FILES]]
    return FolderSplit(train if split == "train" else test, classes, folder, probe)


def default_image_size(paths: list[str]) -> int:
    """32 px for tiny images (CIFAR-like, at most 64 px), else 256 px; decided from a few headers."""
    sides = []
    for path in paths:
        try:
            with Image.open(path) as img:
                sides.append(max(img.size))
        except Exception as exc:
            raise _bad_image(path, exc) from exc
    return TINY_SIZE if sides and max(sides) <= TINY_SIDE else LARGE_SIZE


def _bad_image(path: str | Path | IO[bytes], exc: Exception) -> DataError:
    reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return DataError(f"{path} is not a readable image ({reason}); remove it or replace it with a valid image")


def decode_image(path: str | Path | IO[bytes], size: int) -> np.ndarray:
    """One file -> uint8 (size, size, 3): shorter side to ``size``, centre crop (bicubic, antialiased)."""
    try:
        with Image.open(path) as source:
            # JPEG can decode at 1/2, 1/4, 1/8 scale directly; draft keeps at least the requested size.
            source.draft("RGB", (size, size))
            img = source.convert("RGB")
            width, height = img.size
            side = min(width, height)
            left, top = (width - side) / 2, (height - side) / 2
            if (width, height) != (size, size):
                img = img.resize(
                    (size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side)
                )
            return np.asarray(img, dtype=np.uint8)
    except Exception as exc:
        raise _bad_image(path, exc) from exc


def available_memory() -> int | None:
    """Bytes the OS can give us without swapping (Linux MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_fits_in_memory(count: int, size: int, folder: Path, available: int | None = None) -> None:
    needed = count * 3 * size * size * MEMORY_FACTOR
    available = available_memory() if available is None else available
    if available is not None and needed > available * MEMORY_SHARE:
        smaller = max(8, int(size * math.sqrt(available * MEMORY_SHARE / needed)) // 8 * 8)
        raise DataError(
            f"{folder} has {count} images that need {needed / 2**30:.1f} GiB at {size} px but only "
            f"{available / 2**30:.1f} GiB of memory is available; pass a smaller --image-size (e.g. {smaller})"
        )


def decode_files(files: list[FileEntry], size: int, *, workers: int | None = None) -> torch.Tensor:
    """Decode ``files`` in parallel threads (PIL releases the GIL) -> uint8 (N, 3, size, size)."""
    staging = np.empty((len(files), size, size, 3), dtype=np.uint8)

    def work(index: int) -> None:
        staging[index] = decode_image(files[index].path, size)

    workers = workers or min(32, (os.cpu_count() or 1) + 4)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # tqdm(disable=None) stays silent when stderr is not a terminal.
        progress = tqdm(total=len(files), desc="decoding images", unit="img", disable=None, leave=False)
        with progress:
            for _ in pool.map(work, range(len(files)), chunksize=64):
                progress.update()
    return torch.from_numpy(staging).permute(0, 3, 1, 2).contiguous()


def listing_key(split: FolderSplit, size: int) -> str:
    """Digest of what the decoded tensors depend on: files (path, size, mtime, label) and image size."""
    digest = hashlib.sha256(f"v{CACHE_VERSION}|{size}|{'|'.join(split.classes)}".encode())
    prefix = len(str(split.root)) + 1
    for entry in split.files:
        relative = entry.path[prefix:]
        digest.update(f"\n{relative}|{entry.size}|{entry.mtime_ns}|{entry.label}".encode())
    return digest.hexdigest()[:24]


def load_imagefolder(root: str | Path, split: str, *, image_size: int | None = None) -> LabeledImages:
    """Decode (or read from the cache) one split of an image folder."""
    root = Path(root).expanduser()
    folder_split = list_split(root, split)
    size = image_size or default_image_size(folder_split.probe)
    cache = TensorCache(root / ".lowdino-cache")
    tag = f"{split}-{size}px"
    key = listing_key(folder_split, size)
    cached = cache.load(tag, key)
    if cached is not None:
        images, labels = cached
    else:
        check_fits_in_memory(len(folder_split.files), size, folder_split.root)
        images = decode_files(folder_split.files, size)
        labels = torch.tensor([entry.label for entry in folder_split.files], dtype=torch.int64)
        cache.store(tag, key, images, labels)
    return LabeledImages(images, labels, folder_split.classes, name=f"imagefolder {root}")
