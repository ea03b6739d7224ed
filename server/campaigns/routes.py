"""/api/sweeps and /api/studies: many runs from one submission, offered as a unit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from starlette.concurrency import run_in_threadpool

from lowdino.config.study import study_presets
from lowdino.errors import ConfigError
from server.campaigns import queries as sweep_queries
from server.campaigns import sweeps
from server.campaigns.queries import RunState
from server.campaigns.schemas import (
    StudiesPublic,
    StudyBaselinePublic,
    StudyCreate,
    StudyPublic,
    StudyScalePublic,
    SweepCreate,
    SweepPublic,
    SweepsPublic,
)
from server.campaigns.studies import STUDY_OWNED_PRETRAIN_FIELDS, baseline_source, submit_study
from server.deps import CeleryDep, SessionDep, SettingsDep
from server.errors import InvalidRequestError
from server.runs.lifecycle import validate_config
from server.schemas import CONFLICT_DESCRIPTION, Message
from server.settings import Settings
from server.storage.models import Sweep
from server.vocabulary import FINISHED_STATUSES

router = APIRouter(tags=["sweeps"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Message, "description": "No sweep with this id."}
}
INVALID: dict[int | str, dict[str, Any]] = {
    409: {"model": Message, "description": CONFLICT_DESCRIPTION},
    422: {
        "model": Message,
        "description": "A run of it is invalid (the message names which, and the field).",
    },
    503: {"model": Message},
}


def sweep_public(sweep: Sweep, runs: list[RunState]) -> SweepPublic:
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    # Done: every run finished, and no completed run still owes its chained evaluation.
    done = bool(runs) and all(run.status in FINISHED_STATUSES and not run.owes_evaluation for run in runs)
    return SweepPublic(
        id=sweep.id,
        name=sweep.name,
        kind=sweep.kind,
        study=sweep.study,
        config=dict(sweep.config or {}),
        grid=sweep.grid,
        overrides=sweep.overrides,
        evaluate=sweep.evaluate,
        tags=list(sweep.tags or []),
        skipped=dict(sweep.skipped or {}),
        created_at=sweep.created_at,
        run_ids=[run.id for run in runs],
        status_counts=counts,
        total=len(runs),
        done=done,
    )


@router.post("/sweeps", response_model=SweepPublic, status_code=status.HTTP_201_CREATED, responses=INVALID)
def create_sweep(
    body: SweepCreate, session: SessionDep, settings: SettingsDep, celery_app: CeleryDep
) -> SweepPublic:
    """Expand the grid / overrides, validate every run, then create and queue them all (or none)."""
    validate_config(body.kind, body.config)  # the base is a valid config by itself (as the schema says)
    grid = {key: list(values) for key, values in (body.grid or {}).items()}
    entries = sweeps.grid_entries(
        body.kind,
        body.config,
        grid=grid,
        overrides=body.overrides,
        evaluate=body.evaluate,
        max_runs=settings.max_sweep_runs,
    )
    sweep, runs = sweeps.create_sweep(
        session,
        celery_app,
        settings,
        kind=body.kind,
        base=body.config,
        entries=entries,
        name=body.name,
        tags=body.tags,
        grid=body.grid,
        overrides=body.overrides,
        evaluate=body.evaluate,
    )
    return sweep_public(sweep, [RunState.of(run) for run in runs])


@router.get("/sweeps", response_model=SweepsPublic)
def list_sweeps(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> SweepsPublic:
    rows, count = sweep_queries.list_sweeps(session, limit=limit, offset=offset)
    states = sweep_queries.sweep_run_states(session, sweep_ids=[sweep.id for sweep in rows])
    data = [sweep_public(sweep, states[sweep.id]) for sweep in rows]
    return SweepsPublic(data=data, count=count)


@router.get("/sweeps/{sweep_id}", response_model=SweepPublic, responses=NOT_FOUND)
def get_sweep(sweep_id: str, session: SessionDep) -> SweepPublic:
    sweep = sweep_queries.require_sweep(session, sweep_id=sweep_id)
    return sweep_public(sweep, sweep_queries.sweep_run_states(session, sweep_ids=[sweep_id])[sweep_id])


@router.post("/sweeps/{sweep_id}/cancel", response_model=SweepPublic, responses=NOT_FOUND)
def cancel_sweep(sweep_id: str, session: SessionDep, settings: SettingsDep) -> SweepPublic:
    """Cancel every queued run of the sweep and ask every running one to stop."""
    sweeps.cancel_sweep(session, settings, sweep_id=sweep_id)
    sweep = sweep_queries.require_sweep(session, sweep_id=sweep_id)
    return sweep_public(sweep, sweep_queries.sweep_run_states(session, sweep_ids=[sweep_id])[sweep_id])


def _study_public(settings: Settings) -> StudiesPublic:
    data = []
    for study in study_presets().values():
        baselines = []
        for baseline in study.baselines:
            source, reason = baseline_source(settings, baseline)
            baselines.append(
                StudyBaselinePublic(
                    label=baseline.label,
                    backbone=baseline.backbone,
                    available=source is not None,
                    reason=reason,
                )
            )
        scales = [
            StudyScalePublic(
                name=name, description=scale.description, pretrain=scale.pretrain, evaluate=scale.evaluate
            )
            for name, scale in study.scales.items()
        ]
        data.append(
            StudyPublic(
                name=study.name,
                title=study.title,
                description=study.description,
                dataset=study.dataset,
                backbones=study.backbones,
                pretrain=study.pretrain,
                evaluate=study.evaluate,
                scales=scales,
                baselines=baselines,
            )
        )
    return StudiesPublic(data=data)


@router.get("/studies", response_model=StudiesPublic)
async def list_studies(settings: SettingsDep) -> StudiesPublic:
    """Study presets, their scales, and which baselines have their weights here."""
    return await run_in_threadpool(_study_public, settings)


@router.post("/studies", response_model=SweepPublic, status_code=status.HTTP_201_CREATED, responses=INVALID)
def create_study(
    body: StudyCreate, session: SessionDep, settings: SettingsDep, celery_app: CeleryDep
) -> SweepPublic:
    """Submit a study preset as one sweep: pretrain runs with chained evaluations, plus baselines."""
    presets = study_presets()
    if body.study not in presets:
        message = f"no study preset {body.study!r}; use one of {', '.join(presets)} (GET /api/studies)"
        raise InvalidRequestError(message, field_errors={"study": message})
    study = presets[body.study]
    for field in STUDY_OWNED_PRETRAIN_FIELDS:
        if field in body.pretrain:
            message = "is set by the study (each of its backbones, the server's run directory); leave it out"
            raise InvalidRequestError(
                f"pretrain.{field}: {message}", field_errors={f"pretrain.{field}": message}
            )
    try:
        study.scale(body.scale)
    except ConfigError as exc:
        raise InvalidRequestError(str(exc), field_errors={"scale": str(exc)}) from exc
    sweep, runs = submit_study(
        session,
        celery_app,
        settings,
        study=study,
        scale=body.scale,
        pretrain_overrides=body.pretrain,
        evaluate_overrides=body.evaluate,
        name=body.name,
        tags=body.tags,
    )
    return sweep_public(sweep, [RunState.of(run) for run in runs])
