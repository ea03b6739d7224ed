"""`lowdino search` on one machine: trials run here one after another, the study in an SQLite file.

    <output_dir>/study.db        the Optuna study (run the same command again to continue it)
    <output_dir>/trials/NNNN/    one ordinary run directory per trial (config.yaml, metrics.jsonl, ...)
    <output_dir>/best.yaml       the best recipe so far, under a header saying how it was found

The run ends with `where_things_are`: those paths and the one command that views the study (Optuna's own
dashboard reads the file as it is). A trial is pruned from inside the trainer: the callback sees each validation-kNN record as it is written
and asks the trainer to stop (it checkpoints and ends as cancelled; the study records it as pruned).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lowdino.config import CONFIG_MODELS
from lowdino.config.loading import build_config
from lowdino.contract.rundir import atomic_write_text
from lowdino.errors import LowDinoError
from lowdino.search import engine
from lowdino.search.config import SearchConfig
from lowdino.search.preset import Provenance, preset_text
from lowdino.search.space import SearchSpace, parse_space

STUDY_FILE = "study.db"
TRIALS_DIR = "trials"
BEST_FILE = "best.yaml"
STUDY_NAME = "search"


@dataclass
class _Pruner:
    """The trainer callback of one trial: reports kNN records, asks to stop once the pruner says so."""

    follower: engine.TrialFollower
    reason: str | None = None
    step: int | None = None

    def on_metrics(self, record: dict[str, Any]) -> None:
        if self.reason is not None:
            return
        step = int(record["step"])
        reason = self.follower.observe(
            step, knn=record.get("knn_top1"), collapse=bool(record.get("collapse_warning"))
        )
        if reason is not None:
            self.reason, self.step = reason, step

    def should_stop(self) -> bool:
        return self.reason is not None


@dataclass
class TrialResult:
    number: int
    state: str  # "complete", "pruned" or "fail"
    params: dict[str, Any]
    value: float | None
    step: int | None
    seconds: float
    run_dir: Path
    reason: str | None = None

    def line(self, total: int) -> str:
        params = ", ".join(
            f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
            for key, value in self.params.items()
        )
        if self.state == "complete":
            outcome = f"validation kNN {self.value:.2f} %"
        else:
            outcome = self.reason or self.state
        return f"trial {self.number + 1}/{total} {self.state}: {outcome} [{params}] ({self.seconds:.1f} s)"


@dataclass
class SearchOutcome:
    trials: list[TrialResult] = field(default_factory=list)  # the trials this call ran
    best_number: int | None = None  # of the whole study
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_file: Path | None = None


def prepare(
    search: SearchConfig, base_file: str | Path | None, overrides: dict[str, Any] | None = None
) -> tuple[dict[str, Any], SearchSpace]:
    """The base options (file < overrides, a valid config by themselves) and the checked space."""
    model = CONFIG_MODELS[search.kind]
    base_config = build_config(model, file=base_file, overrides=overrides)
    base = base_config.model_dump(mode="json", exclude_unset=True)
    space = parse_space(search.space, model, base)
    engine.check_sampler(search, space)
    return base, space


def _run_trial(
    study: Any, search: SearchConfig, base: dict[str, Any], trial: Any, run_dir: Path
) -> TrialResult:
    from lowdino.train.trainer import train  # torch only once a trial runs

    optuna = engine.optuna_module()
    model = CONFIG_MODELS[search.kind]
    params = dict(trial.params)
    follower = engine.TrialFollower(trial=trial, config=search)
    callback = _Pruner(follower)
    started = time.perf_counter()
    options = {**base, **engine.trial_options(search, params), "output_dir": str(run_dir)}
    try:
        config = build_config(model, overrides=options)
        train(config, callbacks=[callback])  # type: ignore[arg-type]
    except LowDinoError as exc:  # this combination cannot run (e.g. out of memory): the next one may
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return TrialResult(
            trial.number, "fail", params, None, None, time.perf_counter() - started, run_dir, reason=str(exc)
        )
    seconds = time.perf_counter() - started
    if callback.reason is not None:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return TrialResult(
            trial.number,
            "pruned",
            params,
            follower.last_value,
            callback.step,
            seconds,
            run_dir,
            reason=callback.reason,
        )
    if follower.last_value is None:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return TrialResult(
            trial.number,
            "fail",
            params,
            None,
            None,
            seconds,
            run_dir,
            reason="its run recorded no validation kNN (is the kNN monitor possible here?)",
        )
    study.tell(trial, follower.last_value)
    return TrialResult(
        trial.number, "complete", params, follower.last_value, follower.last_step, seconds, run_dir
    )


def best_trial(study: Any) -> Any | None:
    """The completed trial with the highest validation kNN (pruned trials never count), or None."""
    optuna = engine.optuna_module()
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return max(complete, key=lambda trial: trial.value) if complete else None


def write_best(study: Any, search: SearchConfig, base: dict[str, Any], path: Path, name: str) -> Path | None:
    optuna = engine.optuna_module()
    states = optuna.trial.TrialState
    best = best_trial(study)
    if best is None:
        return None
    finished = study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED))
    pruned = sum(trial.state == states.PRUNED for trial in finished)
    found = Provenance(
        search=name,
        trial=best.number,
        trials=len(finished),
        pruned=pruned,
        value=float(best.value),
        config=search,
    )
    options = engine.preset_options(base, dict(best.params))
    atomic_write_text(path, preset_text(CONFIG_MODELS[search.kind], options, found))
    return path


def run_search(
    search: SearchConfig,
    base: dict[str, Any],
    space: SearchSpace,
    output_dir: Path,
    *,
    echo: Callable[[str], None] = print,
) -> SearchOutcome:
    """Run trials until the study holds `n_trials` finished ones (a second call continues the study)."""
    optuna = engine.optuna_module()
    output_dir.mkdir(parents=True, exist_ok=True)
    study = engine.open_study(search, space, storage=f"sqlite:///{output_dir / STUDY_FILE}", name=STUDY_NAME)
    total = engine.trial_count(search, space)
    # This process owns the file: a trial left running is one a killed earlier call never finished.
    for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(stale.number, state=optuna.trial.TrialState.FAIL)
    outcome = SearchOutcome()
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    while len(study.get_trials(deepcopy=False, states=done)) < total:
        trial = engine.ask(study, space)
        result = _run_trial(study, search, base, trial, output_dir / TRIALS_DIR / f"{trial.number:04d}")
        outcome.trials.append(result)
        echo(result.line(total))
    best = best_trial(study)
    if best is not None:
        outcome.best_number, outcome.best_value = best.number, float(best.value)
        outcome.best_params = dict(best.params)
        outcome.best_file = write_best(
            study, search, base, output_dir / BEST_FILE, str(output_dir / STUDY_FILE)
        )
    return outcome


def where_things_are(search: SearchConfig, output_dir: Path, best_file: Path | None) -> str:
    """The closing lines: what the search left where, and the one command that views it.

    The study is a plain Optuna RDB study in an SQLite file, so Optuna's own dashboard opens it as it is
    (history, intermediate values, parallel coordinates, importances: what the service's Search page
    shows); the service's dashboard lists only what its queue ran, as for any hand-launched run.
    """
    study = output_dir / STUDY_FILE
    lines = [
        "",
        f"study:       {study} (Optuna study '{STUDY_NAME}'; the same command again continues it)",
        f"trials:      {output_dir / TRIALS_DIR}/NNNN/ (one run directory each: config.yaml, metrics.jsonl, "
        "train.log, TensorBoard events)",
    ]
    if best_file is not None:
        lines.append(f"best recipe: {best_file} (train it: lowdino {search.kind} --config {best_file})")
    lines.append(
        f"view it:     optuna-dashboard sqlite:///{study.resolve()}   (pip install optuna-dashboard; "
        f"each trial's curves: tensorboard --logdir {output_dir / TRIALS_DIR})"
    )
    return "\n".join(lines)
