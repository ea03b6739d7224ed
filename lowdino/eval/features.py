"""Frozen-backbone feature extraction: uint8 images in, one float32 feature row per image out.

Shapes: images (N, C, H, W) uint8; ``transform`` maps a uint8 batch (B, C, H, W) on the device to the
normalised float batch the backbone expects (e.g. ``lowdino.augment.EvalTransform``); the backbone
returns (B, D) pooled features (a (B, D, h, w) map is average-pooled); the result is (N, D) float32
on the CPU, in the input order.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from lowdino.devices import resolve_device, resolve_precision
from lowdino.errors import DataError

Transform = Callable[[Tensor], Tensor]


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

    The forward pass runs under the run's precision (lowdino.devices.resolve_precision: auto is bf16 on
    CUDA where supported, fp16 on older GPUs, fp32 on
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
    target = device if isinstance(device, torch.device) else resolve_device(device)
    amp = resolve_precision(precision, target)
    was_training = backbone.training
    backbone.eval()
    chunks: list[Tensor] = []
    starts = range(0, images_uint8.shape[0], batch_size)
    try:
        with torch.inference_mode(), amp.autocast(target):
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
