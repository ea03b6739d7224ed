"""The driver of running searches: one pass every `search_poll_interval` seconds in every API process.

Each pass, per running search, first takes its lease (a conditional UPDATE on the search row: free,
expired or already ours), so exactly one process drives a search at a time however many API processes
run; the others skip it. The driver then

1. gives a run to any trial the study holds without one (asked by a process that died before it
   recorded the trial): no trial is lost, and none is asked twice;
2. follows each running trial: reports its run's new validation-kNN records (the metrics table, as the
   worker stores them) to the study, prunes it through the cancel path when the pruner says so (the
   worker ends it `pruned`), and tells the study its value (the kNN at the end of its budget) or its
   failure once the run has finished;
3. asks new trials and queues their runs while fewer than max_parallel are active and trials are left;
4. marks the search done when every trial has finished.

Everything it needs lives in the database (the search and trial rows, the runs, the study in Optuna's
tables), so a restarted API process, or another one, continues where the last pass stopped.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from lowdino.config import CONFIG_MODELS
from lowdino.contract.metrics import METRIC_GOALS
from lowdino.search import engine
from lowdino.search.config import SearchConfig
from lowdino.search.space import parse_space
from server.campaigns import search_queries
from server.campaigns.searches import search_config, search_tag
from server.campaigns.study_storage import optuna_storage, study_name
from server.errors import BrokerUnavailableError, InvalidRequestError
from server.metrics.queries import COLLAPSE_KEY, iter_points
from server.runs.lifecycle import enqueue_run, prepare_config, prune_run
from server.settings import Settings
from server.storage.models import Run, Search, SearchTrial, new_run_id, utcnow
from server.vocabulary import FINISHED_STATUSES, RunStatus, SearchState, TrialState
from server.workers.queues import queue_for

log = logging.getLogger("lowdino.server.searches")
KNN_KEY = "knn_top1"
assert KNN_KEY in METRIC_GOALS  # the objective is a metric the trainer declares


def drive_searches(
    factory: sessionmaker[Session], celery_app: Celery, settings: Settings, *, owner: str
) -> None:
    """One pass over every running search this process can lease."""
    with factory() as session:
        search_ids = search_queries.running_search_ids(session)
    for search_id in search_ids:
        with factory() as session:
            now = utcnow()
            until = now + timedelta(seconds=settings.search_lease_s)
            if not search_queries.claim_lease(
                session, search_id=search_id, owner=owner, now=now, until=until
            ):
                continue
            try:
                drive_search(session, celery_app, settings, search_id=search_id)
            except Exception:  # one broken search must not stop the others
                session.rollback()
                log.exception("search %s: driver pass failed; retrying next pass", search_id)


def release(factory: sessionmaker[Session], *, owner: str) -> None:
    """At shutdown: this process drives nothing any more; another takes its searches on its next pass."""
    with factory() as session:
        search_queries.release_leases(session, owner=owner)


def drive_search(session: Session, celery_app: Celery, settings: Settings, *, search_id: str) -> None:
    row = search_queries.require_search(session, search_id=search_id)
    config = search_config(row)
    space = parse_space(config.space, CONFIG_MODELS[row.kind], dict(row.config))
    study = engine.open_study(
        config, space, storage=optuna_storage(settings.database_url), name=study_name(row.id)
    )
    optuna = engine.optuna_module()
    trials = {trial.number: trial for trial in search_queries.search_trials(session, search_id=search_id)}

    for orphan in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if orphan.number not in trials:
            trials[orphan.number] = _start_trial(session, celery_app, settings, row, config, orphan)

    runs = search_queries.runs_by_id(session, run_ids=[t.run_id for t in trials.values() if t.run_id])
    for trial in trials.values():
        if trial.state == TrialState.RUNNING:
            _follow(session, settings, row, config, study, trial, runs.get(trial.run_id or ""))

    total = engine.trial_count(config, space)
    states = [trial.state for trial in search_queries.search_trials(session, search_id=search_id)]
    active = states.count(TrialState.RUNNING)
    session.refresh(row)
    while row.state == SearchState.RUNNING and active < config.max_parallel and len(states) < total:
        _start_trial(session, celery_app, settings, row, config, engine.ask(study, space))
        states.append(TrialState.RUNNING)
        active += 1
    if len(states) >= total and active == 0:
        search_queries.set_search_state(session, search_id=search_id, state=SearchState.DONE)
        log.info("search %s: done, %d trials", search_id, len(states))


def _start_trial(
    session: Session, celery_app: Celery, settings: Settings, row: Search, config: SearchConfig, frozen: Any
) -> SearchTrial:
    """The trial's run, queued (or the trial failed, with the reason, when its config cannot run)."""
    params = dict(frozen.params)
    run_id = new_run_id()
    name = f"{row.name or 'search ' + row.id} · trial {frozen.number}"
    try:
        prepared = prepare_config(
            session,
            settings,
            kind=row.kind,
            config={**row.config, **engine.trial_options(config, params)},
            run_id=run_id,
            merged=True,
        )
    except InvalidRequestError as exc:  # an interior combination the corners did not catch
        study = engine.optuna_module().load_study(
            study_name=study_name(row.id), storage=optuna_storage(settings.database_url)
        )
        study.tell(frozen.number, state=engine.optuna_module().trial.TrialState.FAIL)
        trial, _ = search_queries.add_trial(
            session,
            search_id=row.id,
            number=frozen.number,
            trial_id=frozen._trial_id,
            params=params,
            run=None,
            reason=str(exc),
        )
        return trial
    settings.run_dir(run_id).mkdir(parents=True, exist_ok=True)
    run_row = {
        "run_id": run_id,
        "kind": row.kind,
        "config": prepared,
        "name": name,
        "tags": list(dict.fromkeys([*row.tags, search_tag(row.id), f"trial:{frozen.number}"])),
        "output_dir": prepared["output_dir"],
        "queue": queue_for(row.kind, prepared),
    }
    trial, run = search_queries.add_trial(
        session, search_id=row.id, number=frozen.number, trial_id=frozen._trial_id, params=params, run=run_row
    )
    assert run is not None
    try:
        enqueue_run(session, celery_app, run)
    except BrokerUnavailableError as exc:  # the run is marked failed; the next pass fails the trial
        log.warning("search %s: trial %d not sent: %s", row.id, frozen.number, exc)
    log.info("search %s: trial %d queued as run %s (%s)", row.id, frozen.number, run_id, params)
    return trial


