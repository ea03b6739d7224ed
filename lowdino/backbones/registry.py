"""Backbone registry in the style of timm: one decorated builder per name, one spec per builder.

A builder returns a bare network whose ``forward(x)`` maps images (B, 3, H, W) to pooled features
(B, D). `create_backbone` adds the attributes the rest of LowDINO relies on (``backbone_name``;
``num_features`` always comes from the network itself, never from a table) and loads weights.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from lowdino.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# A builder takes timm-style keyword arguments (pretrained, pretrained_cfg_overlay) only when the
# spec names a timm model id; builders of our own networks take none.
Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class BackboneSpec:
    """Static facts about one backbone; everything that needs the network is computed from it."""

    name: str
    family: str
    description: str
    builder: Builder = field(repr=False, compare=False)
    input_multiple: int = 1
    # Smallest side for which a batch of two images runs forward in train and eval mode (measured;
    # tests re-measure it). Sizes below the network's total stride still run but see mostly padding.
    min_input_size: int = 1
    default_eval_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    timm_model_id: str | None = None
    pretrained_in_timm: bool = False
    # Applied to a user's weights file before loading (e.g. resampling ViT position embeddings).
    state_dict_filter: Callable[[dict[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def hf_hub_id(self) -> str | None:
        """Hugging Face repository holding timm's pretrained weights, e.g. timm/mobilevit_s.cvnets_in1k."""
        if self.timm_model_id is None or not self.pretrained_in_timm:
            return None
        import timm.models

        cfg = timm.models.get_pretrained_cfg(self.timm_model_id)
        return cfg.hf_hub_id if cfg is not None else None


@dataclass(frozen=True)
class BackboneInfo:
    """One row of the catalog (`lowdino backbones`, REST)."""

    name: str
    family: str
    params: int
    num_features: int
    description: str
    pretrained_available: bool
    input_multiple: int
    min_input_size: int
    default_eval_size: int
    timm_model_id: str | None


_REGISTRY: dict[str, BackboneSpec] = {}


def _timm_has_weights(model_id: str | None) -> bool:
    if model_id is None:
        return False
    import timm.models

    cfg = timm.models.get_pretrained_cfg(model_id)
    return bool(cfg is not None and (cfg.hf_hub_id or cfg.url))


def register_backbone(
    name: str,
    *,
    family: str,
    description: str,
    input_multiple: int = 1,
    min_input_size: int = 1,
    default_eval_size: int = 224,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    timm_model_id: str | None = None,
    state_dict_filter: Callable[[dict[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]] | None = None,
) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder`` under ``name``. Re-registering a name is a programming error."""

    def decorate(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} is registered twice")
        _REGISTRY[name] = BackboneSpec(
            name=name,
            family=family,
            description=description,
            builder=builder,
            input_multiple=input_multiple,
            min_input_size=min_input_size,
            default_eval_size=default_eval_size,
            mean=mean,
            std=std,
            timm_model_id=timm_model_id,
            pretrained_in_timm=_timm_has_weights(timm_model_id),
            state_dict_filter=state_dict_filter,
        )
        return builder

    return decorate


def backbone_names() -> list[str]:
    return list(_REGISTRY)


def get_spec(name: str) -> BackboneSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        valid = ", ".join(_REGISTRY)
        raise ConfigError(f"unknown backbone {name!r}; valid names: {valid}") from None


def check_input_size(name: str, size: int) -> None:
    """Raise `ConfigError` when ``size`` is below the backbone's minimum or not a multiple it needs."""
    spec = get_spec(name)
    multiple = spec.input_multiple
    if size < spec.min_input_size:
        raise ConfigError(
            f"{name} needs image sizes of at least {spec.min_input_size}, got {size}; "
            f"use e.g. {spec.min_input_size} or {spec.default_eval_size}"
        )
    if size % multiple:
        lower = size // multiple * multiple
        if lower < spec.min_input_size:
            lower += multiple
        other = spec.default_eval_size if spec.default_eval_size != lower else lower + multiple
        raise ConfigError(
            f"{name} needs image sizes that are multiples of {multiple}, got {size}; use e.g. {lower} or {other}"
        )


def count_parameters(model: nn.Module) -> int:
    return sum(param.numel() for param in model.parameters())


def _build_on_meta(spec: BackboneSpec) -> nn.Module:
    # Meta tensors have shapes but no storage: counting 25 M parameters costs milliseconds.
    with torch.device("meta"):
        return spec.builder()


@functools.cache
def _catalog() -> tuple[BackboneInfo, ...]:
    rows = []
    for spec in _REGISTRY.values():
        model = _build_on_meta(spec)
        rows.append(
            BackboneInfo(
                name=spec.name,
                family=spec.family,
                params=count_parameters(model),
                num_features=int(model.num_features),  # type: ignore[arg-type]
                description=spec.description,
                pretrained_available=spec.pretrained_in_timm,
                input_multiple=spec.input_multiple,
                min_input_size=spec.min_input_size,
                default_eval_size=spec.default_eval_size,
                timm_model_id=spec.timm_model_id,
            )
        )
    return tuple(rows)


def list_backbones() -> list[BackboneInfo]:
    """Every registered backbone with its parameter count and feature size (computed once, cached)."""
    return list(_catalog())
