"""What the run endpoints do: validate and submit, cancel, resume, clone, delete.

Kept apart from the HTTP layer so that the rules (which states allow what, where files live) read
in one place and are testable without a request.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import Celery
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from lowdino.config import CONFIG_MODELS
from lowdino.config.base import OPTIONS_CONFLICT
from lowdino.config.loading import describe_validation_error, validation_problems
from lowdino.contract.rundir import RunDir
from server.errors import (
    BrokerUnavailableError,
    InvalidRequestError,
    OptionsConflictError,
    RunStateError,
    ServerStateError,
)
from server.runs import queries as run_queries
from server.runs.paths import owned_run_dir, resolve_config_paths
from server.settings import Settings
from server.storage.models import Run, new_run_id
from server.vocabulary import RESUMABLE_KINDS, RESUMABLE_STATUSES, TRAINING_KINDS, RunKind, RunStatus
from server.workers.broker import send_run
from server.workers.liveness import gpu_capacity_refusal
from server.workers.queues import gpus_needed, queue_for

# Config fields the server owns: clients may not set them on a new run (an export's one-off `output`
# file too: a REST export writes its artifact into its run directory).
SERVER_OWNED_FIELDS = ("output_dir", "resume", "output")
# The eval fields a chain sets itself.
CHAIN_OWNED_FIELDS = ("checkpoint", "backbone", "pretrained", "weights", *SERVER_OWNED_FIELDS)
# Eval options a chain takes from its training run when the evaluate block leaves them out.
INHERITED_FIELDS = ("dataset", "dataset_name", "data_path", "synthetic_size", "device")


def strict_validate(kind: str, config: dict[str, Any]) -> BaseModel:
    """The kind's model from a config parsed from JSON, in pydantic's strict mode: a value of the wrong JSON
    type ("5" for an integer, 1 for a boolean) is refused as the published JSON schema says, instead of
    being coerced; the text forms that the schema declares (e.g. "0.1,0.3") are still parsed. (The
    models have only JSON types, so strict Python mode is strict JSON mode without a re-encoding.)"""
    return CONFIG_MODELS[kind].model_validate(_integral_floats_as_ints(config), strict=True)


def _integral_floats_as_ints(value: Any) -> Any:
    """5.0 as 5: JSON Schema's integers include it, and strict pydantic would refuse it for an int (a
    float option takes the int all the same)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    return value


def _refusal_class(exc: ValidationError, *, merged: bool) -> type[InvalidRequestError]:
    """409 when only rules between options failed that the API schema cannot state (every rule of a
    config merged from parts, comparisons of two values in any config); else 422."""
    errors = exc.errors()
    between = all(not error["loc"] for error in errors)
    if between and (merged or all(error["type"] == OPTIONS_CONFLICT for error in errors)):
        return OptionsConflictError
    return InvalidRequestError


def validate_config(kind: str, config: dict[str, Any], *, merged: bool = False) -> dict[str, Any]:
    """The kind's pydantic model applied to `config` (defaults filled), as JSON; 422 naming the field.

    `merged`: the config was merged from parts that the API schema states one by one (a sweep's base,
    grid and overrides; clone or study overrides), so a rule between options is the parts' conflict (409).
    """
    try:
        return strict_validate(kind, config).model_dump(mode="json")
    except ValidationError as exc:
        raise _refusal_class(exc, merged=merged)(
            f"invalid {kind} config: {describe_validation_error(exc)}",
            field_errors=dict(validation_problems(exc)),
        ) from exc


