"""`lowdino eval`: kNN, linear probe and fine-tuning of a checkpoint or a registry backbone.

Flags are generated from `EvalConfig`; `--config FILE.yaml` supplies a base that flags override.
Prints the results table (measured row plus published reference rows, marked "published") and
writes results.json / results.csv into the output directory. Exit status: 0 done, 75 cancelled
(STOP file in the output directory), 2 bad input.
"""

from __future__ import annotations

import argparse
import sys

from lowdino.cli.args import add_model_arguments, config_from_namespace
from lowdino.config import EvalConfig
from lowdino.contract.rundir import EXIT_CANCELLED, EXIT_OK

EXAMPLES = """examples:
  lowdino eval --checkpoint runs/pretrain-mobilevit_xxs-20250101-120000 --data-path data/cifar10
  lowdino eval --backbone resnet5m --dataset synthetic --protocols knn,linear,finetune --seeds 0
  lowdino eval --backbone dinov2_vits14 --pretrained --image-size 224 --knn-protocol both
  lowdino eval --backbone mobilevit_xxs --weights my_weights.pth --label-fractions 0.01,0.1 --seeds 0,1,2
  lowdino eval --artifact xxs.int8.onnx --dataset imagefolder --data-path data/cifar10 --protocols knn,latency
  lowdino eval --backbone dinov2_vits14 --pretrained --protocols latency --image-size 224
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a backbone: weighted kNN, linear probe, fine-tuning at label fractions, latency",
        description="Evaluate a run checkpoint (--checkpoint) or a registry backbone (--backbone) on a "
        "labelled dataset: weighted kNN (DINO) or 1-NN (original LowDINO), linear probe and fine-tuning "
        "on class-stratified label fractions, mean ± std over seeds. Published figures are listed "
        "beside the measured ones and marked 'published'.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        metavar="FILE.yaml",
        default=None,
        help="YAML file of options (e.g. a run's config.yaml); flags override it.",
    )
    parser.add_argument(
        "--no-references",
        dest="show_references",
        action="store_false",
        help="Print only the measured row, without the published reference rows.",
    )
    add_model_arguments(parser, EvalConfig)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    return config_from_namespace(EvalConfig, args)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    # Imported here so that `lowdino --help` and the other subcommands do not pay for torch.
    from lowdino.eval.results import format_latency, format_table
    from lowdino.eval.runner import EvalCancelled, evaluate

    try:
        results = evaluate(config)
    except EvalCancelled as stop:
        print(
            f"lowdino eval: cancelled ({stop}); partial results are in the output directory", file=sys.stderr
        )
        return EXIT_CANCELLED
    references = results.references if args.show_references else []
    if results.results:
        print(format_table([results], references))
    if results.latency:
        print(format_latency(results))
    print(f"\nresults: {results.output_dir}/results.json, results.csv")
    return EXIT_OK
