"""The service's vocabulary: run statuses, run kinds and the sets of them that rules name.

Every module of `server/` and `worker/` names a status or a kind through these members, never as a bare
string, and `/api/catalog` publishes the sets the dashboard needs, so no page declares its own copy.
"""

from __future__ import annotations

from enum import StrEnum

from lowdino.config import CONFIG_MODELS, RunKind


class RunStatus(StrEnum):
    """Where a run is in its life; the one list the API, the worker and the dashboard use.

    queued -> running -> completed | failed | cancelled | interrupted (worker lost or shut down) | pruned
    (a search's pruner stopped the trial early, through the cancel path; its `error` says at which step
    and why); failed, cancelled and interrupted runs can be resumed (-> queued again), from their last
    checkpoint when they have one. A pruned run is finished for good: its search has moved on. Statuses are plain strings in the database (no constraint names them), so a new
    status is a member here, plus the sets below it belongs to.
    """

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    PRUNED = "pruned"


RUN_STATUSES: tuple[RunStatus, ...] = tuple(RunStatus)
ACTIVE_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
FINISHED_STATUSES = frozenset(set(RunStatus) - ACTIVE_STATUSES)
# The one resume rule: the lifecycle, the API and the Run page's "Resume" all follow it.
RESUMABLE_STATUSES = frozenset({RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.INTERRUPTED})

RUN_KINDS: tuple[RunKind, ...] = tuple(RunKind)
# Kinds that train a backbone and leave a checkpoint: what an `evaluate` block chains on and what the
# report's rows are made of (their evaluations are the cells). eval and export only read a model.
TRAINING_KINDS: tuple[RunKind, ...] = (RunKind.PRETRAIN, RunKind.DISTILL)
# Kinds that continue from their checkpoint on resume (their config model has `resume`); the others
# (eval, export) are cloned to run again.
RESUMABLE_KINDS: tuple[RunKind, ...] = tuple(
    kind for kind in RUN_KINDS if "resume" in CONFIG_MODELS[kind].model_fields
)


class SearchState(StrEnum):
    """Where a recipe search is: running (its driver asks and follows trials), stopped by a user
    (POST /api/searches/{id}/stop: its active trials were cancelled), or done (every trial finished)."""

    RUNNING = "running"
    STOPPED = "stopped"
    DONE = "done"


class TrialState(StrEnum):
    """A search trial's state, as its Optuna study records it (running until its run finishes)."""

    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAIL = "fail"


class EventType(StrEnum):
    """What an SSE event carries: a metric record, a status change, or a line of the run's log."""

    METRIC = "metric"
    STATUS = "status"
    LOG = "log"


__all__ = [
    "ACTIVE_STATUSES",
    "FINISHED_STATUSES",
    "RESUMABLE_KINDS",
    "RESUMABLE_STATUSES",
    "RUN_KINDS",
    "RUN_STATUSES",
    "TRAINING_KINDS",
    "EventType",
    "RunKind",
    "RunStatus",
    "SearchState",
    "TrialState",
]
