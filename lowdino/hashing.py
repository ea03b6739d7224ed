"""Content hashes that name what a result was computed from (a checkpoint, an exported artifact)."""

from __future__ import annotations

import hashlib
from pathlib import Path

_HASH_CHUNK = 1 << 24  # 16 MiB reads: a ViT checkpoint hashes without being held in memory


def file_hash(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
