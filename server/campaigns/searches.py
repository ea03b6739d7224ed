"""Recipe searches: a space over a base config, trials asked from an Optuna study, each an ordinary run.

Submitting validates everything first (the base config, the search options, the whole space against
the kind's config model, a trial's config with this server's paths) and creates only the search row:
its driver (server.campaigns.search_driver) asks the trials and queues their runs. Stop cancels the
active trials; Promote launches the best trial's recipe at full length with chained test evaluations,
the only runs of a search that ever touch the test split.
"""

from __future__ import annotations

import contextlib
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session

from lowdino.config import CONFIG_MODELS
from lowdino.search import engine
from lowdino.search.config import SearchConfig
from lowdino.search.preset import Provenance, preset_text
from lowdino.search.space import SearchSpace, SpaceError, parse_space
from server.campaigns import search_queries
from server.campaigns.study_storage import optuna_storage, study_name
from server.errors import OptionsConflictError, RunStateError, ServerStateError
from server.runs.lifecycle import cancel_run, check_gpu_capacity, prepare_config, submit_run, validate_config
from server.settings import Settings
from server.storage.models import Run, Search, SearchTrial, new_run_id
from server.vocabulary import SearchState, TrialState

PROMOTED_TAG = "promoted"


def search_tag(search_id: str) -> str:
    return f"search:{search_id}"


def checked_space(search: SearchConfig, base: dict[str, Any]) -> SearchSpace:
    """The parsed space, or a 409 naming `space.<option>` (nothing is created before this passes): the
    document states a space's form, not which options and ranges the kind's model accepts."""
    try:
        space = parse_space(search.space, CONFIG_MODELS[search.kind], base)
        engine.check_sampler(search, space)
    except SpaceError as exc:
        raise OptionsConflictError(str(exc), field_errors={exc.field: exc.reason}) from exc
    return space


def create_search(
    session: Session,
    settings: Settings,
    *,
    search: SearchConfig,
    config: dict[str, Any],
    name: str | None,
    tags: list[str],
) -> Search:
    """Validate the whole search, then create its row (state running); its driver queues the trials."""
    base = validate_config(search.kind, config)
    space = checked_space(search, base)
    # A trial's config as this server would run it (paths, server-owned fields, GPUs): the low corner.
    corner = {param.name: param.corners()[0] for param in space.params}
    trial_config = {**config, **engine.trial_options(search, corner)}
    prepared = prepare_config(
        session, settings, kind=search.kind, config=trial_config, run_id=new_run_id(), merged=True
    )
    check_gpu_capacity(session, settings, prepared)
    engine.optuna_module()  # refuse now, not in the driver, when Optuna is missing
    return search_queries.create_search(
        session,
        search_id=new_run_id(),
        name=name,
        kind=search.kind,
        config=config,
        search=search.model_dump(mode="json"),
        tags=tags,
    )


def search_config(row: Search) -> SearchConfig:
    return SearchConfig.model_validate(row.search)


def stop_search(session: Session, settings: Settings, *, search_id: str) -> Search:
    """running -> stopped: no new trial is asked, the active trials' runs are cancelled."""
    row = search_queries.require_search(session, search_id=search_id)
    if row.state != SearchState.RUNNING:
        raise RunStateError(f"search {search_id} is {row.state}; only a running search can be stopped")
    search_queries.set_search_state(session, search_id=search_id, state=SearchState.STOPPED)
    optuna = engine.optuna_module()
    fail = optuna.trial.TrialState.FAIL
    running = [
        trial
        for trial in search_queries.search_trials(session, search_id=search_id)
        if trial.state == TrialState.RUNNING
    ]
    storage = optuna_storage(settings.database_url)
    study = optuna.load_study(study_name=study_name(search_id), storage=storage) if running else None
    for trial in running:
        if trial.run_id is not None:
            with contextlib.suppress(RunStateError):  # it finished meanwhile: the stop still ends the trial
                cancel_run(session, settings, run_id=trial.run_id)
        if study is not None and not study.get_trials(deepcopy=False)[trial.number].state.is_finished():
            study.tell(trial.number, state=fail)
        search_queries.update_trial(
            session,
            search_id=search_id,
            number=trial.number,
            state=TrialState.FAIL,
            reason="the search was stopped",
        )
    session.expire_all()
    return search_queries.require_search(session, search_id=search_id)


def best_trial(trials: list[SearchTrial]) -> SearchTrial | None:
    """The completed trial with the highest validation kNN; pruned trials never count."""
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE and trial.value is not None]
    return max(complete, key=lambda trial: trial.value or 0.0) if complete else None


def chosen_trial(session: Session, row: Search, number: int | None) -> SearchTrial:
    trials = search_queries.search_trials(session, search_id=row.id)
    if number is None:
        best = best_trial(trials)
        if best is None:
            raise RunStateError(f"search {row.id} has no completed trial yet; wait for one, then promote it")
        return best
    for trial in trials:
        if trial.number == number and trial.state == TrialState.COMPLETE:
            return trial
    message = f"search {row.id} has no completed trial {number}; pick one from GET /api/searches/{row.id}"
    raise ServerStateError(message, field_errors={"trial": message})


def promote(
    session: Session,
    celery_app: Celery,
    settings: Settings,
    *,
    search_id: str,
    trial_number: int | None,
    seeds: list[int],
    options: dict[str, Any],
    evaluate: dict[str, Any],
) -> list[Run]:
    """Full-length runs of a trial's recipe (the best by default), one per seed, each with a chained
    evaluation: the test split is measured here, once the search is over, and nowhere before."""
    row = search_queries.require_search(session, search_id=search_id)
    trial = chosen_trial(session, row, trial_number)
    recipe = {**engine.preset_options(dict(row.config), dict(trial.params)), **options}
    name = row.name or f"search {row.id}"
    runs = []
    for seed in seeds:
        runs.append(
            submit_run(
                session,
                celery_app,
                settings,
                kind=row.kind,
                config={**recipe, "seed": seed},
                name=f"{name} · trial {trial.number} · seed {seed}",
                tags=[*row.tags, search_tag(row.id), PROMOTED_TAG],
                evaluate=evaluate,
                merged=True,
            )
        )
    return runs


def preset(session: Session, *, search_id: str, trial_number: int | None) -> str:
    """The trial's recipe (the best by default) as a preset YAML whose header says how it was found."""
    row = search_queries.require_search(session, search_id=search_id)
    trial = chosen_trial(session, row, trial_number)
    trials = search_queries.search_trials(session, search_id=search_id)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    found = Provenance(
        search=f"{row.id}" + (f" ({row.name})" if row.name else ""),
        trial=trial.number,
        trials=len(finished),
        pruned=sum(t.state == TrialState.PRUNED for t in finished),
        value=float(trial.value or 0.0),
        config=search_config(row),
    )
    options = engine.preset_options(dict(row.config), dict(trial.params))
    return preset_text(CONFIG_MODELS[row.kind], options, found)
