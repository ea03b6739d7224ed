"""Frozen-backbone feature extraction: uint8 images in, one float32 feature row per image out.

Shapes: images (N, C, H, W) uint8; ``transform`` maps a uint8 batch (B, C, H, W) on the device to the
normalised float batch the backbone expects (e.g. ``lowdino.augment.EvalTransform``); the backbone
returns (B, D) pooled features (a (B, D, h, w) map is average-pooled); the result is (N, D) float32
on the CPU, in the input order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from lowdino.errors import DataError, DeviceError

Transform = Callable[[Tensor], Tensor]


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' -> CUDA when present, else CPU; asking for CUDA without a GPU is a DeviceError."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA was requested but torch sees no GPU; use --device cpu or auto")
    return resolved


def autocast_for(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager[object]:
    """Autocast of a forward pass for the config's ``precision`` (auto/fp32/bf16/fp16).

    auto: bf16 on CUDA (features keep their ranking at half the memory traffic), fp32 on the CPU.
    """
    if precision == "fp32" or (device.type != "cuda" and precision != "bf16"):
        return contextlib.nullcontext()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _pooled(output: Tensor | tuple[Tensor, ...] | list[Tensor]) -> Tensor:
    if isinstance(output, tuple | list):
        output = output[0]
    if output.ndim == 4:
        # A backbone that returns its last feature map: pool like timm's global average pool.
        return output.mean(dim=(2, 3))
    if output.ndim != 2:
        raise DataError(
            f"the backbone returned features of shape {tuple(output.shape)}; expected (batch, dim) "
            "pooled features (create it with num_classes=0)"
        )
    return output


def extract_features(
    backbone: nn.Module,
    images_uint8: Tensor,
    transform: Transform,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    precision: str = "auto",
    progress: bool = False,
) -> Tensor:
    """Features (N, D) float32 on the CPU of every image, in eval mode without gradients.

    The forward pass runs under `autocast_for(device, precision)` (auto: bf16 on CUDA, fp32 on
    the CPU); features are cast back to float32. The
    backbone's train/eval mode is restored afterwards so that a trainer's kNN monitor can call this
    mid-training.
    """
    if images_uint8.ndim != 4:
        raise DataError(
            f"expected an image batch of shape (N, C, H, W), got {tuple(images_uint8.shape)}; "
            "decode the dataset to uint8 tensors first"
        )
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    target = resolve_device(device)
    was_training = backbone.training
    backbone.eval()
    chunks: list[Tensor] = []
    starts = range(0, images_uint8.shape[0], batch_size)
    try:
        with torch.inference_mode(), autocast_for(target, precision):
            bar = tqdm(
                starts,
                desc="features",
                unit="batch",
                disable=not progress or None,  # None: tqdm stays quiet when stderr is not a terminal
                leave=False,
            )
            for start in bar:
                batch = images_uint8[start : start + batch_size].to(target, non_blocking=True)
                features = _pooled(backbone(transform(batch)))
                chunks.append(features.float().cpu())
    finally:
        backbone.train(was_training)
    if not chunks:
        raise DataError("no images to extract features from; the dataset split is empty")
    return torch.cat(chunks)
