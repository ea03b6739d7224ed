"""Loading backbone weights: a user's state-dict file, or timm's weights from the local HF cache.

Nothing here touches the network. Pretrained weights are looked up in the Hugging Face cache on
disk and, when absent, the user is told exactly how to put them there.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lowdino.backbones.registry import BackboneSpec
from lowdino.errors import CheckpointError, WeightsNotFoundError

# Checked in this order: a DINO checkpoint holds both networks and the teacher is the one evaluated.
WRAPPER_KEYS = ("state_dict", "model", "teacher", "student", "backbone")
HEAD_PREFIXES = ("head.", "fc.", "classifier.", "head_dist.")
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def hf_hub_cache_dir() -> Path:
    """The hub cache directory huggingface_hub would use, resolved from the environment *now*.

    huggingface_hub freezes its constants at import time; resolving here keeps HF_HOME set later
    (by tests or a wrapper script) effective.
    """
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "huggingface" / "hub"


def find_cached_weights(spec: BackboneSpec) -> Path | None:
    """Path of the backbone's timm weights in the local HF cache, or None."""
    hub_id = spec.hf_hub_id
    if hub_id is None:
        return None
    from huggingface_hub import try_to_load_from_cache

    cache_dir = hf_hub_cache_dir()
    for filename in HF_WEIGHT_FILES:
        found = try_to_load_from_cache(hub_id, filename, cache_dir=str(cache_dir))
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


@contextlib.contextmanager
def _hf_offline() -> Iterator[None]:
    """HF_HUB_OFFLINE=1 for the duration, so a stray hub call fails fast instead of hanging."""
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


def build_from_hf_cache(spec: BackboneSpec) -> nn.Module:
    """Build ``spec`` with timm's pretrained weights taken from the local HF cache only."""
    if not spec.pretrained_in_timm or spec.timm_model_id is None:
        raise WeightsNotFoundError(
            f"{spec.name} has no pretrained weights in timm; pass --weights FILE (a state dict for "
            f"{spec.name}) or drop --pretrained"
        )
    path = find_cached_weights(spec)
    if path is None:
        raise WeightsNotFoundError(
            f"pretrained weights for {spec.name} ({spec.hf_hub_id}) are not in the local Hugging Face "
            f"cache {hf_hub_cache_dir()}; pass --weights FILE, or download them once on a machine with "
            f"network: python -c \"import timm; timm.create_model('{spec.timm_model_id}', pretrained=True)\" "
            "and copy its HF cache (~/.cache/huggingface) to this machine (or point HF_HOME at it)"
        )
    with _hf_offline():
        # timm's own loader handles its checkpoints (filters, position-embedding resampling) and
        # drops the classifier since the builder asks for num_classes=0.
        return spec.builder(pretrained=True, pretrained_cfg_overlay={"file": str(path)})


def read_state_dict_file(path: str | Path) -> dict[str, Any]:
    """Load a .safetensors or torch file of tensors (never unpickles arbitrary objects)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist; pass an existing file to --weights")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path), device="cpu"))
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"weights file {path} is not a readable state dict ({exc.__class__.__name__}: only tensors "
            "and plain containers are loaded, never pickled objects); re-save just the weights with "
            "torch.save(model.state_dict(), FILE) or pass a .safetensors file"
        ) from exc
    if not isinstance(loaded, Mapping):
        raise CheckpointError(
            f"weights file {path} holds a {type(loaded).__name__}, not a state dict; save model.state_dict()"
        )
    return dict(loaded)


def extract_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The backbone's tensors from a raw state dict or a wrapped training checkpoint.

    Wrappers ('state_dict', 'model', 'teacher', 'student', 'backbone') are unwrapped until tensors
    appear; 'module.' / '_orig_mod.' (DDP / torch.compile) prefixes are stripped; when some keys
    carry 'backbone.' (a DINO wrapper holding backbone + head) only those are kept.
    """
    current: Mapping[str, Any] = checkpoint
    while not any(isinstance(value, torch.Tensor) for value in current.values()):
        inner = next((current[key] for key in WRAPPER_KEYS if isinstance(current.get(key), Mapping)), None)
        if inner is None:
            break
        current = inner
    tensors = {key: value for key, value in current.items() if isinstance(value, torch.Tensor)}
    for prefix in ("module.", "_orig_mod."):
        tensors = {key.removeprefix(prefix): value for key, value in tensors.items()}
    if any(key.startswith("backbone.") for key in tensors):
        tensors = {
            key.removeprefix("backbone."): value
            for key, value in tensors.items()
            if key.startswith("backbone.")
        }
    return tensors


def _classifier_prefixes(model: nn.Module) -> tuple[str, ...]:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    classifier = cfg.get("classifier") if isinstance(cfg, Mapping) else None
    names = classifier if isinstance(classifier, list | tuple) else [classifier] if classifier else []
    return (*HEAD_PREFIXES, *(f"{name}." for name in names))


def _first(keys: list[str], count: int = 3) -> str:
    shown = ", ".join(keys[:count])
    return shown + (f" (+{len(keys) - count} more)" if len(keys) > count else "")


def load_backbone_state(model: nn.Module, state: Mapping[str, torch.Tensor], name: str, source: str) -> None:
    """Strictly load ``state`` into ``model``, dropping classifier / head keys the backbone lacks."""
    expected = model.state_dict()
    head = _classifier_prefixes(model)
    state = {key: value for key, value in state.items() if key in expected or not key.startswith(head)}
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {_first(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_first(unexpected)}")
        raise CheckpointError(
            f"{source} does not fit backbone {name}: {'; '.join(parts)}; pass weights saved from {name}"
        )
    wrong = [key for key, value in state.items() if tuple(value.shape) != tuple(expected[key].shape)]
    if wrong:
        key = wrong[0]
        raise CheckpointError(
            f"{source} does not fit backbone {name}: {key} has shape {tuple(state[key].shape)}, expected "
            f"{tuple(expected[key].shape)}; pass weights saved from {name}"
        )
    model.load_state_dict(state, strict=True)


def load_weights_file(model: nn.Module, path: str | Path, spec: BackboneSpec) -> None:
    """Load a user's weights file into ``model`` (built from ``spec``)."""
    state = extract_state_dict(read_state_dict_file(path))
    if not state:
        raise CheckpointError(f"weights file {path} holds no tensors; pass a state dict for {spec.name}")
    if spec.state_dict_filter is not None:
        state = spec.state_dict_filter(state, model)
    load_backbone_state(model, state, spec.name, f"weights file {path}")
