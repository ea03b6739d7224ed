"""`lowdino backbones`: the catalog of registered backbones (table or --json)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backbones",
        help="List the available backbones (parameters, feature size, pretrained weights).",
        description="List the backbones that pretrain / eval / distill accept, with their parameter "
        "count, feature dimension and whether timm publishes pretrained weights (and whether they are "
        "in the local Hugging Face cache).",
    )
    parser.add_argument("--json", action="store_true", help="Print a JSON list instead of a table.")
    parser.set_defaults(func=run)


def _rows() -> list[dict[str, Any]]:
    from lowdino.backbones import list_backbones, pretrained_cached

    return [
        {**asdict(info), "pretrained_cached": info.pretrained_available and pretrained_cached(info.name)}
        for info in list_backbones()
    ]


def format_table(rows: list[dict[str, Any]]) -> str:
    header = ("name", "family", "params (M)", "features", "pretrained", "description")
    body = [
        (
            row["name"],
            row["family"],
            f"{row['params'] / 1e6:.2f}",
            str(row["num_features"]),
            ("cached" if row["pretrained_cached"] else "timm") if row["pretrained_available"] else "no",
            row["description"],
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header) - 1)]
    lines = []
    for line in (header, *body):
        cells = [
            cell.rjust(w) if i in (2, 3) else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=False))
        ]
        lines.append("  ".join([*cells, line[-1]]).rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    rows = _rows()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows))
        print(
            "\npretrained: timm = weights published (download once), cached = in the local HF cache, no = none"
        )
    return 0
