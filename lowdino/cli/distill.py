"""`lowdino distill`: distil a frozen teacher (DINOv2 ViT-S/14, ResNet-50, a run checkpoint) into a small student.

Same run directory, metrics, checkpoints, resume and exit codes as `lowdino pretrain`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from lowdino.cli.args import add_model_arguments, config_from_namespace
from lowdino.config import DistillConfig
from lowdino.contract.rundir import EXIT_CANCELLED, EXIT_OK

EXAMPLES = """examples:
  lowdino distill --teacher dinov2_vits14 --student mobilevit_s --dataset cifar10 --teacher-image-size 224
  lowdino distill --teacher runs/pretrain-resnet50-x/checkpoint.pth --student resnet5m --loss cosine
  lowdino distill --teacher resnet50 --teacher-weights resnet50_dino.pth --student resnet5m --label-loss-weight 0.5
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "distill",
        help="distil a large frozen teacher into a small student backbone",
        description="Knowledge distillation: KL between temperature-softened teacher and projected student "
        "embeddings (the original LowDINO recipe, T=3) or cosine / MSE feature distillation, optionally plus "
        "cross-entropy on labels.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", metavar="FILE.yaml", default=None, help="YAML file of options; flags override it."
    )
    add_model_arguments(parser, DistillConfig)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> DistillConfig:
    return config_from_namespace(DistillConfig, args)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    from lowdino.train.trainer import train  # torch only for the command that needs it

    summary = train(config)
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps(summary), file=sys.stdout)
    return EXIT_CANCELLED if summary["status"] == "cancelled" else EXIT_OK
