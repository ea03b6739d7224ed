"""An exported artifact as the evaluated backbone: the seam through which `lowdino eval --artifact` runs
the same kNN / 1-NN / linear protocols on features computed by ONNX Runtime (or TorchScript, or
ExecuTorch for a .pte) instead of PyTorch. The manifest written by `lowdino export` supplies the backbone, input size and normalisation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lowdino.errors import ConfigError
from lowdino.export.manifest import read_manifest
from lowdino.export.runtime import Runtime, load_runtime
from lowdino.hashing import file_hash


class ArtifactBackbone(nn.Module):
    """``forward(x)`` (B, 3, S, S) float -> (B, D) float32 features computed by the artifact's runtime.

    Inputs and outputs stay torch tensors on the caller's device, so `extract_features` and the
    protocols do not know that the network is not PyTorch.
    """

    def __init__(self, runtime: Runtime, manifest: dict[str, Any]) -> None:
        super().__init__()
        self.runtime = runtime
        self.num_features = int(manifest["feature_dim"])
        self.backbone_name = str(manifest["backbone"])

    def forward(self, images: Tensor) -> Tensor:
        features = self.runtime(images.detach().float().cpu().numpy())
        return torch.from_numpy(np.ascontiguousarray(features)).to(images.device)


def load_artifact(path: str | Path, threads: int | None = None) -> tuple[ArtifactBackbone, dict[str, Any]]:
    manifest = read_manifest(path)
    backbone = ArtifactBackbone(load_runtime(path, threads), manifest)
    return backbone, manifest


def artifact_precision(manifest: dict[str, Any]) -> str:
    return "int8" if manifest.get("quantization") else "fp32"


def check_artifact_size(manifest: dict[str, Any], requested: int | None, path: str) -> int:
    size = int(manifest["image_size"])
    if requested is not None and requested != size:
        raise ConfigError(
            f"{path} takes {size} px inputs (fixed at export), not --image-size {requested}; drop --image-size "
            f"or export again with --image-size {requested}"
        )
    return size


def artifact_hash(path: str | Path) -> str:
    return file_hash(path)
