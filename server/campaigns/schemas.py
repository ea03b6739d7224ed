"""Request and response bodies of /api/sweeps and /api/studies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from server.runs.schemas import EVALUATE_DESCRIPTION
from server.schemas import StrictBody, Tag
from server.vocabulary import RunKind

SweepValues = Annotated[list[Any], Field(min_length=1, max_length=1000)]


class SweepCreate(StrictBody):
    """runs = overrides x product(grid values), each applied to `config`; validated all before any run."""

    kind: RunKind = Field(description="The kind of every run of the sweep.")
    name: str | None = Field(None, max_length=200, description="Prefix of every run's name.")
    tags: list[Tag] = Field(default_factory=list, max_length=20, description="Added to every run.")
    config: dict[str, Any] = Field(default_factory=dict, description="The base config every run starts from.")
    grid: dict[str, SweepValues] | None = Field(
        None,
        max_length=20,
        description='Option -> values; every combination is one run, e.g. {"backbone": ["a", "b"], "seed": [0, 1]}.',
    )
    overrides: list[dict[str, Any]] | None = Field(
        None, max_length=1000, description="Explicit option sets, one run each (times the grid, if both)."
    )
    evaluate: dict[str, Any] | None = Field(None, description=EVALUATE_DESCRIPTION)


class StudyCreate(StrictBody):
    study: str = Field(
        "reproduce_original_table", max_length=100, description="A study preset (GET /api/studies)."
    )
    scale: str = Field("smoke", max_length=50, description="How long it runs: one of the study's scales.")
    name: str | None = Field(None, max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    pretrain: dict[str, Any] = Field(
        default_factory=dict,
        description="Pretrain options over the study's and the scale's (e.g. dataset, data_path, max_steps).",
    )
    evaluate: dict[str, Any] = Field(
        default_factory=dict, description="Eval options over the study's and the scale's."
    )


class StudyScalePublic(BaseModel):
    name: str
    description: str
    pretrain: dict[str, Any]
    evaluate: dict[str, Any]


class StudyBaselinePublic(BaseModel):
    label: str
    backbone: str
    available: bool = Field(description="Its weights are present here (else the study skips it).")
    reason: str | None = Field(None, description="Why it would be skipped.")


class StudyPublic(BaseModel):
    name: str
    title: str
    description: str
    dataset: str
    backbones: list[str]
    pretrain: dict[str, Any]
    evaluate: dict[str, Any]
    scales: list[StudyScalePublic]
    baselines: list[StudyBaselinePublic]


class StudiesPublic(BaseModel):
    data: list[StudyPublic]


class SweepPublic(BaseModel):
    id: str
    name: str | None
    kind: RunKind
    study: str | None
    config: dict[str, Any]
    grid: dict[str, Any] | None
    overrides: list[dict[str, Any]] | None
    evaluate: dict[str, Any] | None
    tags: list[str]
    skipped: dict[str, str] = Field(description="Rows a study could not run here: model -> reason.")
    created_at: datetime
    run_ids: list[str] = Field(description="Every run of the sweep, chained evaluations included.")
    status_counts: dict[str, int] = Field(description="Runs per status.")
    total: int
    done: bool = Field(
        description="Every run finished and every chained evaluation that is due has finished too."
    )


class SweepsPublic(BaseModel):
    data: list[SweepPublic]
    count: int
