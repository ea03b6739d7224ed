"""`lowdino data shard SRC DST`: an image folder as WebDataset tar shards for streaming pretraining."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "data",
        help="prepare datasets (shard an image folder into WebDataset tars)",
        description="Dataset preparation for large-scale pretraining.",
    )
    commands = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    shard = commands.add_parser(
        "shard",
        help="write an image folder as tar shards (WebDataset layout) with a wids index per split",
        description="Copy the images of SRC (train/ and val/ or test/ class folders, or one folder of "
        "classes split 90/10 with a fixed seed) byte for byte into DST/<split>-NNNNNN.tar, in a shuffled "
        "order, with DST/<split>.json listing the shards. Train from them with "
        "`lowdino pretrain --dataset webdataset --data-path DST`. Shards suit shared or network "
        "filesystems, where opening millions of small files is slow.",
    )
    shard.add_argument("src", metavar="SRC", help="image folder")
    shard.add_argument("dst", metavar="DST", help="output directory (created; must not hold shards)")
    shard.add_argument(
        "--shard-size",
        type=int,
        default=1000,
        help="images per tar (ImageNet at 1000: about 110 MB per shard, 1 282 tars) [default: 1000]",
    )
    shard.set_defaults(func=run_shard)


def run_shard(args: argparse.Namespace) -> int:
    from lowdino.data.shardwriter import shard_folder

    written = shard_folder(args.src, args.dst, shard_size=args.shard_size)
    print(json.dumps({"output": args.dst, "images": written}))
    return 0