def check_evaluate_block(
    kind: str, evaluate: dict[str, Any] | None, config: dict[str, Any]
) -> dict[str, Any] | None:
    """The eval options a chain will run with (given ones, the rest inherited from the training config).

    Validated now against the eval model with a stand-in checkpoint, so a chain cannot fail later on
    an option that was wrong from the start; 422 naming `evaluate.<field>`.
    """
    if evaluate is None:
        return None
    if kind not in TRAINING_KINDS:
        raise InvalidRequestError(
            f"evaluate: only {' and '.join(TRAINING_KINDS)} runs produce a checkpoint to evaluate; "
            f"submit the {kind} run without it",
            field_errors={"evaluate": f"not allowed on {kind} runs"},
        )
    for field in CHAIN_OWNED_FIELDS:
        if field in evaluate:
            message = "is set by the chain (the training run's final checkpoint); leave it out"
            raise InvalidRequestError(
                f"evaluate.{field}: {message}", field_errors={f"evaluate.{field}": message}
            )
    block = {
        field: config[field] for field in INHERITED_FIELDS if field in config and config[field] is not None
    }
    block.update(evaluate)
    try:
        strict_validate(RunKind.EVAL, {**block, "checkpoint": "the-training-run"})
    except ValidationError as exc:
        problems = {f"evaluate.{field}": message for field, message in validation_problems(exc)}
        raise _refusal_class(exc, merged=True)(
            f"invalid evaluate block: {describe_validation_error(exc)}", field_errors=problems
        ) from exc
    return block


def _run_dir_lookup(session: Session, settings: Settings) -> Callable[[str], Path | None]:
    def run_dir_of(value: str) -> Path | None:
        if len(value) > 32 or "/" in value:
            return None
        run = run_queries.get_run(session, run_id=value)
        return owned_run_dir(settings, run.output_dir) if run is not None else None

    return run_dir_of


def prepare_config(
    session: Session,
    settings: Settings,
    *,
    kind: str,
    config: dict[str, Any],
    run_id: str,
    merged: bool = False,
) -> dict[str, Any]:
    """Validated config with checked absolute paths and the server-chosen run directory (`merged`: see
    validate_config)."""
    for field in SERVER_OWNED_FIELDS:
        if field in config:
            fix = (
                "use POST /api/runs/{id}/resume on the run to continue"
                if field == "resume"
                else "leave it out (the run writes into its own directory)"
            )
            raise InvalidRequestError.for_field(field, f"is set by the server for REST runs; {fix}")
    validated = validate_config(kind, config, merged=merged)
    validated = resolve_config_paths(validated, settings, run_dir_of=_run_dir_lookup(session, settings))
    validated["output_dir"] = str(settings.run_dir(run_id))
    return validated


def enqueue_run(session: Session, celery_app: Celery, run: Run) -> Run:
    """Publish the run's task; if the broker is down, the run fails with that reason (then 503)."""
    try:
        send_run(celery_app, run_id=run.id, queue=run.queue or queue_for(run.kind, run.config))
    except BrokerUnavailableError as exc:
        run_queries.update_run_status(session, run_id=run.id, status=RunStatus.FAILED, error=str(exc))
        raise
    return run


def check_gpu_capacity(session: Session, settings: Settings, prepared: dict[str, Any]) -> None:
    """409 when live workers exist and none has the GPUs the run asks for: queued, it would wait forever."""
    refusal = gpu_capacity_refusal(session, settings, gpus_needed(prepared))
    if refusal is not None:
        raise ServerStateError.for_field("device_ids" if prepared.get("device_ids") else "device", refusal)


