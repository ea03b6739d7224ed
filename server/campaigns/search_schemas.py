"""Request and response bodies of /api/searches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from lowdino.search.config import SearchConfig, SearchKind
from server.schemas import StrictBody, Tag
from server.vocabulary import RunKind, RunStatus, SearchState, TrialState


class SearchCreate(SearchConfig):
    """A search: its options (SearchConfig, as `lowdino search` takes them) over a base `config`.

    The kind is required here (the CLI defaults it to pretrain): the document states `config` per kind."""

    kind: SearchKind = Field(description="The run kind of every trial.")
    name: str | None = Field(None, max_length=200, description="Prefix of every trial's run name.")
    tags: list[Tag] = Field(default_factory=list, max_length=20, description="Added to every trial's run.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="The base config of every trial (GET /api/schema/{kind})."
    )


class TrialPublic(BaseModel):
    number: int = Field(description="Optuna's trial number (0, 1, ...).")
    run_id: str | None = Field(description="The trial's run (tagged search:<id> and trial:<number>).")
    params: dict[str, Any]
    state: TrialState
    value: float | None = Field(
        description="Validation kNN top-1 at the end of the budget (complete trials)."
    )
    pruned_step: int | None
    reason: str | None = Field(description="Why it was pruned or failed.")
    run_status: RunStatus | None
    steps: int | None = Field(description="Steps its run took.")
    duration_s: float | None
    intermediate: list[tuple[int, float]] = Field(description="(step, validation kNN) reported to the study.")


class TrialBest(BaseModel):
    number: int
    value: float
    params: dict[str, Any]
    run_id: str | None


class SearchPublic(BaseModel):
    id: str
    name: str | None
    kind: RunKind
    state: SearchState
    error: str | None
    config: dict[str, Any] = Field(description="The base config of every trial.")
    search: dict[str, Any] = Field(description="The search's options (SearchConfig).")
    tags: list[str]
    created_at: datetime
    finished_at: datetime | None
    total: int = Field(description="Trials the search runs (n_trials, or a grid's size).")
    state_counts: dict[str, int] = Field(description="Trials per state.")
    best: TrialBest | None = Field(description="The completed trial with the highest validation kNN.")
    trials: list[TrialPublic]


class SearchesPublic(BaseModel):
    data: list[SearchPublic]
    count: int


class PromoteCreate(StrictBody):
    trial: int | None = Field(
        None, ge=0, description="The trial to promote; default: the best completed one."
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0], min_length=1, max_length=10, description="One full run per seed."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options over the trial's recipe for the full runs (e.g. n_epochs, max_steps).",
    )
    evaluate: dict[str, Any] = Field(
        default_factory=dict,
        description="Eval options of each run's chained evaluation (GET /api/schema/eval): the test split's "
        "figure, measured only now.",
    )


class PromotePublic(BaseModel):
    run_ids: list[str]


class ImportancesPublic(BaseModel):
    importances: dict[str, float] = Field(description="Parameter -> importance (they sum to 1).")
    evaluator: str
    reason: str | None = Field(None, description="Why there are none yet.")
