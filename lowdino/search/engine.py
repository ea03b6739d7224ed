"""Optuna glue shared by `lowdino search` and the service: samplers, pruners, trials and their reports.

A trial's intermediate values are its run's validation-kNN records (`knn_top1`, written every
`SearchConfig.knn_every_steps()` steps and at the last one); its value is the last of them, the kNN at
the end of its budget. The study's storage is any Optuna RDB URL: an SQLite file for the CLI, the
service's own database for the service, so trials survive restarts and processes share one study.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lowdino.errors import ConfigError
from lowdino.search.config import SearchConfig
from lowdino.search.space import SearchSpace, SpaceError

if TYPE_CHECKING:
    import optuna

# Successive halving and Hyperband keep the best third of the trials at each rung.
REDUCTION_FACTOR = 3


def optuna_module() -> Any:
    """Optuna, imported on first use: `lowdino` works without the [search] extra until a search runs."""
    try:
        import optuna
    except ImportError as exc:
        raise ConfigError("recipe search needs Optuna: pip install 'lowdino[search]'") from exc
    optuna.logging.set_verbosity(logging.WARNING)  # a line per trial is ours to print, not Optuna's
    return optuna


def distributions(space: SearchSpace) -> dict[str, Any]:
    optuna = optuna_module()
    dist = optuna.distributions
    result: dict[str, Any] = {}
    for param in space.params:
        if param.type == "choice":
            result[param.name] = dist.CategoricalDistribution(list(param.choices))
        elif param.type == "int":
            result[param.name] = dist.IntDistribution(
                int(param.low or 0), int(param.high or 0), log=param.log, step=int(param.step or 1)
            )
        else:
            result[param.name] = dist.FloatDistribution(
                float(param.low or 0), float(param.high or 0), log=param.log, step=param.step
            )
    return result


def check_sampler(config: SearchConfig, space: SearchSpace) -> None:
    """A grid needs a finite space: refuse a float range under it (SpaceError naming the option); the
    first trials must lie inside the space."""
    check_first_trials(config, space)
    if config.sampler == "grid":
        for param in space.params:
            if param.grid_values() is None:
                raise SpaceError(
                    f"space.{param.name}",
                    "the grid sampler needs choices or an int range; list the values to try as choice",
                )


def check_first_trials(config: SearchConfig, space: SearchSpace) -> None:
    """Each of `first_trials` sets options of the space to values inside it (SpaceError naming which)."""
    dists = distributions(space)
    for index, params in enumerate(config.first_trials):
        for name, value in params.items():
            where = f"first_trials.{index}.{name}"
            if name not in dists:
                raise SpaceError(where, f"is not searched; the space has {', '.join(dists)}")
            dist = dists[name]
            inside = value in dist.choices if hasattr(dist, "choices") else _within(dist, value)
            if not inside:
                raise SpaceError(where, f"{value!r} is outside space.{name}; widen the space or change it")


def _within(dist: Any, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return bool(dist.low <= value <= dist.high)


def trial_count(config: SearchConfig, space: SearchSpace) -> int:
    """Trials the search will run: n_trials, or the grid's size when that is smaller."""
    size = space.grid_size() if config.sampler == "grid" else None
    return min(config.n_trials, size) if size is not None else config.n_trials


def make_sampler(config: SearchConfig, space: SearchSpace, *, seed: int) -> Any:
    optuna = optuna_module()
    samplers = optuna.samplers
    if config.sampler == "random":
        return samplers.RandomSampler(seed=seed)
    if config.sampler == "grid":

        class Grid(samplers.GridSampler):  # type: ignore[misc,name-defined]
            def after_trial(self, *args: Any) -> None:
                # Optuna's grid calls study.stop() once every cell was asked, which only works inside
                # study.optimize; asked and told trials stop at the grid's size instead (trial_count).
                pass

        return Grid(space.grid(), seed=seed)
    if config.sampler == "cmaes":
        # CMA-ES models continuous ranges only; choices go to a seeded random sampler beside it.
        return samplers.CmaEsSampler(seed=seed, independent_sampler=samplers.RandomSampler(seed=seed))
    return samplers.TPESampler(seed=seed)