def submit_run(
    session: Session,
    celery_app: Celery,
    settings: Settings,
    *,
    kind: str,
    config: dict[str, Any],
    name: str | None = None,
    tags: list[str] | None = None,
    parent_id: str | None = None,
    evaluate: dict[str, Any] | None = None,
    merged: bool = False,
) -> Run:
    """Validate, create the queued row and its run directory, and send "lowdino.run" to its queue.

    An export's `parent_id` is the run its `source` names, if any.
    `evaluate` (pretrain / distill only): eval options to run on the final checkpoint once the run
    completes (server.runs.chains queues it). Refused (422) when live workers exist and none has the GPUs the
    run asks for (server.workers.queues).
    """
    run_id = new_run_id()
    prepared = prepare_config(session, settings, kind=kind, config=config, run_id=run_id, merged=merged)
    check_gpu_capacity(session, settings, prepared)
    evaluate = check_evaluate_block(kind, evaluate, prepared)
    if kind == RunKind.EXPORT:
        # An export's parent is the run it exports (its clones' too), so that run's exports are
        # GET /api/runs?parent=<id> and the export's page links back to it.
        named = run_queries.run_of_path(session, str(prepared.get("source") or ""))
        parent_id = named.id if named is not None else None
    if evaluate is not None:  # paths checked now too: a chain must not fail on a path refused later
        evaluate = resolve_config_paths(evaluate, settings)
    settings.run_dir(run_id).mkdir(parents=True, exist_ok=True)
    run = run_queries.create_run(
        session,
        kind=kind,
        config=prepared,
        name=name,
        tags=list(dict.fromkeys(tags or [])),
        run_id=run_id,
        output_dir=prepared["output_dir"],
        queue=queue_for(kind, prepared),
        parent_id=parent_id,
        evaluate=evaluate,
    )
    return enqueue_run(session, celery_app, run)


def cancel_run(session: Session, settings: Settings, *, run_id: str) -> Run:
    """queued -> cancelled now; running -> STOP file + cancel_requested (the worker finishes the job)."""
    run = run_queries.require_run(session, run_id=run_id)
    if run.status == RunStatus.QUEUED:
        cancelled = run_queries.transition_run(
            session,
            run_id=run_id,
            from_statuses=(RunStatus.QUEUED,),
            status=RunStatus.CANCELLED,
            error="cancelled before it started",
        )
        if cancelled is not None:
            return cancelled
        run = run_queries.require_run(
            session, run_id=run_id
        )  # a worker claimed it meanwhile: cancel the running run
        session.refresh(run)
    if run.status == RunStatus.RUNNING:
        run_dir = owned_run_dir(settings, run.output_dir)
        if run_dir is not None:
            RunDir(run_dir).request_stop()
        return run_queries.set_cancel_requested(session, run_id=run_id)
    raise RunStateError(f"run {run_id} is {run.status}; only queued or running runs can be cancelled")


def prune_run(session: Session, settings: Settings, *, run_id: str, reason: str) -> Run | None:
    """A search's pruner stops the run: queued -> pruned now; running -> the cancel path (STOP file,
    cancel_requested) with `prune_reason`, and the worker ends it pruned. None when it already finished."""
    run = run_queries.require_run(session, run_id=run_id)
    if run.status == RunStatus.QUEUED:
        pruned = run_queries.transition_run(
            session, run_id=run_id, from_statuses=(RunStatus.QUEUED,), status=RunStatus.PRUNED, error=reason
        )
        if pruned is not None:
            return pruned
        run = run_queries.require_run(session, run_id=run_id)
        session.refresh(run)
    if run.status != RunStatus.RUNNING:
        return None
    run_dir = owned_run_dir(settings, run.output_dir)
    if run_dir is not None:
        RunDir(run_dir).request_stop()
    return run_queries.set_cancel_requested(session, run_id=run_id, prune_reason=reason)


