"""`SearchConfig`: the options of a recipe search, shared by `lowdino search` and POST /api/searches.

The objective is fixed to what a search may honestly look at: the kNN monitor's top-1 on the validation
split, maximised. The test split is never an objective; only runs promoted from a search evaluate on it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lowdino.config.base import cli
from lowdino.config.kinds import RunKind

SamplerName = Literal["tpe", "random", "grid", "cmaes"]
PrunerName = Literal["asha", "hyperband", "median", "none"]
ObjectiveName = Literal["knn_top1"]
# The kinds whose runs the kNN monitor measures: the only ones a search can score.
SEARCHABLE_KINDS: tuple[RunKind, ...] = (RunKind.PRETRAIN, RunKind.DISTILL)
SearchKind = Literal[RunKind.PRETRAIN, RunKind.DISTILL]


class SearchConfig(BaseModel):
    """How many trials, how long each, and how to choose and stop them."""

    model_config = ConfigDict(extra="forbid")

    kind: SearchKind = Field(RunKind.PRETRAIN, description="The run kind of every trial.")
    space: dict[str, dict[str, Any]] = Field(
        ...,
        min_length=1,
        max_length=50,
        description='Option -> its range or choices, e.g. {"lr": {"float": [1e-4, 1e-2], "log": true}, '
        '"out_dim": {"choice": [1024, 2048]}, "n_crops": {"int": [2, 8]}}; the other options come from '
        "the base config.",
    )
    first_trials: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=100,
        description="Parameters to try first, in order (e.g. today's recipe as the baseline to beat), each "
        "inside the space; the sampler proposes the trials after them.",
    )
    objective: ObjectiveName = Field(
        "knn_top1",
        description="What is maximised: the kNN monitor's top-1 on the validation split at the end of the "
        "trial's budget. The test split is never an objective.",
    )
    n_trials: int = Field(
        20,
        ge=1,
        le=1000,
        description="Trials to run (a grid stops at its size).",
        json_schema_extra=cli("--trials"),  # `lowdino search --trials N`, the name users type
    )
    max_parallel: int = Field(
        1, ge=1, le=64, description="Trials queued or running at once (the service; the CLI runs one)."
    )
    budget_steps: int = Field(
        ..., ge=1, le=10_000_000, description="Optimiser steps of every trial (its max_steps)."
    )
    trial_minutes: float | None = Field(
        None,
        gt=0,
        le=100_000,
        description="Also stop each trial after this many minutes of training (its run's max_minutes): it "
        "ends completed, scored on the validation kNN measured at that step. budget_steps still sets the "
        "reports and the schedules: pick it so that its reports fall inside the time. Default: no limit.",
    )
    reports: int = Field(
        4,
        ge=1,
        le=100,
        description="Validation-kNN measurements per trial (every budget_steps / reports steps): the "
        "values the pruner compares trials on.",
    )
    sampler: SamplerName = Field(
        "tpe", description="How the next parameters are chosen: tpe, random, grid or cmaes."
    )
    pruner: PrunerName = Field(
        "asha",
        description="How poor trials stop early: asha (successive halving), hyperband, median or none.",
    )
    pruner_startup_trials: int = Field(
        1,
        ge=0,
        le=1000,
        description="The median pruner stops no trial before this many trials have finished.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the sampler (trials keep the base seed).")
    prune_on_collapse: bool = Field(
        False, description="Stop a trial at the first collapse warning of its run (counted as pruned)."
    )

    def budget(self) -> str:
        """The per-trial budget in words: steps, and the time limit when there is one."""
        steps = f"{self.budget_steps} steps"
        return (
            f"{steps} (or {self.trial_minutes:g} minutes if that comes first)"
            if self.trial_minutes
            else steps
        )

    def knn_every_steps(self) -> int:
        return max(1, self.budget_steps // self.reports)
