"""Study presets: a whole experiment as one submission (lowdino/presets/studies/*.yaml).

A study pretrains each backbone of `backbones` from `pretrain` (the same recipe for all), chains an
evaluation of each final checkpoint (`evaluate`), and evaluates `baselines` — published models
measured here under the same protocol — when their weights are present locally. `scales` set how
long it runs: each scale's `pretrain` and `evaluate` options override the base ones.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from lowdino.errors import ConfigError

STUDY_DIR = Path(__file__).resolve().parent.parent / "presets" / "studies"


class StudyScale(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(description="How long it takes and on what hardware, in one line.")
    pretrain: dict[str, Any] = Field(default_factory=dict, description="Overrides of the pretrain options.")
    evaluate: dict[str, Any] = Field(default_factory=dict, description="Overrides of the eval options.")


class StudyBaseline(BaseModel):
    """A model evaluated directly (no pretraining here): registry backbone plus where its weights are."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(description="Row name in the report, matching the published row's model.")
    backbone: str
    pretrained: bool = Field(False, description="Weights from the timm / Hugging Face cache.")
    weights_file: str | None = Field(
        None, description="File name searched for under the data roots (weights not on the hub)."
    )
    download: str | None = Field(None, description="Where a user gets the weights; shown when absent.")
    evaluate: dict[str, Any] = Field(default_factory=dict, description="Eval options for this model only.")


class StudyPreset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    title: str
    description: str
    dataset: str = Field(description="Dataset of the published table the study reproduces.")
    backbones: list[str] = Field(min_length=1)
    pretrain: dict[str, Any]
    evaluate: dict[str, Any]
    scales: dict[str, StudyScale] = Field(min_length=1)
    baselines: list[StudyBaseline] = Field(default_factory=list)

    def pretrain_config(self, scale: str) -> dict[str, Any]:
        return {**self.pretrain, **self.scale(scale).pretrain}

    def evaluate_config(self, scale: str) -> dict[str, Any]:
        return {**self.evaluate, **self.scale(scale).evaluate}

    def scale(self, name: str) -> StudyScale:
        if name not in self.scales:
            raise ConfigError(f"study {self.name} has no scale {name!r}; use one of {', '.join(self.scales)}")
        return self.scales[name]


@cache
def study_presets() -> dict[str, StudyPreset]:
    """Every packaged study preset by name (files are package data, read once)."""
    presets = {}
    for path in sorted(STUDY_DIR.glob("*.yaml")):
        values = yaml.safe_load(path.read_text()) or {}
        presets[path.stem] = StudyPreset.model_validate({"name": path.stem, **values})
    return presets


def get_study(name: str) -> StudyPreset:
    presets = study_presets()
    if name not in presets:
        raise ConfigError(f"no study preset {name!r}; use one of {', '.join(presets) or '(none)'}")
    return presets[name]
