"""`create_backbone`: a registered builder plus its weights, as in timm's `create_model`.

Kept apart from the registry (names and specs) and from weight loading (files and the local Hugging
Face cache), so that each of the three imports only the ones below it: registry <- weights <- factory.
"""

from __future__ import annotations

from torch import nn

from lowdino.backbones import weights as weights_io
from lowdino.backbones.registry import get_spec


def feature_dim(backbone: nn.Module) -> int:
    """The (B, D) feature size D of a backbone made by `create_backbone`, read from the model."""
    return int(backbone.num_features)  # type: ignore[arg-type]  # nn.Module attributes type as Tensor | Module


def create_backbone(name: str, pretrained: bool = False, weights: str | None = None) -> nn.Module:
    """Build backbone ``name``: ``forward(x)`` (B, 3, H, W) -> (B, num_features).

    ``weights`` (a state-dict file) is loaded whenever it is given. Otherwise ``pretrained=True``
    loads timm's weights from the local Hugging Face cache only, and fails loudly when they are not
    there: a silently random network would make every comparison meaningless.
    """
    spec = get_spec(name)
    if weights is not None:
        model = spec.builder()
        weights_io.load_weights_file(model, weights, spec)
    elif pretrained:
        model = weights_io.build_from_hf_cache(spec)
    else:
        model = spec.builder()
    if not hasattr(model, "num_features"):
        raise TypeError(f"backbone builder for {name} returned a module without num_features")
    model.backbone_name = name  # type: ignore[assignment]  # nn.Module's __setattr__ typing is too narrow
    return model
