"""The Optuna glue: trials follow their validation-kNN records and the pruners stop the poor ones."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from lowdino.config import PretrainConfig
from lowdino.config.loading import build_config
from lowdino.errors import ConfigError
from lowdino.search import engine
from lowdino.search.config import SearchConfig
from lowdino.search.space import SpaceError, parse_space

SPACE = {"lr": {"float": [1e-4, 1e-2], "log": True}, "out_dim": {"choice": [64, 128]}}


def study_of(**options: Any) -> tuple[SearchConfig, Any, Any]:
    config = SearchConfig(space=SPACE, budget_steps=40, reports=4, **options)
    space = parse_space(SPACE, PretrainConfig, {})
    return config, space, engine.open_study(config, space, storage=None, name="t")


def run_trial(study: Any, space: Any, config: SearchConfig, values: list[float]) -> tuple[Any, str | None]:
    trial = engine.ask(study, space)
    follower = engine.TrialFollower(trial=trial, config=config)
    for index, value in enumerate(values):
        reason = follower.observe((index + 1) * config.knn_every_steps(), knn=value)
        if reason is not None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return trial, reason
    study.tell(trial, follower.last_value)
    return trial, None


def test_median_pruner_with_one_startup_trial_prunes_a_worse_trial_at_its_first_report() -> None:
    config, space, study = study_of(pruner="median", pruner_startup_trials=1, sampler="random")
    good, reason = run_trial(study, space, config, [20.0, 30.0, 40.0, 50.0])
    assert reason is None
    assert study.trials[good.number].value == 50.0  # the value is the kNN at the end of the budget
    worse, reason = run_trial(study, space, config, [10.0, 60.0, 70.0, 80.0])
    assert reason is not None
    assert "pruned at step 10 by the median pruner" in reason
    assert study.trials[worse.number].state == optuna.trial.TrialState.PRUNED
    assert study.trials[worse.number].intermediate_values == {10: 10.0}
    better, reason = run_trial(study, space, config, [25.0, 35.0, 45.0, 55.0])
    assert reason is None
    assert study.best_trial.number == better.number


def test_without_a_pruner_every_trial_runs_its_budget() -> None:
    config, space, study = study_of(pruner="none")
    run_trial(study, space, config, [50.0, 50.0, 50.0, 50.0])
    _, reason = run_trial(study, space, config, [1.0, 1.0, 1.0, 1.0])
    assert reason is None
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2


def test_a_step_already_reported_is_not_reported_twice() -> None:
    config, space, study = study_of(pruner="none")
    trial = engine.ask(study, space)
    follower = engine.TrialFollower(trial=trial, config=config)
    follower.observe(10, knn=5.0)
    follower.observe(10, knn=99.0)  # a replayed record after a resume
    follower.observe(5, knn=99.0)
    assert study.trials[trial.number].intermediate_values == {10: 5.0}
    assert follower.last_value == 5.0


def test_a_collapse_warning_prunes_only_with_prune_on_collapse() -> None:
    for prune_on_collapse in (False, True):
        config, space, study = study_of(pruner="none", prune_on_collapse=prune_on_collapse)
        follower = engine.TrialFollower(trial=engine.ask(study, space), config=config)
        reason = follower.observe(7, collapse=True)
        assert (reason is not None) is prune_on_collapse
        if reason is not None:
            assert "step 7" in reason
            assert "collapse" in reason


def test_trial_options_carry_the_budget_and_the_monitor() -> None:
    config = SearchConfig(space=SPACE, budget_steps=30, reports=3)
    options = engine.trial_options(config, {"lr": 0.001})
    assert options == {"lr": 0.001, "max_steps": 30, "knn_monitor": True, "knn_every_steps": 10}
    assert PretrainConfig.model_validate({**options, "dataset": "synthetic"}).knn_every_steps == 10


def test_a_time_budget_becomes_each_trials_max_minutes_and_must_be_positive() -> None:
    config = SearchConfig(space=SPACE, budget_steps=30, reports=3, trial_minutes=2.5)
    options = engine.trial_options(config, {"lr": 0.001})
    assert options["max_minutes"] == 2.5
    assert PretrainConfig.model_validate({**options, "dataset": "synthetic"}).max_minutes == 2.5
    assert config.budget() == "30 steps (or 2.5 minutes if that comes first)"
    for minutes in (0, -1):
        with pytest.raises(ConfigError) as caught:
            build_config(
                SearchConfig, overrides={"space": SPACE, "budget_steps": 30, "trial_minutes": minutes}
            )
        assert str(caught.value) == f"invalid SearchConfig: trial_minutes: must be > 0.0 (got {minutes})"
    with pytest.raises(SpaceError) as refused:  # the trial's time is the search's, not a parameter
        parse_space({"max_minutes": {"float": [1.0, 5.0]}}, PretrainConfig, {})
    assert refused.value.field == "space.max_minutes"


def test_every_sampler_and_pruner_proposes_parameters_inside_the_space() -> None:
    finite = {"out_dim": {"choice": [64, 128]}, "n_crops": {"int": [2, 4]}}
    for sampler in ("tpe", "random", "grid", "cmaes"):
        for pruner in ("asha", "hyperband", "median", "none"):
            config = SearchConfig(space=finite, budget_steps=40, sampler=sampler, pruner=pruner)
            space = parse_space(finite, PretrainConfig, {})
            study = engine.open_study(config, space, storage=None, name="t")
            for value in (1.0, 2.0, 3.0):
                trial = engine.ask(study, space)
                assert trial.params["out_dim"] in (64, 128)
                assert 2 <= trial.params["n_crops"] <= 4
                study.tell(trial, value)


def test_first_trials_are_asked_first_in_order_and_must_lie_inside_the_space() -> None:
    first = [{"lr": 0.001, "out_dim": 64}, {"lr": 0.005, "out_dim": 128}]
    _, space, study = study_of(first_trials=first, sampler="random")
    asked = [engine.ask(study, space) for _ in range(3)]
    assert [trial.params for trial in asked[:2]] == first
    assert asked[2].params not in first

    for params, field in (({"lr": 0.5}, "first_trials.0.lr"), ({"n_crops": 4}, "first_trials.0.n_crops")):
        outside = SearchConfig(space=SPACE, budget_steps=40, first_trials=[params])
        with pytest.raises(SpaceError) as caught:
            engine.check_sampler(outside, parse_space(SPACE, PretrainConfig, {}))
        assert caught.value.field == field


def test_a_grid_search_asks_every_cell_once_and_tells_the_last_one() -> None:
    finite = {"out_dim": {"choice": [64, 128]}, "n_crops": {"int": [2, 3]}}
    config = SearchConfig(space=finite, budget_steps=40, sampler="grid", pruner="none", n_trials=50)
    space = parse_space(finite, PretrainConfig, {})
    study = engine.open_study(config, space, storage=None, name="t")
    assert engine.trial_count(config, space) == 4
    for value in range(4):
        study.tell(engine.ask(study, space), float(value))  # the last tell used to raise (study.stop)
    cells = {(trial.params["out_dim"], trial.params["n_crops"]) for trial in study.trials}
    assert cells == {(64, 2), (64, 3), (128, 2), (128, 3)}
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials)
