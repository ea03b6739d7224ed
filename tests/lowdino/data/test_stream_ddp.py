"""Streaming under a real torchrun launch: 2 DDP processes (gloo) x 2 DataLoader workers each see
every image of the epoch exactly once, for an image folder and for webdataset shards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _stream_utils import write_coded_folder

from lowdino.data.shardwriter import shard_folder

REPO_ROOT = Path(__file__).resolve().parents[3]
COUNT = 48

SCRIPT = """
import json, sys
import torch
sys.path.insert(0, sys.argv[3])
from _stream_utils import all_ids
from lowdino.data.crops import CropSpec
from lowdino.data.loader import LoaderOptions, StreamingBatches
from lowdino.data.sources import open_stream
from lowdino.train.distributed import all_gather_objects, context_from_env, destroy_process_group, init_process_group

ctx = context_from_env()
init_process_group(ctx, torch.device("cpu"))
source = open_stream(sys.argv[1], sys.argv[2], "train", shuffle_buffer=5)
specs = (CropSpec(16, (0.4, 1.0), 2),)
options = LoaderOptions(num_workers=2, prefetch_factor=2, persistent_workers=True)
loader = StreamingBatches(source, specs, 4, seed=3, rank=ctx.rank, world_size=ctx.world_size, options=options)
seen = {epoch: [i for batch in all_ids(loader.epoch(epoch)) for i in batch] for epoch in (0, 1)}
gathered = all_gather_objects(seen, ctx)
if ctx.is_main:
    print(json.dumps(gathered))
destroy_process_group()
"""


@pytest.fixture(scope="module")
def coded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    write_coded_folder(root / "folder" / "train", COUNT)
    write_coded_folder(root / "folder" / "test", 2)
    shard_folder(root / "folder", root / "shards", shard_size=5)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["imagefolder", "webdataset"])
def test_two_ddp_ranks_with_two_workers_each_see_every_image_once(
    coded: Path, tmp_path: Path, dataset: str
) -> None:
    script = tmp_path / "stream_ranks.py"
    script.write_text(SCRIPT)
    data = coded / ("folder" if dataset == "imagefolder" else "shards")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(script), dataset, str(data), str(Path(__file__).parents[1]),  # _stream_utils.py
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    per_rank = json.loads([line for line in result.stdout.splitlines() if line.startswith("[")][-1])
    assert len(per_rank) == 2
    for epoch in ("0", "1"):
        rank0, rank1 = per_rank[0][epoch], per_rank[1][epoch]
        assert len(rank0) == len(rank1) == COUNT // 2  # equal steps on every rank
        assert sorted(rank0 + rank1) == list(range(COUNT))
    assert per_rank[0]["0"] != per_rank[0]["1"]  # a new order every epoch
