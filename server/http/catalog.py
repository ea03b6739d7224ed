"""What can be run: backbones (with parameter counts), datasets, methods, presets and published results.

Everything comes from the library itself, so the dashboard's choices never drift from what the
trainer accepts. The catalog is computed once per process (building the backbones to count their
parameters is the slow part) and then served from memory.
"""

from __future__ import annotations

import functools
import typing
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

import lowdino
from lowdino.config import CONFIG_MODELS
from lowdino.config.base import DatasetName
from lowdino.config.distill import DistillLossName
from lowdino.config.pretrain import MethodName
from lowdino.contract.metrics import DATA_BOUND_WAIT_PERCENT
from server.reporting.references import load_reference_rows
from server.runs.lifecycle import SERVER_OWNED_FIELDS
from server.vocabulary import (
    ACTIVE_STATUSES,
    RESUMABLE_KINDS,
    RESUMABLE_STATUSES,
    RUN_KINDS,
    RUN_STATUSES,
    TRAINING_KINDS,
    RunKind,
    RunStatus,
)

# Shipped with the library (package data), so a wheel or an image offers the same presets as a checkout,
# where configs/ links to this folder.
PACKAGE_PRESETS = Path(lowdino.__file__).resolve().parent / "presets"


def preset_dirs() -> list[Path]:
    """A configs/ folder in the current directory (the user's own recipes), then the packaged presets."""
    seen: list[Path] = []
    for folder in (Path.cwd() / "configs", PACKAGE_PRESETS):
        folder = folder.resolve()
        if folder.is_dir() and folder not in seen:
            seen.append(folder)
    return seen


def _preset_kind(values: dict[str, Any]) -> str:
    """The run kind whose model accepts every key of the preset (pretrain when several do)."""
    # CONFIG_MODELS order, pretrain first (no key set fits eval and distill without fitting pretrain).
    for kind, model in CONFIG_MODELS.items():
        if set(values) <= set(model.model_fields):
            return kind
    return next(iter(CONFIG_MODELS))


def _purpose(path: Path) -> str:
    """The first sentence of the preset's header comment: what it is for, shown on its preset card."""
    lines: list[str] = []
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text.startswith("#") or (lines and not text.lstrip("#").strip()):
            break
        if text.lstrip("#").strip():
            lines.append(text.lstrip("#").strip())
    paragraph = " ".join(lines)
    end = paragraph.find(". ")
    return paragraph[: end + 1] if end >= 0 else paragraph[:200]


def load_presets() -> list[dict[str, Any]]:
    presets: list[dict[str, Any]] = []
    names: set[str] = set()
    for folder in preset_dirs():
        for path in sorted(folder.glob("*.yaml")):
            if path.stem in names:
                continue
            try:
                values = yaml.safe_load(path.read_text()) or {}
            except (OSError, yaml.YAMLError):
                continue  # a broken preset file must not take the catalog down
            if not isinstance(values, dict):
                continue
            values = {str(key).replace("-", "_"): value for key, value in values.items()}
            names.add(path.stem)
            presets.append(
                {
                    "name": path.stem,
                    "kind": _preset_kind(values),
                    "description": _purpose(path),
                    "config": values,
                }
            )
    return presets


def load_backbones() -> list[dict[str, Any]]:
    from lowdino.backbones import list_backbones

    return [asdict(info) for info in list_backbones()]


def _in_lifecycle_order(statuses: frozenset[RunStatus]) -> list[RunStatus]:
    return [status for status in RUN_STATUSES if status in statuses]


@functools.lru_cache(maxsize=1)
def catalog() -> dict[str, Any]:
    return {
        "backbones": load_backbones(),
        "datasets": list(typing.get_args(DatasetName)),
        "methods": {
            RunKind.PRETRAIN: list(typing.get_args(MethodName)),
            RunKind.DISTILL: list(typing.get_args(DistillLossName)),
        },
        "kinds": list(RUN_KINDS),
        "statuses": list(RUN_STATUSES),
        "active_statuses": _in_lifecycle_order(ACTIVE_STATUSES),
        "resumable_statuses": _in_lifecycle_order(RESUMABLE_STATUSES),
        "training_kinds": list(TRAINING_KINDS),
        "resumable_kinds": list(RESUMABLE_KINDS),
        "server_owned_fields": list(SERVER_OWNED_FIELDS),
        "presets": load_presets(),
        "references": load_reference_rows(),
        "data_bound_wait_percent": DATA_BOUND_WAIT_PERCENT,
    }
