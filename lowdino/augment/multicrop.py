"""DINO's multi-crop augmentation, batched on the training device with per-image parameters.

Input: uint8 images (B, 3, H, W) on any device. Output, for n_local local crops:

    [global1 (B, 3, g, g), global2 (B, 3, g, g), local1 (B, 3, l, l), ..., local_n (B, 3, l, l)]

float32, normalised by (x / 255 - mean) / std. Each view: RandomResizedCrop -> horizontal flip
(p 0.5) -> ColorJitter(0.4, 0.4, 0.2, 0.1) (p 0.8) -> grayscale (p 0.2) -> Gaussian blur with
sigma ~ U(0.1, 2.0) (p 1.0 global1, 0.1 global2, 0.5 locals) -> solarize (p 0.2, global2 only).
All locals are one batched call of B * n_local crops. With n_local=0 this is BYOL's two-view
recipe (asymmetric blur and solarisation), so there is no separate two-view class.
"""

from __future__ import annotations

import torch
from torch import nn

from lowdino.augment.jitter import ColorJitter
from lowdino.augment.ops import random_gaussian_blur, random_grayscale, random_hflip, random_solarize
from lowdino.data.crops import CropSpec, multicrop_specs, resized_crops, sample_crop_boxes
from lowdino.data.types import CropBatch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """(x - mean) / std per channel; x float (B, 3, H, W)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32)[None, :, None, None], persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(std, dtype=torch.float32)[None, :, None, None], persistent=False
        )

    def forward(self, x: torch.Tensor, *, inplace: bool = False) -> torch.Tensor:
        mean, std = self.mean.to(x.device), self.std.to(x.device)
        if inplace:
            return x.sub_(mean).div_(std)
        return (x - mean) / std


class ViewAugmentation(nn.Module):
    """One kind of view: crops (B * copies) images at ``size`` and applies the photometric chain.

    ``last_applied`` holds the per-crop masks (flip, grayscale, blur, solarize) of the last call.
    """

    def __init__(
        self,
        size: int,
        scale: tuple[float, float],
        *,
        blur_p: float,
        solarize_p: float = 0.0,
        flip_p: float = 0.5,
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"crop scale must satisfy 0 < min <= max <= 1, got {scale}")
        self.size = size
        self.scale = scale
        self.blur_p, self.solarize_p, self.flip_p, self.grayscale_p = blur_p, solarize_p, flip_p, grayscale_p
        self.jitter = ColorJitter(0.4, 0.4, 0.2, 0.1, p=jitter_p) if jitter_p > 0 else None
        self.normalize = Normalize(mean, std)
        self.last_applied: dict[str, torch.Tensor] = {}

    def forward(self, images: torch.Tensor, copies: int = 1) -> torch.Tensor:
        """images float (B, 3, H, W) in [0, 1] -> (copies * B, 3, size, size); crop k comes from image k % B."""
        batch, _, height, width = images.shape
        count = batch * copies
        boxes = sample_crop_boxes(count, height, width, self.scale, device=images.device)
        source = torch.arange(count, device=images.device) % batch
        return self.photometric(resized_crops(images, boxes, source, self.size).clamp_(0, 1))

    def photometric(self, x: torch.Tensor, *, quantize: bool = False) -> torch.Tensor:
        """The chain after the crop, on crops already cut: uint8, or float in [0, 1] (overwritten)
        -> normalised float (N, 3, size, size); ``quantize``: uint8 in [0, 255] instead, not
        normalised (what loader workers hand over; `MultiCropAugmentation.normalize_views` finishes it).

        Runs chunk by chunk (CHUNK_PIXELS per channel): each op makes several passes over its
        crops, and on the CPU these are bound by memory traffic unless the chunk stays in cache.
        """
        chunk = max(1, CHUNK_PIXELS // (x.shape[-1] * x.shape[-2]))
        if quantize:
            out = torch.empty(x.shape, dtype=torch.uint8, device=x.device)
            # One chunk-sized float scratch, reused: the float crops never exist whole.
            scratch = torch.empty(
                (min(chunk, x.shape[0]), *x.shape[1:]), dtype=torch.float32, device=x.device
            )
        else:
            out = x if x.dtype != torch.uint8 else torch.empty(x.shape, dtype=torch.float32, device=x.device)
        masks: dict[str, list[torch.Tensor]] = {"flip": [], "grayscale": [], "blur": [], "solarize": []}
        for start in range(0, x.shape[0], chunk):
            source = x[start : start + chunk]
            part = scratch[: source.shape[0]] if quantize else out[start : start + chunk]
            if x.dtype == torch.uint8:
                part.copy_(source).div_(255)
            elif quantize:
                part.copy_(source)
            self._chain(part, masks, normalize=not quantize)
            if quantize:
                out[start : start + chunk].copy_(part.mul_(255).round_())
        self.last_applied = {name: torch.cat(values) for name, values in masks.items()}
        return out

    def _chain(
        self, x: torch.Tensor, masks: dict[str, list[torch.Tensor]], *, normalize: bool = True
    ) -> None:
        """Every op of the chain on ``x``, in place."""
        _, flipped = random_hflip(x, self.flip_p)
        if self.jitter is not None:
            self.jitter(x)
        _, gray = random_grayscale(x, self.grayscale_p)
        _, blurred = random_gaussian_blur(x, self.blur_p)
        _, solarized = random_solarize(x, self.solarize_p)
        if normalize:
            self.normalize(x, inplace=True)
        for name, mask in (
            ("flip", flipped),
            ("grayscale", gray),
            ("blur", blurred),
            ("solarize", solarized),
        ):
            masks[name].append(mask)


# Pixels per channel of a chunk of the photometric chain: measured on one core of the 2-core CI
# machine, blurring 320 crops of 96 px 28 at a time took 67 ms against 194 ms in one call (32 crops
# of 224 px, 4 at a time: 29 against 50 ms); the colour jitter splits its chunk further.
CHUNK_PIXELS = 262_144


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float32 in [0, 1]; float input is taken to be in [0, 1] already."""
    if images.dtype == torch.uint8:
        return images.float().div_(255)  # a new tensor, which the view chain may overwrite
    return images.float()


