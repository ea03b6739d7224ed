"""Streaming memory does not grow with the folder: peak RSS of the training process and of its
DataLoader workers, measured in fresh processes for 2 000 and 20 000 images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[3]
# Peak RSS may grow with the listing (a path per file: ~2 MB for 18 000 more) and allocator noise,
# never with the images: decoded in memory, 20 000 images at the default 256 px are 3.9 GB.
ALLOWED_GROWTH_MB = 25

SCRIPT = """
import json, resource, sys
from lowdino.data.crops import CropSpec
from lowdino.data.folderstream import open_folder_source
from lowdino.data.loader import LoaderOptions, StreamingBatches

source = open_folder_source(sys.argv[1], "train")
specs = (CropSpec(32, (0.4, 1.0), 2), CropSpec(16, (0.05, 0.4), 4))
options = LoaderOptions(num_workers=2, prefetch_factor=2, persistent_workers=False)
loader = StreamingBatches(source, specs, 100, seed=0, options=options)
images = sum(len(batch) for batch, _labels in loader.epoch(0))  # the workers exit at the end
print(json.dumps({
    "images": images,
    "main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def _folder(root: Path, count: int, jpeg: bytes) -> Path:
    for label in range(2):
        (root / "train" / f"c{label}").mkdir(parents=True)
        (root / "test" / f"c{label}").mkdir(parents=True)
        (root / "test" / f"c{label}" / "0.jpg").write_bytes(jpeg)
    for index in range(count):
        (root / "train" / f"c{index % 2}" / f"{index:05d}.jpg").write_bytes(jpeg)
    return root


def _peak(folder: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_folder(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "image.jpg", quality=90)
    jpeg = (tmp_path / "image.jpg").read_bytes()
    small = _peak(_folder(tmp_path / "small", 2_000, jpeg))
    large = _peak(_folder(tmp_path / "large", 20_000, jpeg))
    assert small["images"] == 2_000
    assert large["images"] == 20_000
    assert large["main_mb"] - small["main_mb"] < ALLOWED_GROWTH_MB, (small, large)
    assert large["worker_mb"] - small["worker_mb"] < ALLOWED_GROWTH_MB, (small, large)


pytestmark = pytest.mark.timeout(600)
