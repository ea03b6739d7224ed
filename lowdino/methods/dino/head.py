"""DINO projection head and the multi-crop wrapper that runs one backbone forward per resolution."""

from __future__ import annotations

from collections.abc import Callable

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
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        n_layers: int = 3,
        use_bn: bool = False,
        norm_last_layer: bool = True,
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


class MultiCropWrapper(nn.Module):
    """Backbone + head over a list of crops, one backbone forward per run of equal-sized crops.

    crops: [C_1 (B, 3, S_1, S_1), ..., C_n] -> (n * B, K), crops in the order given.
    Concatenating crops of the same resolution turns 2 global + N local crops into two backbone calls,
    which is what makes multi-crop affordable.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.__dict__["_backbone_forward"] = backbone

    def wrap_backbone(self, wrapper: Callable[[nn.Module], nn.Module]) -> None:
        """Run the backbone through e.g. nn.DataParallel, which splits each per-resolution batch across
        GPUs and gathers it back in order (wrapping the whole wrapper would interleave the crops)."""
        self.__dict__["_backbone_forward"] = wrapper(self.backbone)

    def forward(
        self, crops: list[torch.Tensor], *, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Head outputs (n * B, K); with `return_features` also the backbone features (n * B, D)."""
        backbone = self.__dict__["_backbone_forward"]
        features = torch.cat([backbone(torch.cat(run)) for run in group_by_resolution(crops)])
        outputs = self.head(features)
        return (outputs, features) if return_features else outputs


def group_by_resolution(crops: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Consecutive crops of equal spatial size, grouped: [[g1, g2], [l1, l2, l3, l4]]."""
    groups: list[list[torch.Tensor]] = []
    for crop in crops:
        if groups and groups[-1][0].shape[-2:] == crop.shape[-2:]:
            groups[-1].append(crop)
        else:
            groups.append([crop])
    return groups
