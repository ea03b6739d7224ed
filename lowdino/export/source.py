"""What `lowdino export` exports: a run directory, a checkpoint file or a registry backbone name.

A run checkpoint (`lowdino.train.checkpoint`) holds ``backbone`` (the network the run evaluates) and
``method`` (every network of the method: ``teacher.backbone.*`` and ``student.backbone.*``), so the
teacher or the student of a DINO/BYOL run can be exported. The checkpoint's config also says at which
size the run evaluated its backbone and which image folder it trained on (the default parity and
calibration data).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lowdino.backbones import backbone_names, count_parameters, create_backbone, feature_dim, get_spec
from lowdino.backbones.runs import read_checkpoint, resolve_checkpoint_path
from lowdino.backbones.weights import load_backbone_state
from lowdino.config.export import ExportConfig
from lowdino.errors import CheckpointError, ConfigError
from lowdino.hashing import file_hash


@dataclass
class ExportSource:
    backbone: nn.Module  # in eval mode, on the CPU
    backbone_name: str
    kind: str  # "checkpoint", "pretrained", "weights", "random-init"
    which: str | None  # teacher / student for a checkpoint
    path: str | None  # the checkpoint or weights file
    sha256: str | None  # of that file
    params: int
    feature_dim: int
    run_image_size: int | None  # the size the run evaluated at (checkpoint config)
    run_data_path: str | None  # the run's image folder, when it trained on one

    @property
    def label(self) -> str:
        if self.kind == "checkpoint":
            return f"{self.backbone_name} ({self.which} of {self.path})"
        return f"{self.backbone_name} ({self.kind})"


def _network_state(payload: dict[str, Any], which: str, file: Path) -> dict[str, torch.Tensor]:
    """The backbone tensors of ``which`` network (teacher / student) in a run checkpoint."""
    kind = str(payload.get("kind", "pretrain"))
    config = payload.get("config") or {}
    if kind == "distill" and which == "teacher":
        raise ConfigError(
            f"{file} is a distill run: it trains only its student (its frozen teacher is "
            f"{config.get('teacher', 'a registry backbone')}); pass --which student, or export the teacher by name"
        )
    method = payload.get("method")
    prefix = f"{which}.backbone."
    if isinstance(method, dict):
        state = {key[len(prefix) :]: value for key, value in method.items() if key.startswith(prefix)}
        if state:
            return state
    if which == "teacher" or kind == "distill":
        # Checkpoints without the method's networks: ``backbone`` is the evaluated network (DINO's teacher).
        return dict(payload["backbone"])
    raise CheckpointError(
        f"{file} holds no {which} network (no '{prefix}*' weights); pass --which teacher or another checkpoint"
    )


def _run_hints(payload: dict[str, Any]) -> tuple[int | None, str | None]:
    """(evaluation size, image folder) from a checkpoint's config, as far as it says."""
    config = payload.get("config") or {}
    size = config.get("crop_size") if payload.get("kind") == "distill" else config.get("global_crop_size")
    data = config.get("data_path") if config.get("dataset") == "imagefolder" else None
    return (int(size) if isinstance(size, int) else None), (str(data) if data else None)


def _from_checkpoint(path: Path, which: str) -> ExportSource:
    file = resolve_checkpoint_path(path)
    payload = read_checkpoint(file)
    name = str(payload["backbone_name"])
    get_spec(name)
    backbone = create_backbone(name)
    load_backbone_state(backbone, _network_state(payload, which, file), name, f"checkpoint {file}")
    size, data = _run_hints(payload)
    return ExportSource(
        backbone=backbone.eval(),
        backbone_name=name,
        kind="checkpoint",
        which=which,
        path=str(file),
        sha256=file_hash(file),
        params=count_parameters(backbone),
        feature_dim=feature_dim(backbone),
        run_image_size=size,
        run_data_path=data,
    )


def _from_registry(name: str, *, pretrained: bool, weights: str | None, seed: int) -> ExportSource:
    # Random init draws from the global RNG: one network per seed, as in evaluation.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = create_backbone(name, pretrained=pretrained, weights=weights)
    kind = "weights" if weights is not None else "pretrained" if pretrained else "random-init"
    return ExportSource(
        backbone=backbone.eval(),
        backbone_name=name,
        kind=kind,
        which=None,
        path=weights,
        sha256=file_hash(weights) if weights is not None else None,
        params=count_parameters(backbone),
        feature_dim=feature_dim(backbone),
        run_image_size=None,
        run_data_path=None,
    )


def load_source(config: ExportConfig) -> ExportSource:
    """The backbone named by ``config.source``: a path (run directory or checkpoint) or a registry name."""
    source = config.source
    path = Path(source).expanduser()
    if path.exists():
        if config.pretrained or config.weights is not None:
            raise ConfigError(
                "--pretrained and --weights go with a backbone name; a checkpoint carries its own weights"
            )
        return _from_checkpoint(path, config.which)
    if source in backbone_names():
        return _from_registry(source, pretrained=config.pretrained, weights=config.weights, seed=config.seed)
    looks_like_path = "/" in source or source.endswith((".pth", ".pt"))
    if looks_like_path:
        raise CheckpointError(
            f"no run directory or checkpoint at {source}; pass an existing run directory, checkpoint file "
            "or a backbone name (`lowdino backbones`)"
        )
    raise ConfigError(
        f"unknown backbone {source!r} and no such file; valid names: {', '.join(backbone_names())}"
    )
