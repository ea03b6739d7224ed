"""/api/searches: recipe searches (Optuna, through the queue, on the validation split only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.orm import Session

from lowdino.search import engine
from lowdino.search.config import SearchConfig
from server.campaigns import search_queries, searches
from server.campaigns.search_schemas import (
    ImportancesPublic,
    PromoteCreate,
    PromotePublic,
    SearchCreate,
    SearchesPublic,
    SearchPublic,
    TrialBest,
    TrialPublic,
)
from server.campaigns.study_storage import optuna_storage, study_name
from server.deps import CeleryDep, SessionDep, SettingsDep
from server.metrics.queries import iter_points
from server.schemas import CONFLICT_DESCRIPTION, Message
from server.storage.models import Run, Search, SearchTrial
from server.vocabulary import TrialState

router = APIRouter(prefix="/searches", tags=["searches"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Message, "description": "No search with this id."}
}
INVALID: dict[int | str, dict[str, Any]] = {
    409: {"model": Message, "description": CONFLICT_DESCRIPTION},
    422: {
        "model": Message,
        "description": "Invalid search (the message names the field: space.<option>...).",
    },
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Message, "description": "The search's state does not allow this."}
}
KNN_KEY = "knn_top1"


def _trial_public(session: Session, trial: SearchTrial, run: Run | None) -> TrialPublic:
    duration = None
    if run is not None and run.started_at is not None:
        end = run.finished_at or run.heartbeat_at or run.started_at
        duration = (end - run.started_at).total_seconds()
    points = []
    if trial.run_id is not None:
        points = [
            (step, value)
            for _, step, _, _, value in iter_points(session, run_id=trial.run_id, keys=[KNN_KEY])
        ]
    reported = [
        (step, value) for step, value in points if trial.pruned_step is None or step <= trial.pruned_step
    ]
    return TrialPublic(
        number=trial.number,
        run_id=trial.run_id,
        params=dict(trial.params),
        state=TrialState(trial.state),
        value=trial.value if trial.state == TrialState.COMPLETE else None,
        pruned_step=trial.pruned_step,
        reason=trial.reason,
        run_status=run.status if run is not None else None,  # type: ignore[arg-type]
        steps=run.step if run is not None else None,
        duration_s=duration,
        intermediate=reported,
    )


def search_public(session: Session, row: Search, trials: list[SearchTrial]) -> SearchPublic:
    config = SearchConfig.model_validate(row.search)
    runs = search_queries.runs_by_id(session, run_ids=[t.run_id for t in trials if t.run_id])
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state] = counts.get(trial.state, 0) + 1
    best = searches.best_trial(trials)
    total = config.n_trials
    if config.sampler == "grid":
        total = engine.trial_count(config, searches.checked_space(config, dict(row.config)))
    return SearchPublic(
        id=row.id,
        name=row.name,
        kind=row.kind,  # type: ignore[arg-type]
        state=row.state,  # type: ignore[arg-type]
        error=row.error,
        config=dict(row.config),
        search=dict(row.search),
        tags=list(row.tags or []),
        created_at=row.created_at,
        finished_at=row.finished_at,
        total=total,
        state_counts=counts,
        best=None
        if best is None
        else TrialBest(
            number=best.number, value=float(best.value or 0.0), params=dict(best.params), run_id=best.run_id
        ),
        trials=[_trial_public(session, trial, runs.get(trial.run_id or "")) for trial in trials],
    )


@router.post("", response_model=SearchPublic, status_code=status.HTTP_201_CREATED, responses=INVALID)
def create_search(body: SearchCreate, session: SessionDep, settings: SettingsDep) -> SearchPublic:
    """Validate the base config and the whole space, then create the search; its trials follow within a
    second (the API's search driver asks them and queues their runs)."""
    options = body.model_dump(include=set(SearchConfig.model_fields))
    row = searches.create_search(
        session,
        settings,
        search=SearchConfig.model_validate(options),
        config=body.config,
        name=body.name,
        tags=body.tags,
    )
    return search_public(session, row, [])


@router.get("", response_model=SearchesPublic)
def list_searches(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> SearchesPublic:
    rows, count = search_queries.list_searches(session, limit=limit, offset=offset)
    trials = search_queries.trials_of(session, search_ids=[row.id for row in rows])
    return SearchesPublic(data=[search_public(session, row, trials[row.id]) for row in rows], count=count)


@router.get("/{search_id}", response_model=SearchPublic, responses=NOT_FOUND)
def get_search(search_id: str, session: SessionDep) -> SearchPublic:
    row = search_queries.require_search(session, search_id=search_id)
    return search_public(session, row, search_queries.search_trials(session, search_id=search_id))


@router.post("/{search_id}/stop", response_model=SearchPublic, responses={**NOT_FOUND, **CONFLICT})
def stop_search(search_id: str, session: SessionDep, settings: SettingsDep) -> SearchPublic:
    """Ask no more trials and cancel the active ones."""
    row = searches.stop_search(session, settings, search_id=search_id)
    return search_public(session, row, search_queries.search_trials(session, search_id=search_id))


@router.post(
    "/{search_id}/promote",
    response_model=PromotePublic,
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, **INVALID, 503: {"model": Message}},
)
def promote(
    search_id: str, body: PromoteCreate, session: SessionDep, settings: SettingsDep, celery_app: CeleryDep
) -> PromotePublic:
    """Launch the best trial's recipe (or `trial`'s) at full length, one run per seed, each with a chained
    evaluation: the search's only contact with the test split."""
    runs = searches.promote(
        session,
        celery_app,
        settings,
        search_id=search_id,
        trial_number=body.trial,
        seeds=body.seeds,
        options=body.options,
        evaluate=body.evaluate,
    )
    return PromotePublic(run_ids=[run.id for run in runs])


@router.get(
    "/{search_id}/preset",
    responses={
        **NOT_FOUND,
        **CONFLICT,
        200: {"content": {"application/yaml": {}}, "description": "The preset."},
    },
)
def preset(search_id: str, session: SessionDep, trial: Annotated[int | None, Query(ge=0)] = None) -> Response:
    """The best trial's recipe (or `trial`'s) as a preset YAML whose header says how it was found."""
    text = searches.preset(session, search_id=search_id, trial_number=trial)
    headers = {"Content-Disposition": f'attachment; filename="search-{search_id}.yaml"'}
    return Response(text, media_type="application/yaml; charset=utf-8", headers=headers)


@router.get("/{search_id}/importances", response_model=ImportancesPublic, responses=NOT_FOUND)
def importances(search_id: str, session: SessionDep, settings: SettingsDep) -> ImportancesPublic:
    """How much each parameter explains the completed trials' values (Optuna's importance evaluators)."""
    search_queries.require_search(session, search_id=search_id)
    optuna = engine.optuna_module()
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    name = type(evaluator).__name__
    try:
        study = optuna.load_study(
            study_name=study_name(search_id), storage=optuna_storage(settings.database_url)
        )
    except KeyError:
        return ImportancesPublic(importances={}, evaluator=name, reason="no trial has been asked yet")
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return ImportancesPublic(importances={}, evaluator=name, reason="needs at least two completed trials")
    try:
        values = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError) as exc:  # e.g. every completed trial has the same value
        return ImportancesPublic(importances={}, evaluator=name, reason=str(exc).splitlines()[0])
    return ImportancesPublic(importances={key: float(value) for key, value in values.items()}, evaluator=name)
