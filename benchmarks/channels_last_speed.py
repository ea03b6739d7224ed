"""Training images/s with and without channels-last memory layout, alternating, as JSON.

    .venv/bin/python benchmarks/channels_last_speed.py --config configs/cifar10_mobilevit_xxs.yaml

Each trial is a real `pretrain` run of --steps steps on the CIFAR-10 image folder (extracted once from
../shared/datasets/cifar10-jpeg.zip) and reports the trainer's steady-state images/s (warm-up steps
excluded). Trials alternate between the two layouts so that a machine that speeds up or slows down
during the benchmark affects both alike; the median per layout is compared.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cifar_data import DEFAULT_ZIP, extract_cifar10

from lowdino.config import PretrainConfig
from lowdino.config.loading import build_config
from lowdino.train.trainer import pretrain


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=Path("configs/cifar10_mobilevit_xxs.yaml"))
    parser.add_argument("--zip", type=Path, default=DEFAULT_ZIP, help="the shared CIFAR-10 JPEG zip")
    parser.add_argument("--steps", type=int, default=80, help="optimiser steps per trial")
    parser.add_argument("--repeats", type=int, default=3, help="trials per layout")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the trainer's per-run log lines would bury the JSON

    data_path = extract_cifar10(args.zip)
    rates: dict[bool, list[float]] = {False: [], True: []}
    work = Path(tempfile.mkdtemp(prefix="lowdino-channels-last-"))
    for trial in range(args.repeats):
        for channels_last in (False, True):
            config = build_config(
                PretrainConfig,
                file=args.config,
                overrides={
                    "dataset": "imagefolder",
                    "data_path": str(data_path),
                    "device": "cpu",
                    "knn_monitor": False,
                    "max_steps": args.steps,
                    "channels_last": channels_last,
                    "output_dir": str(work / f"{trial}-{int(channels_last)}"),
                },
            )
            rates[channels_last].append(pretrain(config)["images_per_sec"])
    contiguous, channels_last = (statistics.median(rates[layout]) for layout in (False, True))
    print(
        json.dumps(
            {
                "benchmark": "channels_last_speed",
                "config": str(args.config),
                "steps_per_trial": args.steps,
                "torch_threads": torch.get_num_threads(),
                "images_per_sec_contiguous": rates[False],
                "images_per_sec_channels_last": rates[True],
                "median_contiguous": round(contiguous, 1),
                "median_channels_last": round(channels_last, 1),
                "speedup": round(channels_last / contiguous, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