class MultiCropAugmentation(nn.Module):
    """uint8 (B, 3, H, W) -> [global1, global2, local1, ..., local_n] normalised float views."""

    def __init__(
        self,
        global_size: int,
        local_size: int,
        n_local: int,
        global_scale: tuple[float, float] = (0.4, 1.0),
        local_scale: tuple[float, float] = (0.05, 0.4),
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
        *,
        flip_p: float = 0.5,
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        blur_p: tuple[float, float, float] = (1.0, 0.1, 0.5),
        solarize_p: float = 0.2,
    ) -> None:
        super().__init__()
        if n_local < 0:
            raise ValueError(f"n_local must be >= 0, got {n_local}")
        common = {
            "flip_p": flip_p,
            "jitter_p": jitter_p,
            "grayscale_p": grayscale_p,
            "mean": mean,
            "std": std,
        }
        self.n_local = n_local
        self.global1 = ViewAugmentation(global_size, global_scale, blur_p=blur_p[0], **common)  # type: ignore[arg-type]
        self.global2 = ViewAugmentation(
            global_size,
            global_scale,
            blur_p=blur_p[1],
            solarize_p=solarize_p,
            **common,  # type: ignore[arg-type]
        )
        self.local = ViewAugmentation(local_size, local_scale, blur_p=blur_p[2], **common)  # type: ignore[arg-type]

    @torch.no_grad()
    def forward(self, images: torch.Tensor | CropBatch) -> list[torch.Tensor]:
        """Whole images (cropped here) or a `CropBatch` cut by a streaming loader (crops as specs()),
        whose views the loader workers may have augmented already (uint8: normalised here)."""
        if isinstance(images, CropBatch):
            if images.views is None:
                return self.augment_crops(images)
            return self.normalize_views(images.views)
        x = to_unit_float(images)
        views = [self.global1(x), self.global2(x)]
        if self.n_local:
            views += list(self.local(x, copies=self.n_local).chunk(self.n_local))
        return views

    def specs(self) -> tuple[CropSpec, ...]:
        """What a streaming loader must cut per image for this augmentation."""
        return multicrop_specs(
            self.global1.size, self.local.size, self.n_local, self.global1.scale, self.local.scale
        )

    @torch.no_grad()
    def augment_crops(self, batch: CropBatch, *, quantize: bool = False) -> list[torch.Tensor]:
        """The photometric chain of every view on crops a streaming loader cut: normalised float
        views, or (``quantize``) uint8 views for `normalize_views` to finish."""
        globals_ = batch.groups[0]  # (B, 2, 3, g, g)
        views = [
            self.global1.photometric(globals_[:, 0], quantize=quantize),
            self.global2.photometric(globals_[:, 1], quantize=quantize),
        ]
        if self.n_local:
            # (B, n, ...) -> (n * B, ...) local-major, as the whole-image path orders its locals.
            locals_ = batch.groups[1].transpose(0, 1).flatten(0, 1)
            views += list(self.local.photometric(locals_, quantize=quantize).chunk(self.n_local))
        return views

    def normalize_views(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        """Views from `augment_crops(..., quantize=True)` -> normalised float (see `normalize_views`)."""
        return normalize_views(views, self.global1.normalize)


@torch.no_grad()
def normalize_views(views: list[torch.Tensor], normalize: Normalize) -> list[torch.Tensor]:
    """uint8 views (a photometric chain's output, quantised) -> normalised float; float views pass through.

    (x / 255 - mean) / std in two passes: a multiply that reads the uint8 and writes float, then a
    subtraction in place.
    """
    out = []
    for view in views:
        if view.dtype != torch.uint8:
            out.append(view)
            continue
        scale = (1.0 / (255.0 * normalize.std)).to(view.device)
        shift = (normalize.mean / normalize.std).to(view.device)
        result = torch.empty(view.shape, dtype=torch.float32, device=view.device)
        torch.mul(view, scale, out=result)
        out.append(result.sub_(shift))
    return out
