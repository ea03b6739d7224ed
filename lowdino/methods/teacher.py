"""The frozen teacher of a distillation: a registry backbone, or the evaluated backbone of a run."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from lowdino.backbones import create_backbone
from lowdino.config.distill import DistillConfig
from lowdino.errors import ConfigError


def is_checkpoint_path(teacher: str) -> bool:
    """True when `teacher` names a run checkpoint (or its run directory) rather than a registry backbone."""
    return teacher.endswith((".pth", ".pt")) or Path(teacher).is_dir()


def build_teacher(config: DistillConfig) -> nn.Module:
    """A registry backbone (pretrained weights by default) or the evaluated backbone of a run checkpoint."""
    if is_checkpoint_path(config.teacher):
        # Imported here: only a checkpoint teacher needs the evaluation package.
        from lowdino.eval.model import load_checkpoint_model

        return load_checkpoint_model(config.teacher).backbone
    if not config.teacher_pretrained and config.teacher_weights is None:
        raise ConfigError(
            f"teacher {config.teacher} would be randomly initialised; pass --teacher-pretrained (timm cache) "
            "or --teacher-weights FILE"
        )
    return create_backbone(config.teacher, pretrained=True, weights=config.teacher_weights)