def make_pruner(config: SearchConfig) -> Any:
    optuna = optuna_module()
    pruners = optuna.pruners
    first = config.knn_every_steps()  # the first step a trial reports: the smallest rung
    if config.pruner == "asha":
        return pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=REDUCTION_FACTOR)
    if config.pruner == "hyperband":
        return pruners.HyperbandPruner(
            min_resource=first, max_resource=config.budget_steps, reduction_factor=REDUCTION_FACTOR
        )
    if config.pruner == "median":
        return pruners.MedianPruner(n_startup_trials=config.pruner_startup_trials, n_warmup_steps=0)
    return pruners.NopPruner()


def open_study(config: SearchConfig, space: SearchSpace, *, storage: Any, name: str) -> optuna.Study:
    """The study `name` in `storage` (created on first use), maximising the validation kNN.

    A study opened again (a restarted process) reseeds its sampler past the trials it already has, so
    that a seeded random start does not propose the same parameters twice.
    """
    optuna = optuna_module()
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        sampler=make_sampler(config, space, seed=config.seed),
        pruner=make_pruner(config),
        load_if_exists=True,
    )
    existing = len(study.get_trials(deepcopy=False))
    if existing:
        study.sampler = make_sampler(config, space, seed=config.seed + existing)
    else:
        for params in config.first_trials:  # asked first, in order, by `ask`
            study.enqueue_trial(params)
    return study


def ask(study: optuna.Study, space: SearchSpace) -> optuna.trial.Trial:
    return study.ask(fixed_distributions=distributions(space))


def trial_options(config: SearchConfig, params: dict[str, Any]) -> dict[str, Any]:
    """What a trial's config adds to the base: its parameters, the budget and the objective's monitor."""
    options = {
        **params,
        "max_steps": config.budget_steps,
        "knn_monitor": True,
        "knn_every_steps": config.knn_every_steps(),
    }
    if config.trial_minutes is not None:  # the trainer's own time limit: the trial ends completed
        options["max_minutes"] = config.trial_minutes
    return options


def preset_options(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The recipe a trial stands for: the base with its parameters, without the search's budget."""
    return {key: value for key, value in {**base, **params}.items() if key != "output_dir"}


@dataclass
class TrialFollower:
    """Reports one trial's validation-kNN records to its study and says when the pruner stops it."""

    trial: Any  # optuna.trial.Trial (asked here, or rebuilt from its id in another process)
    config: SearchConfig
    last_step: int = -1
    last_value: float | None = None

    @classmethod
    def of(cls, study: optuna.Study, trial_id: int, config: SearchConfig, *, last_step: int) -> TrialFollower:
        """The follower of a trial asked earlier (perhaps by another process) that reported up to `last_step`."""
        optuna = optuna_module()
        return cls(trial=optuna.trial.Trial(study, trial_id), config=config, last_step=last_step)

    def observe(self, step: int, *, knn: float | None = None, collapse: bool = False) -> str | None:
        """Take a record of the trial's run at `step`; the reason to prune it now, or None."""
        if collapse and self.config.prune_on_collapse:
            return f"pruned at step {step}: its run warned of collapse (prune_on_collapse)"
        # Step 0 is the untrained network's look (the run's random-init baseline): nothing to judge a
        # recipe by, and a pruner must not compare trials on it.
        if knn is None or step <= max(self.last_step, 0):
            return None
        self.trial.report(float(knn), step)
        self.last_step, self.last_value = step, float(knn)
        if self.trial.should_prune():
            return (
                f"pruned at step {step} by the {self.config.pruner} pruner: validation kNN {knn:.2f} % "
                "is behind the other trials at this step"
            )
        return None
