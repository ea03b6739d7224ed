"""`lowdino export`: a backbone as a deployable artifact (ONNX, optionally int8, or TorchScript), checked
against PyTorch on real images before anything is written.

Flags are generated from `ExportConfig`; SOURCE (a run directory, checkpoint file or backbone name) may
also come from `--config FILE.yaml`. Exit status: 0 written, 2 bad input or failed parity (nothing
written at the output path).
"""

from __future__ import annotations

import argparse
import json

from lowdino.cli.args import add_model_arguments, config_from_namespace
from lowdino.config.export import ExportConfig
from lowdino.contract.rundir import EXIT_OK

EXAMPLES = """examples:
  lowdino export runs/pretrain-mobilevit_xxs-20250101-120000 --format onnx --output xxs.onnx
  lowdino export mobilenetv2_100 --pretrained --quantize int8 --calibration-data data/cifar10 --output mnv2.int8.onnx
  lowdino export resnet5m --format torchscript --image-size 32 --output-dir runs/export-resnet5m
  lowdino eval --artifact xxs.onnx --dataset imagefolder --data-path data/cifar10 --protocols knn,latency
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "export",
        help="export a backbone to ONNX (fp32 / int8) or TorchScript, with a parity check",
        description="Export a run's backbone, a checkpoint or a registry backbone for deployment. The "
        "artifact is run in its own runtime on real training images and compared with PyTorch (fp32: max "
        "absolute difference within --parity-tolerance, else nothing is written); a manifest JSON beside "
        "it records backbone, input size, mean/std, source sha256, opset, runtime versions and parity.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "source_arg",
        metavar="SOURCE",
        nargs="?",
        default=None,
        help="Run directory, checkpoint file or registry backbone name (same as --source).",
    )
    parser.add_argument(
        "--config",
        metavar="FILE.yaml",
        default=None,
        help="YAML file of options (e.g. an export run's config.yaml); flags override it.",
    )
    add_model_arguments(parser, ExportConfig)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> ExportConfig:
    if args.source_arg is not None:
        args.source = args.source_arg
    return config_from_namespace(ExportConfig, args)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    # Imported here so that `lowdino --help` and the other subcommands do not pay for torch and onnx.
    from lowdino.export.run import export

    result = export(config)
    fields = result.manifest_fields
    print(
        json.dumps(
            {
                "artifact": str(result.artifact),
                "manifest": str(result.manifest),
                "backbone": fields["backbone"],
                "image_size": fields["image_size"],
                "parity": fields["parity"],
            }
        )
    )
    return EXIT_OK
