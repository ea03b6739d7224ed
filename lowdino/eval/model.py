"""The backbone an evaluation measures: from a run checkpoint or from the registry.

A checkpoint (``checkpoint.pth`` or its run directory) stores ``backbone_name`` and ``backbone``, the
state dict of the network the run evaluates (DINO: the teacher; BYOL: the online network; distill:
the student), so evaluation never has to know the method. The registry path builds
``--backbone NAME`` randomly initialised (seeded), with timm's cached weights (``--pretrained``) or
from ``--weights FILE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lowdino.backbones import count_parameters, create_backbone, feature_dim, get_spec
from lowdino.backbones.weights import load_backbone_state
from lowdino.config import EvalConfig
from lowdino.contract.rundir import CHECKPOINT_FILE
from lowdino.errors import CheckpointError
from lowdino.eval.cache import state_dict_hash


@dataclass
class EvalModel:
    name: str  # shown in tables: "resnet5m (random init)", "mobilevit_xxs (runs/x/checkpoint.pth)"
    backbone_name: str
    backbone: nn.Module
    source: str  # "checkpoint", "pretrained", "weights", "random-init"
    source_path: str | None
    params: int
    feature_dim: int
    weights_hash: str
    # Fraction of the training labels the checkpoint's run learned from (distillation with a label
    # loss: 1.0); a label-fraction result of such a model is not a low-label result.
    labels_used: float = 0.0


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


def load_checkpoint_model(path: str | Path) -> EvalModel:
    """The evaluated backbone of a pretrain/distill run checkpoint."""
    file = resolve_checkpoint_path(path)
    payload = read_checkpoint(file)
    name = str(payload["backbone_name"])
    get_spec(name)  # unknown names fail here with the list of valid ones
    backbone = create_backbone(name)
    load_backbone_state(backbone, payload["backbone"], name, f"checkpoint {file}")
    model = _describe(backbone, name, "checkpoint", str(file), f"{name} ({file.parent.name}/{file.name})")
    model.labels_used = checkpoint_labels_used(payload)
    return model


def checkpoint_labels_used(payload: dict[str, Any]) -> float:
    """What the run's config says about labels (older checkpoints: from label_loss_weight)."""
    config = payload.get("config") or {}
    if payload.get("kind") == "distill" and float(config.get("label_loss_weight") or 0.0) > 0:
        return 1.0
    return 0.0


def load_registry_model(name: str, *, pretrained: bool, weights: str | None, seed: int) -> EvalModel:
    """``name`` from the registry: weights file, cached pretrained weights, or seeded random init."""
    # Random init depends on the global RNG: fix it so that "random init" means one network per seed.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = create_backbone(name, pretrained=pretrained, weights=weights)
    if weights is not None:
        return _describe(backbone, name, "weights", weights, f"{name} ({Path(weights).name})")
    if pretrained:
        return _describe(backbone, name, "pretrained", None, f"{name} (pretrained)")
    return _describe(backbone, name, "random-init", None, f"{name} (random init)")


def load_eval_model(config: EvalConfig) -> EvalModel:
    if config.checkpoint is not None:
        return load_checkpoint_model(config.checkpoint)
    assert config.backbone is not None  # the config validator demands one of the two
    return load_registry_model(
        config.backbone, pretrained=config.pretrained, weights=config.weights, seed=config.seed
    )


def _describe(backbone: nn.Module, name: str, source: str, path: str | None, label: str) -> EvalModel:
    return EvalModel(
        name=label,
        backbone_name=name,
        backbone=backbone,
        source=source,
        source_path=path,
        params=count_parameters(backbone),
        feature_dim=feature_dim(backbone),
        weights_hash=state_dict_hash(backbone),
    )
