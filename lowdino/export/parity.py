"""Does the artifact compute what the PyTorch backbone computes? Max absolute difference and cosine
similarity of their features on one batch of images.

fp32 artifacts must agree within a tolerance (1e-4 by default: float32 reassociation across fused
kernels stays orders of magnitude below it, a wrong layer or preprocessing does not); an int8
artifact is expected to differ, and its figures are reported, not enforced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from lowdino.errors import LowDinoError


class ParityError(LowDinoError):
    """An fp32 artifact whose features differ from the PyTorch backbone's beyond the tolerance."""


@dataclass(frozen=True)
class Parity:
    max_abs_diff: float
    mean_abs_diff: float
    cosine_min: float
    cosine_mean: float
    images: int
    image_source: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reference_features(backbone: nn.Module, batch: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return backbone.eval()(batch).float().numpy()


def compare(reference: np.ndarray, candidate: np.ndarray, image_source: str) -> Parity:
    if reference.shape != candidate.shape:
        raise ParityError(
            f"the artifact returns features of shape {candidate.shape}, PyTorch {reference.shape}; export again"
        )
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    ref, cand = reference.astype(np.float64), candidate.astype(np.float64)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
    cosine = (ref * cand).sum(axis=1) / np.maximum(norms, 1e-12)
    return Parity(
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        cosine_min=float(cosine.min()),
        cosine_mean=float(cosine.mean()),
        images=int(reference.shape[0]),
        image_source=image_source,
    )


def require_parity(parity: Parity, tolerance: float, what: str) -> None:
    if parity.max_abs_diff > tolerance:
        raise ParityError(
            f"{what} differs from PyTorch by {parity.max_abs_diff:.3g} (max absolute feature difference on "
            f"{parity.images} images) > tolerance {tolerance:g}; nothing was written: report the backbone "
            "and size, or try another --opset / --format"
        )
