"""The nvJPEG option: its decode-and-crop code runs on the CPU decoder here (no GPU on this
machine); asking for it without a GPU is a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lowdino.data.cropdecode import decode_crops
from lowdino.data.crops import CropSpec
from lowdino.data.gpudecode import check_decode_device, crops_on_device, decode_batch, encode_with_boxes
from lowdino.data.loader import StreamingBatches
from lowdino.errors import DeviceError

pytestmark = pytest.mark.usefixtures("torch_single_thread")

SPECS = (CropSpec(32, (0.4, 1.0), 2), CropSpec(16, (0.05, 0.4), 3))


@pytest.fixture(scope="module")
def photo(cifar_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = sorted((cifar_folder / "train" / "horse").iterdir())[0]
    path = tmp_path_factory.mktemp("gpu") / "photo.jpg"
    Image.open(source).convert("RGB").resize((200, 150), Image.Resampling.BICUBIC).save(path, quality=90)
    return path


def test_device_decode_path_matches_the_worker_decode(photo: Path) -> None:
    torch.manual_seed(0)
    data, boxes = encode_with_boxes(photo, SPECS)
    torch.manual_seed(0)
    reference = decode_crops(photo, SPECS, reduce=False)
    images = decode_batch([torch.from_numpy(data.copy())], torch.device("cpu"))
    assert images[0] is not None
    assert tuple(images[0].shape) == (3, 150, 200)
    groups = crops_on_device([images[0]], [boxes], SPECS)
    assert [tuple(g.shape) for g in groups] == [(1, 2, 3, 32, 32), (1, 3, 3, 16, 16)]
    for group, expected in zip(groups, reference, strict=True):
        ours = group[0] * 255
        # roi_align on float boxes vs the workers' antialiased resize of rounded boxes: close.
        assert float((ours - expected.float()).abs().mean()) < 6.0


def test_undecodable_bytes_are_dropped_not_fatal(photo: Path) -> None:
    good = torch.from_numpy(np.frombuffer(photo.read_bytes(), dtype=np.uint8).copy())
    bad = torch.tensor(list(b"\xff\xd8 broken"), dtype=torch.uint8)
    images = decode_batch([good, bad, good], torch.device("cpu"))
    assert images[1] is None
    assert images[0] is not None
    assert images[2] is not None


def test_decode_device_cuda_needs_a_cuda_run(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="--decode-device cuda"):
        check_decode_device("cuda", torch.device("cpu"))
    check_decode_device("cpu", torch.device("cpu"))
    from _stream_utils import write_coded_folder

    from lowdino.data.folderstream import open_folder_source

    write_coded_folder(tmp_path, 4)
    with pytest.raises(DeviceError):
        StreamingBatches(open_folder_source(str(tmp_path), "train"), SPECS, 2, seed=0, decode_device="cuda")
