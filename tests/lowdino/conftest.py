"""Shared fixtures for the library tests.

The test modules live in subfolders mirroring the library (train/, eval/, data/, ...) and import the
helpers beside this file (`from _train_utils import ...`) as top-level modules: pytest's default
import mode puts this folder on sys.path when it loads this conftest, before any of those modules.
"""

from __future__ import annotations

import os
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
CIFAR_ZIP = Path(
    os.environ.get("LOWDINO_CIFAR_ZIP", REPO_ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.zip")
)
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_TRAIN_PER_CLASS = 30
CIFAR_TEST_PER_CLASS = 10


@pytest.fixture(scope="session")
def cifar_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small stratified CIFAR-10 image folder: root/train/<class>/*.jpg (30 each) and root/test/ (10 each).

    Shared by the whole session: treat it as read-only (copy it before modifying files). Loading it
    may create root/.lowdino-cache/.
    """
    if not CIFAR_ZIP.is_file():
        message = f"CIFAR-10 JPEG zip not found at {CIFAR_ZIP}; set LOWDINO_CIFAR_ZIP to its path"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run the real-data tests)")
        pytest.skip(message)
    root = tmp_path_factory.mktemp("cifar10")
    wanted = {"train": CIFAR_TRAIN_PER_CLASS, "test": CIFAR_TEST_PER_CLASS}
    taken: dict[tuple[str, str], int] = defaultdict(int)
    with zipfile.ZipFile(CIFAR_ZIP) as archive:
        # Names are cifar10/<split>/<class>/NNNN.jpg; the first files of each class are taken.
        for name in sorted(archive.namelist()):
            parts = name.split("/")
            if len(parts) != 4 or not parts[3].endswith(".jpg"):
                continue
            _, split, label, filename = parts
            if split not in wanted or taken[split, label] >= wanted[split]:
                continue
            taken[split, label] += 1
            target = root / split / label / filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
    return root


@pytest.fixture
def torch_single_thread() -> Iterator[None]:
    """One intra-op thread for the test. Tests use tiny tensors, and on a machine shared with other
    jobs OpenMP threads spin-wait for busy cores: one thread was 5x faster for the backbone, data
    and augmentation tests on 2 shared cores. Opt in with
    ``pytestmark = pytest.mark.usefixtures("torch_single_thread")``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
