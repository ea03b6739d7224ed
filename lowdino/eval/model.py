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
from lowdino.backbones.runs import read_checkpoint, resolve_checkpoint_path
from lowdino.backbones.weights import load_backbone_state
from lowdino.config import EvalConfig
from lowdino.errors import WeightsNotFoundError
from lowdino.eval.cache import state_dict_hash


@dataclass
class EvalModel:
    name: str  # shown in tables: "resnet5m (random init)", "mobilevit_xxs (runs/x/checkpoint.pth)"
    backbone_name: str
    backbone: nn.Module
    source: str  # "checkpoint", "pretrained", "weights", "random-init", "artifact"
    source_path: str | None
    params: int
    feature_dim: int
    weights_hash: str
    # Fraction of the training labels the checkpoint's run learned from (distillation with a label
    # loss: 1.0); a label-fraction result of such a model is not a low-label result.
    labels_used: float = 0.0
    runtime: str = "torch"  # what computes the features: torch, onnxruntime, torchscript, executorch
    precision: str = "fp32"  # of the weights: int8 for a quantized artifact
    image_size: int | None = None  # fixed by an artifact
    note: str | None = None  # e.g. "random weights: latency only"


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


def load_artifact_model(path: str, image_size: int | None) -> EvalModel:
    """An exported artifact (`lowdino export`), run by its own runtime; its manifest names the backbone."""
    from lowdino.eval.artifact import artifact_hash, artifact_precision, check_artifact_size, load_artifact

    backbone, manifest = load_artifact(path)
    precision = artifact_precision(manifest)
    name = str(manifest["backbone"])
    get_spec(name)
    return EvalModel(
        name=f"{name} ({Path(path).name}, {backbone.runtime.name} {precision})",
        backbone_name=name,
        backbone=backbone,
        source="artifact",
        source_path=str(path),
        params=int(manifest["params"]),
        feature_dim=int(manifest["feature_dim"]),
        weights_hash=artifact_hash(path),
        runtime=backbone.runtime.name,
        precision=precision,
        image_size=check_artifact_size(manifest, image_size, path),
    )


def load_eval_model(config: EvalConfig) -> EvalModel:
    if config.checkpoint is not None:
        return load_checkpoint_model(config.checkpoint)
    if config.artifact is not None:
        return load_artifact_model(config.artifact, config.image_size)
    assert config.backbone is not None  # the config validator demands one of the three
    latency_only = config.protocols == ["latency"]
    try:
        return load_registry_model(
            config.backbone, pretrained=config.pretrained, weights=config.weights, seed=config.seed
        )
    except WeightsNotFoundError:
        if not latency_only:
            raise
    # Latency does not depend on the weights' values: a baseline whose weights are not here is still timed.
    model = load_registry_model(config.backbone, pretrained=False, weights=None, seed=config.seed)
    model.note = "random weights: latency only"
    return model


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