def resume_run(session: Session, celery_app: Celery, settings: Settings, *, run_id: str) -> Run:
    """failed / cancelled / interrupted -> queued again with resume=True in the same directory: from its
    checkpoint, or from step 0 when it stopped before writing one."""
    run = run_queries.require_run(session, run_id=run_id)
    if run.status not in RESUMABLE_STATUSES:
        if run.status == RunStatus.COMPLETED:
            raise RunStateError(
                f"run {run_id} already completed; clone it (POST .../clone) to train again or longer"
            )
        raise RunStateError(f"run {run_id} is {run.status}; only a stopped run can be resumed")
    if run.kind not in RESUMABLE_KINDS:
        raise RunStateError(f"{run.kind} runs cannot be resumed; clone run {run_id} to run it again")
    run_dir = owned_run_dir(settings, run.output_dir)
    if run_dir is None:
        raise RunStateError(
            f"run {run_id} has no run directory of this server to resume in; clone it (POST .../clone)"
        )
    files = RunDir(run_dir)
    files.stop_request.unlink(missing_ok=True)  # else the resumed trainer would stop at once
    # Stopped before its first checkpoint: nothing to continue from, so the worker starts it again at
    # step 0 in its own directory (worker.supervisor.prepare_run_dir); the figures of the lost attempt go.
    restart: dict[str, Any] = (
        {} if files.checkpoint.is_file() else {"step": None, "latest_metrics": {}, "best_metrics": {}}
    )
    resumed = run_queries.transition_run(
        session,
        run_id=run_id,
        from_statuses=(RunStatus(run.status),),
        status=RunStatus.QUEUED,
        config={**run.config, "resume": True},
        **restart,
        attempt=run.attempt + 1,
        cancel_requested=False,
        error=None,
        exit_code=None,
        finished_at=None,
        heartbeat_at=None,
        worker_name=None,
        eta_seconds=None,
    )
    if resumed is None:
        raise RunStateError(f"run {run_id} changed state meanwhile; fetch it and try again")
    return enqueue_run(session, celery_app, resumed)


def _invalid_options(kind: str, options: dict[str, Any]) -> list[str]:
    """The options that are not valid for `kind` on their own (rules between options aside): what the
    `<Model>Options` schema of the API document refuses."""
    try:
        strict_validate(kind, options)
    except ValidationError as exc:
        # A required option left out is not the options' fault: they are a partial set over the original.
        wrong = [error for error in exc.errors() if error["loc"] and error["type"] != "missing"]
        return list(dict.fromkeys(str(error["loc"][0]) for error in wrong))
    return []


def clone_run(
    session: Session,
    celery_app: Celery,
    settings: Settings,
    *,
    run_id: str,
    overrides: dict[str, Any],
    name: str | None = None,
    tags: list[str] | None = None,
) -> Run:
    """A new queued run with the original's config updated by `overrides` (parent_id = original)."""
    parent = run_queries.require_run(session, run_id=run_id)
    invalid = _invalid_options(parent.kind, overrides)
    others = [kind for kind in CONFIG_MODELS if kind != parent.kind and not _invalid_options(kind, overrides)]
    if invalid and others:  # the document allows every kind's options: the original's kind is its state
        message = f"run {parent.id} is a {parent.kind} run; this is an option of {' or '.join(others)} runs"
        raise ServerStateError(
            f"config.{invalid[0]}: {message}", field_errors=dict.fromkeys(invalid, message)
        )
    config = {key: value for key, value in parent.config.items() if key not in SERVER_OWNED_FIELDS}
    config.update(overrides)
    return submit_run(
        session,
        celery_app,
        settings,
        kind=parent.kind,
        config=config,
        name=name if name is not None else f"{parent.name or parent.id} (copy)",
        tags=tags if tags is not None else list(parent.tags or []),
        parent_id=parent.id,
        merged=True,
    )


def delete_run(session: Session, settings: Settings, *, run_id: str) -> None:
    """Delete a run that is not running, with its run directory (only if that lies inside runs_dir)."""
    run = run_queries.require_run(session, run_id=run_id)
    if run.status == RunStatus.RUNNING:
        raise RunStateError(f"run {run_id} is running; cancel it first (POST .../cancel), then delete it")
    if (
        run.status == RunStatus.QUEUED
        and run_queries.transition_run(
            session,
            run_id=run_id,
            from_statuses=(RunStatus.QUEUED,),
            status=RunStatus.CANCELLED,
            error="deleted",
        )
        is None
    ):
        # A worker claimed it between our read and the update.
        raise RunStateError(f"run {run_id} started meanwhile; cancel it first, then delete it")
    run_dir = owned_run_dir(settings, run.output_dir)
    run_queries.delete_run(session, run_id=run_id)
    if run_dir is not None and run_dir.is_dir():
        shutil.rmtree(run_dir, ignore_errors=True)
