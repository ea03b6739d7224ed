"""Decoding at reduced JPEG scale gives the crops a full decode gives, and one sampler serves every path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lowdino.data.cropdecode import decode_crops, decode_reduced, draw_boxes, reduction_for
from lowdino.data.crops import CropSpec, multicrop_specs

pytestmark = pytest.mark.usefixtures("torch_single_thread")

DINO_SPECS = multicrop_specs(224, 96, 10, (0.4, 1.0), (0.05, 0.4))


@pytest.fixture(scope="module")
def large_photo(cifar_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real photo (CIFAR airplane) enlarged to 2000 x 1500 and saved as JPEG quality 90."""
    source = sorted((cifar_folder / "train" / "airplane").iterdir())[0]
    path = tmp_path_factory.mktemp("photo") / "large.jpg"
    Image.open(source).convert("RGB").resize((2000, 1500), Image.Resampling.BICUBIC).save(path, quality=90)
    return path


def test_reduction_keeps_one_source_pixel_per_output_pixel() -> None:
    specs = (CropSpec(96, (0.05, 0.4), 4),)
    boxes = [torch.tensor([[0.0, 0.0, 400.0, 300.0], [10.0, 10.0, 210.0, 410.0]])]
    # The tightest box is 200 px on its short side for 96 output px.
    assert reduction_for(specs, boxes) == pytest.approx(96 / 200)
    assert reduction_for(specs, [torch.tensor([[0.0, 0.0, 50.0, 50.0]])]) == 1.0  # never upsample the decode


def test_reduced_decode_matches_full_decode(large_photo: Path) -> None:
    reduced_sizes = []
    for seed in range(4):
        torch.manual_seed(seed)
        reduced = decode_crops(large_photo, DINO_SPECS)
        torch.manual_seed(seed)
        full = decode_crops(large_photo, DINO_SPECS, reduce=False)
        torch.manual_seed(seed)
        boxes = draw_boxes(DINO_SPECS, 2000, 1500)
        with Image.open(large_photo) as image:
            reduced_sizes.append(decode_reduced(image, reduction_for(DINO_SPECS, boxes)).size)
        for a, b in zip(reduced, full, strict=True):
            assert a.shape == b.shape
            difference = (a.int() - b.int()).abs().float()
            # JPEG DCT scaling vs full decode + filtering, and boxes rounded to whole pixels of the
            # smaller image: rounding-level differences only (against > 8 for another box, below).
            assert float(difference.mean()) < 1.0
            assert float(difference.quantile(0.99)) <= 8
    # The photo really was decoded smaller (1/2 .. 1/8 scale) at least once.
    assert min(width for width, _ in reduced_sizes) <= 1000


def test_different_boxes_give_clearly_different_crops(large_photo: Path) -> None:
    """The tolerance above is meaningful: crops of other boxes differ far more."""
    torch.manual_seed(0)
    first = decode_crops(large_photo, DINO_SPECS)
    torch.manual_seed(1)
    second = decode_crops(large_photo, DINO_SPECS)
    difference = (first[1].int() - second[1].int()).abs().float()
    assert float(difference.mean()) > 8.0


def test_crop_shapes_and_dtype(large_photo: Path) -> None:
    crops = decode_crops(large_photo.read_bytes(), DINO_SPECS)
    assert [tuple(c.shape) for c in crops] == [(2, 3, 224, 224), (10, 3, 96, 96)]
    assert all(c.dtype == torch.uint8 for c in crops)


def test_non_jpeg_decodes_in_full(tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    Image.fromarray(np.full((300, 400, 3), 77, dtype=np.uint8)).save(path)
    crops = decode_crops(path, (CropSpec(32, (0.05, 0.4), 3),))
    assert tuple(crops[0].shape) == (3, 3, 32, 32)
    assert bool((crops[0] == 77).all())


def test_unreadable_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(OSError, match="cannot identify image file"):
        decode_crops(path, DINO_SPECS)
