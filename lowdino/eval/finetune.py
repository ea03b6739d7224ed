"""End-to-end fine-tuning of a backbone plus a linear head on a labelled subset.

    logits = W f(t(a(x))) + b,   loss = mean cross-entropy(logits, y)

x (B, C, H, W) uint8 images; a = light augmentation on the uint8 batch (random crop with zero
padding of H/8 pixels, horizontal flip with p=0.5); t = the evaluation transform (uint8 -> normalised
float); f = the backbone, (B, C, H, W) -> (B, D); W (K, D), b (K,) for K classes.
AdamW over backbone and head, learning rate with a linear warm-up over the first epoch's steps
(at most 10 % of the run) then cosine decay to 0; bf16 autocast on CUDA. The caller's backbone is
copied, never modified.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from lowdino.devices import resolve_precision
from lowdino.errors import DataError
from lowdino.eval.knn import top1_percent

Transform = Callable[[Tensor], Tensor]


def random_crop_flip(images: Tensor, generator: torch.Generator, padding: int | None = None) -> Tensor:
    """Random crop (same size, zero padding) and horizontal flip of a uint8 batch (B, C, H, W)."""
    b, _, h, w = images.shape
    pad = max(1, h // 8) if padding is None else padding
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(images.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(images.device)
    flip = (torch.rand(b, generator=generator) < 0.5).to(images.device)
    rows = dy[:, None] + torch.arange(h, device=images.device)  # (B, H)
    cols = dx[:, None] + torch.arange(w, device=images.device)  # (B, W)
    # A flipped image reads its columns right to left.
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch_index = torch.arange(b, device=images.device)[:, None, None, None]
    channel_index = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return padded[batch_index, channel_index, rows[:, None, :, None], cols[:, None, None, :]]


class Classifier(nn.Module):
    """Backbone (B, C, H, W) -> (B, D) followed by a linear head (B, D) -> (B, K)."""

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.backbone(images))


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def finetune_top1(
    backbone: nn.Module,
    train_images: Tensor,
    train_labels: Tensor,
    test_images: Tensor,
    test_labels: Tensor,
    *,
    transform: Transform,
    num_classes: int,
    epochs: int = 10,
    lr: float = 1e-4,
    weight_decay: float = 0.05,
    batch_size: int = 256,
    seed: int = 0,
    device: str | torch.device = "cpu",
    precision: str = "auto",
    progress: bool = False,
) -> float:
    """Fine-tune a copy of ``backbone`` with a new head; top-1 (percent) on the test images."""
    if train_images.shape[0] == 0 or train_images.shape[0] != train_labels.shape[0]:
        raise DataError(
            f"fine-tuning needs one label per training image, got {train_images.shape[0]} images and "
            f"{train_labels.shape[0]} labels; use a larger label fraction"
        )
    device = torch.device(device)
    feature_dim = int(getattr(backbone, "num_features", 0))
    if feature_dim <= 0:
        raise DataError("the backbone has no num_features; create it with lowdino.backbones.create_backbone")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Classifier(copy.deepcopy(backbone), feature_dim, num_classes).to(device)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = train_images.shape[0]
    batch = max(1, min(batch_size, n))
    steps_per_epoch = math.ceil(n / batch)
    total = epochs * steps_per_epoch
    warmup = min(steps_per_epoch, max(1, total // 10))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, total, warmup))
    amp = resolve_precision(precision, device)
    # fp16 gradients underflow without loss scaling (resolve_precision says when it is needed).
    scaler = torch.amp.GradScaler(device.type, enabled=amp.use_scaler)
    labels = train_labels.long()
    model.train()
    bar = tqdm(total=total, desc="fine-tune", unit="step", disable=not progress or None, leave=False)
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        # A batch of one breaks BatchNorm in train mode; drop a last batch of one image.
        stops = [s for s in range(0, n, batch) if min(s + batch, n) - s > 1 or n == 1]
        for start in stops:
            index = order[start : start + batch]
            images = random_crop_flip(train_images[index].to(device), generator)
            with amp.autocast(device):
                loss = F.cross_entropy(model(transform(images)).float(), labels[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    return top1_percent(
        classify(model, test_images, transform, batch_size=batch_size, device=device, precision=precision),
        test_labels,
    )


@torch.inference_mode()
def classify(
    model: nn.Module,
    images: Tensor,
    transform: Transform,
    *,
    batch_size: int,
    device: torch.device,
    precision: str = "auto",
) -> Tensor:
    """Predicted classes (N,) int64 on the CPU, in eval mode."""
    model.eval()
    predictions = []
    with resolve_precision(precision, device).autocast(device):
        for start in range(0, images.shape[0], batch_size):
            logits = model(transform(images[start : start + batch_size].to(device)))
            predictions.append(logits.argmax(dim=1).cpu())
    return torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)