def _records(session: Session, run_id: str) -> dict[int, dict[str, float]]:
    """step -> {knn_top1, collapse_warning} of the run's stored metrics."""
    steps: dict[int, dict[str, float]] = {}
    for key, step, _epoch, _wall, value in iter_points(session, run_id=run_id, keys=[KNN_KEY, COLLAPSE_KEY]):
        steps.setdefault(step, {})[key] = value
    return dict(sorted(steps.items()))


def _follow(
    session: Session,
    settings: Settings,
    row: Search,
    config: SearchConfig,
    study: Any,
    trial: SearchTrial,
    run: Run | None,
) -> None:
    optuna = engine.optuna_module()
    states = optuna.trial.TrialState
    if run is None:  # the run was deleted: the trial cannot finish
        _finish(session, study, trial, TrialState.FAIL, reason="its run was deleted", state=states.FAIL)
        return
    status = RunStatus(run.status)  # read before the metrics: a finished run's records are all stored
    active = status not in FINISHED_STATUSES
    follower = engine.TrialFollower.of(study, trial.trial_id, config, last_step=trial.last_step)
    reason, pruned_at = None, None
    records = _records(session, run.id)
    measured = [values[KNN_KEY] for values in records.values() if KNN_KEY in values]
    last_knn = measured[-1] if measured else None  # the trial's value: the kNN at its last measured step
    for step, values in records.items():
        said = follower.observe(step, knn=values.get(KNN_KEY), collapse=bool(values.get(COLLAPSE_KEY)))
        if said is not None and active:  # a run that finished meanwhile keeps its result
            reason, pruned_at = said, step
            break
    if follower.last_step != trial.last_step:
        search_queries.update_trial(
            session, search_id=row.id, number=trial.number, last_step=follower.last_step
        )
    if reason is not None:
        if prune_run(session, settings, run_id=run.id, reason=reason) is None:
            return  # it finished meanwhile: the next pass records how
        _finish(
            session,
            study,
            trial,
            TrialState.PRUNED,
            reason=reason,
            step=pruned_at,
            value=follower.last_value,
            state=states.PRUNED,
        )
        log.info("search %s: trial %d %s", row.id, trial.number, reason)
        return
    if status not in FINISHED_STATUSES:
        return
    if status is RunStatus.COMPLETED and last_knn is not None:
        _finish(session, study, trial, TrialState.COMPLETE, value=last_knn, state=states.COMPLETE)
    elif status is RunStatus.PRUNED:  # pruned by a pass that stopped before recording it
        _finish(
            session,
            study,
            trial,
            TrialState.PRUNED,
            reason=run.error,
            value=follower.last_value,
            step=follower.last_step if follower.last_step >= 0 else None,
            state=states.PRUNED,
        )
    else:
        why = run.error or f"its run ended {status}"
        if status is RunStatus.COMPLETED:
            why = "its run recorded no validation kNN"
        _finish(session, study, trial, TrialState.FAIL, reason=why.splitlines()[0], state=states.FAIL)


def _finish(
    session: Session,
    study: Any,
    trial: SearchTrial,
    outcome: TrialState,
    *,
    state: Any,
    reason: str | None = None,
    value: float | None = None,
    step: int | None = None,
) -> None:
    """Tell the study (unless a pass that died after telling it already did), then record the trial."""
    if not study.get_trials(deepcopy=False)[trial.number].state.is_finished():
        if outcome is TrialState.COMPLETE:
            study.tell(trial.number, value)
        else:
            study.tell(trial.number, state=state)
    search_queries.update_trial(
        session,
        search_id=trial.search_id,
        number=trial.number,
        state=outcome,
        value=value,
        reason=reason,
        pruned_step=step if outcome is TrialState.PRUNED else None,
    )
