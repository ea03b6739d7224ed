"""Reading a run checkpoint (`lowdino.train.checkpoint`) without the trainer: for evaluation and export.

Only tensors and plain containers are loaded (``weights_only=True``), never pickled code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lowdino.contract.rundir import CHECKPOINT_FILE
from lowdino.errors import CheckpointError


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or the checkpoint.pth inside a run directory."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}; pass a run directory holding {CHECKPOINT_FILE} or the file itself "
            "to --checkpoint"
        )
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({exc.__class__.__name__}); it is corrupt or not a LowDINO "
            "checkpoint: pass a run's checkpoint.pth or use --backbone NAME --weights FILE"
        ) from exc
    if not isinstance(payload, dict) or "backbone_name" not in payload or "backbone" not in payload:
        raise CheckpointError(
            f"{path} is not a LowDINO run checkpoint (no backbone_name/backbone entries); pass the "
            "checkpoint.pth of a pretrain or distill run, or a plain state dict with --backbone NAME --weights FILE"
        )
    return payload
