"""On-disk cache of extracted features, keyed by everything that changes them.

A key is (model name, hash of the backbone weights, dataset, split, image size, subset, extra).
The weights hash covers every tensor of the state dict (names, dtypes, shapes and bytes), so a
retrained or edited model never hits a stale entry. Entries are ``<cache_dir>/<sha256 of key>.pt``
holding ``{"key", "features" (N, D) float32, "labels" (N,) int64}``, written to a temp file and
renamed: an interrupted run leaves either the old entry or none, never half a file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from lowdino.contract.rundir import atomic_write_bytes

CACHE_FORMAT = 1


def lowdino_home() -> Path:
    """$LOWDINO_HOME, default ~/.lowdino."""
    return Path(os.environ.get("LOWDINO_HOME") or Path.home() / ".lowdino").expanduser()


def default_cache_dir() -> Path:
    return lowdino_home() / "cache" / "features"


def state_dict_hash(source: nn.Module | Mapping[str, Tensor]) -> str:
    """SHA-256 (hex) over the sorted names, dtypes, shapes and raw bytes of every tensor."""
    state = source.state_dict() if isinstance(source, nn.Module) else source
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name]
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()


def indices_hash(indices: Tensor | None) -> str:
    """Short hash naming a subset of a split ("all" for the whole split)."""
    if indices is None:
        return "all"
    data = indices.detach().cpu().long().contiguous().numpy().tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class FeatureKey:
    model: str
    weights_hash: str
    dataset: str
    split: str
    image_size: int
    subset: str = "all"
    extra: str = ""

    def digest(self) -> str:
        text = json.dumps({"format": CACHE_FORMAT, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


class FeatureCache:
    """Features (N, D) and labels (N,) per FeatureKey under ``root``."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    def path(self, key: FeatureKey) -> Path:
        return self.root / f"{key.digest()}.pt"

    def load(self, key: FeatureKey) -> tuple[Tensor, Tensor] | None:
        """The cached (features, labels), or None on a miss or an unreadable entry."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            # Written atomically, so this is outside damage (disk full, edited file): recompute.
            path.unlink(missing_ok=True)
            return None
        if not isinstance(payload, dict) or payload.get("key") != asdict(key):
            return None
        return payload["features"], payload["labels"]

    def save(self, key: FeatureKey, features: Tensor, labels: Tensor) -> Path:
        path = self.path(key)
        buffer = io.BytesIO()
        torch.save(
            {"key": asdict(key), "features": features.float().cpu(), "labels": labels.long().cpu()}, buffer
        )
        atomic_write_bytes(path, buffer.getvalue())
        return path

    def get_or_compute(
        self, key: FeatureKey, compute: Callable[[], tuple[Tensor, Tensor]]
    ) -> tuple[Tensor, Tensor, bool]:
        """(features, labels, hit): the cached entry, or ``compute()`` stored for next time."""
        cached = self.load(key)
        if cached is not None:
            return cached[0], cached[1], True
        features, labels = compute()
        self.save(key, features, labels)
        return features, labels, False
