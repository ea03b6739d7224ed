"""`lowdino search`: a budgeted recipe search on this machine, without the service.

Each trial is an ordinary run directory under `--output-dir`; the study is an Optuna SQLite file beside
them, so running the same command again continues the search. One line is printed per trial as it ends,
then the best recipe (also saved as best.yaml, a preset `lowdino pretrain --config` reads).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lowdino.cli.args import add_model_arguments
from lowdino.config.loading import build_config, read_yaml
from lowdino.search.config import SearchConfig

EXAMPLES = """examples:
  lowdino search --config configs/quickstart.yaml --space space.yaml --trials 8 --budget-steps 200
  lowdino search --config base.yaml --space space.yaml --trials 20 --budget-steps 500 --pruner median \\
      --sampler random --seed 1 --output-dir runs/search-lr

space.yaml: option -> a range or choices, e.g.
  lr: {float: [0.0001, 0.01], log: true}
  n_crops: {int: [2, 8]}
  out_dim: {choice: [1024, 2048, 4096]}
"""

# SearchConfig's fields become flags as every config model's do (cli/args.py: defaults, bounds and help from
# the model), but these: the space is a file (--space), the objective has one value, first_trials is a list
# of parameter sets (YAML / REST), and max_parallel is the service's: here trials run one after another.
NOT_FLAGS = ("space", "first_trials", "objective", "max_parallel")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "search",
        help="budgeted hyperparameter search on the validation kNN, with pruning (Optuna)",
        description="Search the options in --space over the --config recipe: every trial trains "
        "--budget-steps steps and is scored by the kNN monitor on the validation split (never the test "
        "split); the pruner stops poor trials early.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE.yaml", default=None, help="the base recipe of every trial")
    parser.add_argument("--space", metavar="FILE.yaml", required=True, help="option -> range or choices")
    parser.add_argument(
        "--output-dir",
        default=None,
        help="study.db, trials/ and best.yaml go here (default: runs/search-<timestamp>); "
        "an existing one is continued",
    )
    add_model_arguments(parser, SearchConfig, skip=NOT_FLAGS, default_group="search")
    parser.set_defaults(func=run)


def search_config(args: argparse.Namespace) -> SearchConfig:
    given = {name: value for name, value in vars(args).items() if name in SearchConfig.model_fields}
    return build_config(SearchConfig, overrides={**given, "space": read_yaml(args.space)})


def run(args: argparse.Namespace) -> int:
    from lowdino.search.standalone import prepare, run_search, where_things_are

    search = search_config(args)
    base, space = prepare(search, args.config)
    output_dir = Path(args.output_dir or f"runs/search-{time.strftime('%Y%m%d-%H%M%S')}")
    print(
        f"search: {search.n_trials} trials of {search.budget()}, sampler {search.sampler}, "
        f"pruner {search.pruner}; objective: validation kNN top-1; study {output_dir}/study.db",
        flush=True,
    )
    outcome = run_search(search, base, space, output_dir, echo=lambda line: print(line, flush=True))
    if outcome.best_file is None:
        print("no trial completed: no best recipe (see the trials' train.log)")
    else:
        params = ", ".join(f"{key}={value}" for key, value in outcome.best_params.items())
        print(f"best: trial {outcome.best_number}, validation kNN {outcome.best_value:.2f} % with {params}")
        print(f"best recipe saved to {outcome.best_file}:")
        print(outcome.best_file.read_text(), end="")
    print(where_things_are(search, output_dir, outcome.best_file))
    return 0 if outcome.best_file is not None else 1
