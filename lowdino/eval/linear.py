"""Linear probe on frozen features.

With features x (N, D), optional standardisation statistics from the training subset only,

    z = (x - mu) / sigma,   mu, sigma (D,) = mean / std of the training features (sigma floored),
    logits = z W^T + b,     W (C, D), b (C,),

trained with Adam on the mean cross-entropy, learning rate decayed by a cosine from ``lr`` to 0.
Full-batch when ``batch_size`` is None or >= N, else shuffled mini-batches (seeded). No BatchNorm:
the statistics are fixed before training so that train and test see the same affine map.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from lowdino.errors import DataError
from lowdino.eval.knn import top1_percent

_MIN_STD = 1e-6


class LinearProbe(nn.Module):
    """Fixed standardisation followed by one linear layer: (B, D) -> (B, C) logits."""

    mean: Tensor
    std: Tensor

    def __init__(self, mean: Tensor, std: Tensor, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())
        self.linear = nn.Linear(mean.shape[0], num_classes)

    def forward(self, features: Tensor) -> Tensor:
        return self.linear((features - self.mean) / self.std)


def _check(features: Tensor, labels: Tensor, what: str) -> None:
    if features.ndim != 2 or labels.ndim != 1 or features.shape[0] != labels.shape[0]:
        raise DataError(
            f"{what} features {tuple(features.shape)} and labels {tuple(labels.shape)} do not match; "
            "pass (N, D) features with one label each"
        )
    if features.shape[0] == 0:
        raise DataError(f"the {what} set is empty; use a larger label fraction or dataset")


def train_linear_probe(
    train_feats: Tensor,
    train_labels: Tensor,
    *,
    num_classes: int | None = None,
    epochs: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int | None = None,
    standardize: bool = True,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> LinearProbe:
    """A LinearProbe fitted to (train_feats, train_labels), in eval mode on ``device``."""
    _check(train_feats, train_labels, "training")
    device = torch.device(device)
    x = train_feats.to(device=device, dtype=torch.float32)
    y = train_labels.to(device=device, dtype=torch.long)
    classes = num_classes if num_classes is not None else int(y.max()) + 1
    if int(y.max()) >= classes or int(y.min()) < 0:
        raise DataError(f"labels must lie in 0..{classes - 1}; pass the dataset's real class count")
    if standardize:
        mean, std = x.mean(dim=0), x.std(dim=0, unbiased=False).clamp_min(_MIN_STD)
    else:
        mean, std = torch.zeros(x.shape[1], device=device), torch.ones(x.shape[1], device=device)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = LinearProbe(mean, std, classes).to(device)
    optimizer = torch.optim.Adam(probe.linear.parameters(), lr=lr, weight_decay=weight_decay)
    n = x.shape[0]
    batch = n if batch_size is None else max(1, min(batch_size, n))
    steps_per_epoch = math.ceil(n / batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    probe.train()
    for _ in tqdm(
        range(epochs), desc="linear probe", unit="epoch", disable=not progress or None, leave=False
    ):
        order = torch.randperm(n, generator=generator).to(device) if batch < n else None
        for start in range(0, n, batch):
            index = order[start : start + batch] if order is not None else slice(None)
            loss = F.cross_entropy(probe(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return probe.eval()


@torch.inference_mode()
def predict(probe: LinearProbe, features: Tensor, *, batch_size: int = 65536) -> Tensor:
    """Predicted class (N,) int64 on the CPU."""
    device = probe.mean.device
    chunks = [
        probe(features[start : start + batch_size].to(device=device, dtype=torch.float32)).argmax(dim=1).cpu()
        for start in range(0, features.shape[0], batch_size)
    ]
    return torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.long)


def linear_probe_top1(
    train_feats: Tensor,
    train_labels: Tensor,
    test_feats: Tensor,
    test_labels: Tensor,
    *,
    num_classes: int | None = None,
    epochs: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int | None = None,
    standardize: bool = True,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> float:
    """Top-1 (percent) on the test features of a probe trained on the training features."""
    _check(test_feats, test_labels, "test")
    if train_feats.shape[1] != test_feats.shape[1]:
        raise DataError(
            f"train features have dim {train_feats.shape[1]} but test features {test_feats.shape[1]}; "
            "extract both with the same backbone"
        )
    probe = train_linear_probe(
        train_feats,
        train_labels,
        num_classes=num_classes,
        epochs=epochs,
        lr=lr,
        weight_decay=weight_decay,
        batch_size=batch_size,
        standardize=standardize,
        seed=seed,
        device=device,
        progress=progress,
    )
    return top1_percent(predict(probe, test_feats), test_labels)
