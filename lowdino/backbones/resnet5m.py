"""The 5 M-parameter ResNet of the original LowDINO work.

Layout (B = batch, spatial sizes for a 224 px input):

    stem     conv 7x7/2 (3 -> 64) + BN + ReLU, max-pool 3x3/2           (B, 64, 56, 56)
    stage 1  3 x BasicBlock(64 -> 64)                                   (B, 64, 56, 56)
    stage 2  1 x BasicBlock(64 -> 128, stride 2) + 5 x BasicBlock(128)  (B, 128, 28, 28)
    stage 3  1 x BasicBlock(128 -> 512, stride 2)                       (B, 512, 14, 14)
    pool     global average                                             (B, 512)

4 956 480 parameters; a wide last block buys a 512-d feature at a small-network budget.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """y = ReLU(BN(conv3x3(ReLU(BN(conv3x3(x))))) + skip(x)); skip = BN(conv1x1) when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


def _stage(in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [BasicBlock(in_channels, out_channels, stride)]
    layers += [BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet5M(nn.Module):
    """(B, 3, H, W) -> (B, 512) pooled features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = _stage(64, 64, blocks=3, stride=1)
        self.layer2 = nn.Sequential(BasicBlock(64, 128, stride=2), *_stage(128, 128, blocks=5, stride=1))
        last = BasicBlock(128, 512, stride=2)
        self.layer3 = nn.Sequential(last)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features: int = last.bn2.num_features
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_features(x)).flatten(1)
