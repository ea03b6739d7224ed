"""nvJPEG decoding on the training GPU (``--decode-device cuda``).

Loader workers only read the encoded bytes and draw the crop boxes from the image header (the same
sampler as every other path); the main process decodes the whole batch with
``torchvision.io.decode_jpeg(device=...)`` and cuts the crops with roi_align on the device. Files
nvJPEG cannot read (PNG, CMYK JPEGs, corrupt data) fall back to torchvision's CPU decoder one by
one and are skipped and counted when that fails too. On a CPU device the same code runs with the
CPU decoder, which is what the tests exercise; the GPU path itself is not yet measured.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_image, decode_jpeg

from lowdino.data.cropdecode import draw_boxes, open_image
from lowdino.data.crops import CropSpec, resized_crops
from lowdino.errors import DeviceError

# (bytes, one (count, 4) box tensor per spec)
Encoded = tuple[np.ndarray, list[torch.Tensor]]


def check_decode_device(decode_device: str, device: torch.device) -> None:
    if decode_device == "cuda" and device.type != "cuda":
        raise DeviceError(
            f"--decode-device cuda decodes on the training GPU but the run uses {device}; "
            "drop --decode-device or train with --device cuda"
        )


def encode_with_boxes(source: str | Path | bytes, specs: tuple[CropSpec, ...]) -> Encoded:
    """The file's bytes and its crop boxes, drawn from the header alone (nothing decoded)."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    with open_image(data) as image:
        boxes = draw_boxes(specs, *image.size)
    return np.frombuffer(data, dtype=np.uint8), boxes


def _decode_one(data: torch.Tensor, device: torch.device) -> torch.Tensor | None:
    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        pass
    try:
        return decode_image(data, mode=ImageReadMode.RGB).to(device)
    except RuntimeError:
        return None


def decode_batch(encoded: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """uint8 (3, H, W) per image on ``device``; None where no decoder could read it."""
    try:
        return list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device))
    except RuntimeError:  # one unreadable file fails the batched call: retry one by one
        return [_decode_one(data, device) for data in encoded]


def crops_on_device(
    images: list[torch.Tensor], boxes: list[list[torch.Tensor]], specs: tuple[CropSpec, ...]
) -> list[torch.Tensor]:
    """Float crops in [0, 1], one (B, count, 3, size, size) tensor per spec."""
    groups: list[list[torch.Tensor]] = [[] for _ in specs]
    for image, image_boxes in zip(images, boxes, strict=True):
        x = image.unsqueeze(0).float().div_(255)
        for index, spec in enumerate(specs):
            box = image_boxes[index].to(x.device, torch.float32)
            source = torch.zeros(box.shape[0], dtype=torch.int64, device=x.device)
            groups[index].append(resized_crops(x, box, source, spec.size).clamp_(0, 1))
    return [torch.stack(group) for group in groups]
