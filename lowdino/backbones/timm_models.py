"""Builders for backbones that timm implements; the registry only adds names and facts."""

from __future__ import annotations

from typing import Any

from torch import nn


def timm_backbone(model_id: str, **model_kwargs: Any) -> Any:
    """A registry builder creating timm model ``model_id`` without classifier (pooled features)."""

    def build(**timm_kwargs: Any) -> nn.Module:
        import timm

        return timm.create_model(model_id, num_classes=0, **model_kwargs, **timm_kwargs)

    return build
