"""Backbone registry: `create_backbone(name, pretrained=False, weights=None)`, `list_backbones()`.

Importing this package registers every family (one module each).
"""

# Registration order is catalog order: small families first, the reference last.
from lowdino.backbones import mobilevit, mobilenetv2, resnet, dinov2  # noqa: F401, I001
from lowdino.backbones.factory import create_backbone, feature_dim
from lowdino.backbones.registry import (
    BackboneInfo,
    BackboneSpec,
    backbone_names,
    check_input_size,
    count_parameters,
    get_spec,
    list_backbones,
    register_backbone,
)
from lowdino.backbones.weights import find_cached_weights, hf_hub_cache_dir


def pretrained_cached(name: str) -> bool:
    """Whether timm's weights for ``name`` are in the local HF cache now (not cached: the cache changes)."""
    return find_cached_weights(get_spec(name)) is not None


__all__ = [
    "BackboneInfo",
    "BackboneSpec",
    "backbone_names",
    "check_input_size",
    "count_parameters",
    "create_backbone",
    "feature_dim",
    "find_cached_weights",
    "get_spec",
    "hf_hub_cache_dir",
    "list_backbones",
    "pretrained_cached",
    "register_backbone",
]
