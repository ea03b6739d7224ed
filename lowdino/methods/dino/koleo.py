"""KoLeo regulariser: spreads a batch of features over the sphere (DINOv2, Sablayrolles et al. 2019)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class KoLeoLoss(nn.Module):
    """Kozachenko-Leonenko entropy estimator of L2-normalised features, as a loss.

        x_i = f_i / ||f_i||        d_i = min_{j != i} ||x_i - x_j||        L = -1/B sum_i log(d_i + eps)

    Pushing each feature away from its nearest neighbour in the batch spreads the features
    uniformly, which DINOv2 found to help nearest-neighbour retrieval (weight 0.1 on the backbone
    features of each global crop). The neighbour is chosen without gradient; the distance carries it.

    Shapes: features (B, D) -> scalar; B batch (>= 2), D feature dimension.

    Runs with autocast off (as DINOv2): in bf16 the cosine similarities of close neighbours round to
    the same value (1 - 2^-8 apart), so the argmax would pick a farther neighbour than the nearest.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[0] < 2:
            raise ValueError(f"KoLeo needs at least 2 samples per batch, got {features.shape[0]}")
        with torch.autocast(device_type=features.device.type, enabled=False):
            return self._forward(features)

    def _forward(self, features: torch.Tensor) -> torch.Tensor:
        x = F.normalize(features.float(), dim=-1, eps=self.eps)
        with torch.no_grad():
            similarity = x @ x.t()
            similarity.fill_diagonal_(-2.0)  # below any cosine similarity: never its own neighbour
            nearest = similarity.argmax(dim=1)
        distances = F.pairwise_distance(x, x[nearest], eps=self.eps)
        return -torch.log(distances + self.eps).mean()
