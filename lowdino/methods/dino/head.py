"""DINO projection head: MLP, L2-normalised bottleneck, weight-normalised prototype layer.

The multi-crop wrapper (one backbone forward per run of equal-sized crops, then this head over all
crops) is `lowdino.methods.multicrop.MultiCropWrapper`, shared with BYOL.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrizations


class DINOHead(nn.Module):
    """MLP projection head with an L2-normalised bottleneck and a weight-normalised prototype layer.

    x (B, D) -> MLP (D -> H -> H -> bottleneck, GELU) -> z = z / ||z||_2 -> W z  (B, K)
    where each row of W (K, bottleneck) is g_k * v_k / ||v_k||. With `norm_last_layer` the gains g are
    frozen at 1, so the logits are cosine similarities to K prototypes (DINO: more stable for ViTs).

    Shapes: B batch, D backbone features, H hidden_dim, K out_dim.

    Runs in fp32 even under autocast: the logits are divided by the teacher temperature (x50 at
    0.02), so bf16's 3 significant digits would become errors of ~0.1 in the softmax input. The head
    is small beside the backbone; DINO likewise keeps its loss in fp32.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        hidden_dim: int,
        bottleneck_dim: int,
        use_bn: bool,
        norm_last_layer: bool,
        n_layers: int = 3,  # DINO's depth; not a config setting
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(n_layers - 1):
            layers.append(nn.Linear(width, hidden_dim))
            if use_bn:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.GELU())
            width = hidden_dim
        layers.append(nn.Linear(width, bottleneck_dim))
        self.mlp = nn.Sequential(*layers)
        self.apply(_init_linear)
        self.last_layer = parametrizations.weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        gain = self.last_layer.parametrizations.weight.original0
        with torch.no_grad():
            gain.fill_(1.0)
        gain.requires_grad_(not norm_last_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = self.mlp(x.float())
            x = nn.functional.normalize(x, dim=-1, p=2)
            return self.last_layer(x)


def _init_linear(module: nn.Module) -> None:
    # DINO's truncated-normal init keeps the initial logits small, so early training is not dominated by noise.
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
