"""The full CIFAR-10 image folder for the pretraining benchmarks, extracted once from the shared zip.

``extract_cifar10()`` -> ``<root>/cifar10`` with ``train/<class>/*.jpg`` (50 000) and
``test/<class>/*.jpg`` (10 000). A marker file makes later calls free; lowdino's imagefolder loader
then caches the decoded uint8 tensors, so only the first benchmark run pays for decoding.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = REPO.parent / "shared" / "datasets" / "cifar10-jpeg.zip"
DEFAULT_ROOT = REPO / "data" / "cifar10-full"  # data/ is git-ignored


def extract_cifar10(archive: Path = DEFAULT_ZIP, root: Path = DEFAULT_ROOT) -> Path:
    target = root / "cifar10"
    marker = root / ".complete"
    if marker.exists():
        return target
    if not archive.is_file():
        raise SystemExit(f"CIFAR-10 zip {archive} not found; pass --zip PATH to the shared cifar10-jpeg.zip")
    with zipfile.ZipFile(archive) as source:
        members = [
            name for name in source.namelist() if name.startswith("cifar10/") and name.endswith(".jpg")
        ]
        source.extractall(root, members=members)
    marker.touch()
    return target
