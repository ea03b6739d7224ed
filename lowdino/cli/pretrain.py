"""`lowdino pretrain`: DINO/BYOL pretraining of one backbone into a run directory.

Flags are generated from `PretrainConfig`; `--config FILE.yaml` supplies a base that flags override
(defaults < file < flags). The exit status follows the run-directory contract: 0 completed,
75 cancelled (STOP file or callback), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from lowdino.cli.args import add_model_arguments, config_from_namespace
from lowdino.config import PretrainConfig
from lowdino.contract.rundir import EXIT_CANCELLED, EXIT_OK

EXAMPLES = """examples:
  lowdino pretrain --config configs/quickstart.yaml
  lowdino pretrain --config configs/cifar10_mobilevit_xxs.yaml --data-path data/cifar10 -e 100
  lowdino pretrain --backbone resnet5m --dataset synthetic --global-crop-size 32 --local-crop-size 16 -b 64
  torchrun --nproc_per_node 2 -m lowdino pretrain --config configs/imagenette.yaml --device cuda
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "pretrain",
        help="self-supervised pretraining (DINO / BYOL) of a small backbone",
        description="Pretrain a backbone with DINO self-distillation (or BYOL) into a run directory "
        "(config.yaml, metrics.jsonl, TensorBoard logs, checkpoints, summary.json).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        metavar="FILE.yaml",
        default=None,
        help="YAML file of options (e.g. configs/quickstart.yaml or a run's config.yaml); flags override it.",
    )
    add_model_arguments(parser, PretrainConfig)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    return config_from_namespace(PretrainConfig, args)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    # Imported here so that `lowdino --help` and the other subcommands do not pay for torch.
    from lowdino.train.trainer import pretrain

    summary = pretrain(config)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one summary line rather than one per process
        print(json.dumps(summary), file=sys.stdout)
    return EXIT_CANCELLED if summary["status"] == "cancelled" else EXIT_OK
