"""Helpers shared by the server tests (a plain module: `conftest` names collide across test folders)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

CIFAR_ZIP = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "cifar10-jpeg.zip"


def extract_cifar(dest: Path, *, per_class: int = 3, split: str = "train") -> Path:
    """A few real CIFAR-10 JPEGs in ImageFolder layout under dest/cifar10/<split>/<class>/."""
    if not CIFAR_ZIP.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CIFAR_ZIP} is missing; CI requires the dataset zip")
        pytest.skip(f"{CIFAR_ZIP} is missing")
    taken: dict[str, int] = {}
    with zipfile.ZipFile(CIFAR_ZIP) as archive:
        for member in archive.namelist():
            parts = member.split("/")
            if len(parts) != 4 or parts[1] != split or not parts[3].endswith(".jpg"):
                continue
            if taken.get(parts[2], 0) >= per_class:
                continue
            taken[parts[2]] = taken.get(parts[2], 0) + 1
            archive.extract(member, dest)
    return dest / "cifar10"


def make_run_files(run_dir: Path, *, checkpoint: bool = True) -> None:
    """What a stopped trainer leaves behind (the worker would have written these)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text("batch_size: 16\n")
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    if checkpoint:
        (run_dir / "checkpoint.pth").write_bytes(b"not really a checkpoint")
