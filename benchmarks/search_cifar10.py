"""Recipe search with and without pruning on real CIFAR-10 (validation split only), as JSON.

    .venv/bin/python benchmarks/search_cifar10.py --trials 12 --budget-steps 300 --space space.yaml
    .venv/bin/python benchmarks/search_cifar10.py --trials 4 --budget-steps 40 --set knn_max_train=2000  # small

Two searches of the same space with the same sampler, seed and trial count: one with the ASHA pruner
(successive halving on the validation-kNN reports), one without pruning. Printed: the trial-steps each
used (the steps its trials trained, pruned ones up to where they stopped) and the best validation kNN
each found. The issue's target: with pruning, at most half the compute for a best within 1 point.

Data: the full CIFAR-10 JPEG folder (benchmarks/cifar_data.py, or --data-path); every trial holds out
the same validation split (10 % of every class) and the test split is never loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cifar_data import DEFAULT_ZIP, extract_cifar10

from lowdino.config.loading import read_yaml
from lowdino.search.config import SearchConfig
from lowdino.search.standalone import prepare, run_search

# The recipe's choices the README lists as never re-checked on the validation split.
DEFAULT_SPACE: dict[str, Any] = {
    "lr": {"float": [0.0005, 0.008], "log": True},
    "teacher_temp": {"choice": [0.02, 0.04, 0.06]},
    "momentum_teacher": {"choice": [0.98, 0.99, 0.996]},
    "global_crop_scale_min": {"float": [0.2, 0.6]},
}


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE, got {pair!r} (e.g. --set knn_max_train=2000)")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def trial_steps(run_dir: Path) -> int:
    """Steps the trial trained: the last step of its metrics log (a pruned trial stops early)."""
    lines = (
        (run_dir / "metrics.jsonl").read_text().splitlines() if (run_dir / "metrics.jsonl").is_file() else []
    )
    return int(json.loads(lines[-1])["step"]) if lines else 0


def one_search(search: SearchConfig, base: dict[str, Any], output_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    _, space = prepare(search, None, base)
    outcome = run_search(
        search, base, space, output_dir, echo=lambda line: print(line, file=sys.stderr, flush=True)
    )
    return {
        "pruner": search.pruner,
        "trial_steps": sum(trial_steps(result.run_dir) for result in outcome.trials),
        "best_val_knn": outcome.best_value,
        "best_params": outcome.best_params,
        "pruned": sum(result.state == "pruned" for result in outcome.trials),
        "failed": sum(result.state == "fail" for result in outcome.trials),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=Path("configs/cifar10_mobilevit_xxs.yaml"))
    parser.add_argument(
        "--space",
        type=Path,
        default=None,
        help="YAML space (default: lr, teacher temp, momentum, crop scale)",
    )
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--budget-steps", type=int, default=300)
    parser.add_argument("--reports", type=int, default=4)
    parser.add_argument("--sampler", default="tpe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--zip", type=Path, default=DEFAULT_ZIP)
    parser.add_argument(
        "--data-path", type=Path, default=None, help="an extracted CIFAR-10 folder (train/, test/)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument(
        "--output-dir", type=Path, default=None, help="where both searches go (default: a temp dir)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe field"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data_path = args.data_path or extract_cifar10(args.zip)
    base = {
        **read_yaml(args.config),
        **parse_overrides(args.set),
        "dataset": "imagefolder",
        "data_path": str(data_path),
        "device": "cpu",
        "checkpoint_every_steps": None,
    }
    space = read_yaml(args.space) if args.space else DEFAULT_SPACE
    load_before = os.getloadavg()
    root = args.output_dir or Path(tempfile.mkdtemp(prefix="search-cifar10-"))
    results = {}
    for pruner in ("asha", "none"):
        search = SearchConfig(
            space=space,
            n_trials=args.trials,
            budget_steps=args.budget_steps,
            reports=args.reports,
            sampler=args.sampler,
            pruner=pruner,
            seed=args.seed,
        )
        results[pruner] = one_search(search, base, root / pruner)
    asha, none = results["asha"], results["none"]
    print(
        json.dumps(
            {
                "benchmark": "search_cifar10",
                "trials": args.trials,
                "budget_steps": args.budget_steps,
                "reports": args.reports,
                "sampler": args.sampler,
                "seed": args.seed,
                "asha": asha,
                "none": none,
                "compute_ratio": round(asha["trial_steps"] / max(none["trial_steps"], 1), 3),
                "best_gap_points": None
                if asha["best_val_knn"] is None or none["best_val_knn"] is None
                else round(none["best_val_knn"] - asha["best_val_knn"], 2),
                "threads": torch.get_num_threads(),
                "load_before": [round(value, 2) for value in load_before],
                "load_after": [round(value, 2) for value in os.getloadavg()],
                "output_dir": str(root),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
