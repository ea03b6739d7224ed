"""Training checkpoints: what they hold, atomic writes, compatibility checks and RNG capture.

A checkpoint is a plain dict readable with ``torch.load(path, weights_only=True)`` (numpy RNG state
is stored as a list of ints), so evaluation code can open it without trusting pickled code:

    format          CHECKPOINT_FORMAT
    kind            "pretrain"
    backbone_name   registry name of the backbone (create_backbone(backbone_name) rebuilds it)
    backbone        the teacher backbone's state dict (what kNN/linear/fine-tuning evaluate)
    method          Method.state_dict(): student, teacher, DINO center, ...
    optimizer       AdamW state, including the current lr / weight decay of every group
    scaler          GradScaler state (fp16 only, else None)
    step, epoch     optimiser steps done (the next step is step + 1) and the data epoch as a float
    rng             one dict per rank: torch, cuda, numpy, python RNG states
    config          the PretrainConfig as JSON-compatible dict
    trainer_state   small extras (best kNN, collapse detector counters)
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from lowdino.contract.rundir import atomic_write_bytes
from lowdino.errors import CheckpointError

CHECKPOINT_FORMAT = 1

# Fields that change the shapes or meaning of the saved weights: a checkpoint is only resumable when
# they agree with the config.
ARCHITECTURE_FIELDS = (
    "backbone",
    "method",
    "out_dim",
    "hidden_dim",
    "bottleneck_dim",
    "use_bn_in_head",
    "norm_last_layer",
    "byol_projection_dim",
    "byol_hidden_dim",
    # distillation runs
    "student",
    "teacher",
    "loss",
)


def capture_rng_state() -> dict[str, Any]:
    """Every RNG a training step draws from (augmentation: torch; data order is seeded separately)."""
    name, keys, pos, has_gauss, cached = cast(tuple[Any, ...], np.random.get_state(legacy=True))
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [str(name), [int(v) for v in keys], int(pos), int(has_gauss), float(cached)],
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)


def save_checkpoint(paths: Path | list[Path], payload: dict[str, Any]) -> None:
    """Serialise once in memory, then write each path atomically: a reader (or a crash) never sees
    half a file."""
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **payload}, buffer)
    data = buffer.getvalue()
    for path in [paths] if isinstance(paths, Path) else paths:
        atomic_write_bytes(path, data)


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}; run without --resume to start a new run, or pass the run "
            "directory that holds checkpoint.pth as --output-dir"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({exc.__class__.__name__}); it is corrupt or not a "
            "LowDINO checkpoint: resume from a periodic checkpoint_eNNNN.pth copied to checkpoint.pth"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a LowDINO pretraining checkpoint (format {CHECKPOINT_FORMAT}); "
            "pass the checkpoint.pth of a `lowdino pretrain` run"
        )
    return payload


def check_compatible(payload: dict[str, Any], config: dict[str, Any], path: Path) -> None:
    """Raise CheckpointError naming every architecture field where checkpoint and config differ."""
    saved = payload.get("config") or {}
    differences = [
        f"{field} {saved.get(field)!r} in the checkpoint vs {config.get(field)!r} now"
        for field in ARCHITECTURE_FIELDS
        if field in saved and saved.get(field) != config.get(field)
    ]
    if differences:
        raise CheckpointError(
            f"checkpoint {path} comes from a different model ({'; '.join(differences)}); resume with the "
            "run's own config.yaml or choose another --output-dir"
        )
