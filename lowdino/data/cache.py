"""On-disk cache of decoded datasets: one file per (tag, key), written atomically.

Files are ``<tag>-<key>.pt`` holding {"images": uint8 (N, 3, H, W), "labels": int64 (N,)}. A new
key for a tag replaces the old file, so a changed folder does not leave stale copies behind. The
cache is an optimisation only: unreadable or unwritable caches are reported and skipped.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import torch


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


class TensorCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, tag: str, key: str) -> Path:
        return self.directory / f"{tag}-{key}.pt"

    def load(self, tag: str, key: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        path = self.path(tag, key)
        if not path.is_file():
            return None
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            images, labels = payload["images"], payload["labels"]
        except Exception as exc:  # a truncated or foreign file: rebuild rather than fail the run
            warnings.warn(
                f"ignoring unreadable dataset cache {path} ({exc.__class__.__name__})", stacklevel=2
            )
            return None
        return images, labels

    def store(self, tag: str, key: str, images: torch.Tensor, labels: torch.Tensor) -> None:
        path = self.path(tag, key)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    torch.save({"images": images, "labels": labels}, handle)
                # mkstemp creates 0600; other processes of the user's team (worker, server) read it too.
                os.chmod(tmp, 0o666 & ~_umask())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            for stale in self.directory.glob(f"{tag}-*.pt"):
                if stale != path:
                    stale.unlink(missing_ok=True)
        except OSError as exc:
            warnings.warn(
                f"could not write dataset cache {path} ({exc.__class__.__name__}); the next run decodes again",
                stacklevel=2,
            )
