"""`lowdino` command: library subcommands plus any registered under the `lowdino.commands` entry point.

The server and worker packages add `serve` and `worker` through that entry point, so the library
never imports them. Each subcommand module exposes `register(subparsers)` that adds its parser and
sets `func(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from lowdino import __version__
from lowdino.errors import LowDinoError

LIBRARY_COMMANDS = (
    "lowdino.cli.pretrain",
    "lowdino.cli.eval",
    "lowdino.cli.distill",
    "lowdino.cli.export",
    "lowdino.cli.backbones",
    "lowdino.cli.data",
    "lowdino.cli.runs",
    "lowdino.cli.search",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lowdino",
        description="Pretrain small vision backbones with DINO, evaluate them, compare them with DINOv2.",
    )
    parser.add_argument("--version", action="version", version=f"lowdino {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in LIBRARY_COMMANDS:
        importlib.import_module(module_name).register(subparsers)
    for entry in entry_points(group="lowdino.commands"):
        try:
            register = entry.load()
        except ImportError as exc:
            # The server extras are optional: say how to get the command instead of failing every command.
            missing = exc.name or "a dependency"
            message = f"needs {missing}: pip install 'lowdino[server]'"
            sub = subparsers.add_parser(entry.name, help=f"(unavailable: {message})")
            sub.set_defaults(func=lambda _args, m=message, n=entry.name: _unavailable(n, m))
            continue
        register(subparsers)
    return parser


def _unavailable(name: str, message: str) -> int:
    print(f"lowdino {name}: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LowDinoError as exc:
        # One write per line: torchrun ranks share the pipe, and print() writes the newline separately.
        sys.stderr.write(f"lowdino {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        print(f"lowdino {args.command}: interrupted", file=sys.stderr)
        return 130
