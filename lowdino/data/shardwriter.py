"""Write an image folder as WebDataset tar shards plus a wids index per split (see lowdino.data.shards).

Files are copied byte for byte (no re-encoding, so no quality loss and no decode cost) in a
seeded shuffled order, so every shard mixes the classes and a shuffle buffer of a few hundred
samples is enough. Each tar is written under a temporary name and renamed when complete; the index,
written last, is what marks a split as done.
"""

from __future__ import annotations

import io
import json
import os
import random
import tarfile
from pathlib import Path

from tqdm import tqdm

from lowdino.data.imagefolder import FileEntry, list_split
from lowdino.data.shards import INDEX_KIND, index_path
from lowdino.errors import ConfigError, DataError

SHUFFLE_SEED = 0
SPLITS = ("train", "test")


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(payload))


def write_shards(
    entries: list[FileEntry], classes: list[str], dst: Path, split: str, shard_size: int
) -> list[dict[str, int | str]]:
    """``entries`` (already in their final order) as ``dst/<split>-NNNNNN.tar``; returns the shard list."""
    shardlist: list[dict[str, int | str]] = []
    progress = tqdm(total=len(entries), desc=f"sharding {split}", unit="img", disable=None)
    with progress:
        for number, start in enumerate(range(0, len(entries), shard_size)):
            name = f"{split}-{number:06d}.tar"
            chunk = entries[start : start + shard_size]
            tmp = dst / f".{name}.tmp"
            with tarfile.open(tmp, "w") as tar:
                for offset, entry in enumerate(chunk):
                    key = f"{start + offset:09d}"  # no dots: WebDataset splits the key at the first one
                    extension = Path(entry.path).suffix.lower().lstrip(".") or "jpg"
                    _add(tar, f"{key}.{extension}", Path(entry.path).read_bytes())
                    _add(tar, f"{key}.cls", str(entry.label).encode())
                    progress.update()
            os.replace(tmp, dst / name)
            shardlist.append({"url": name, "nsamples": len(chunk)})
    return shardlist


def shard_folder(src: str | Path, dst: str | Path, *, shard_size: int = 1000) -> dict[str, int]:
    """Shard both splits of the image folder ``src`` (either layout) into ``dst``; returns images per split."""
    if shard_size < 1:
        raise ConfigError(f"--shard-size must be >= 1 (got {shard_size})")
    dst = Path(dst).expanduser()
    if any(index_path(dst, split).exists() for split in SPLITS):
        raise DataError(f"{dst} already holds shards; remove it or choose another destination")
    dst.mkdir(parents=True, exist_ok=True)
    written = {}
    for split in SPLITS:
        listing = list_split(src, split)
        if not listing.files:
            continue
        entries = list(listing.files)
        random.Random(SHUFFLE_SEED).shuffle(entries)
        shardlist = write_shards(entries, listing.classes, dst, split, shard_size)
        index = {
            "__kind__": INDEX_KIND,
            "wids_version": 1,
            "name": split,
            "shardlist": shardlist,
            "classes": listing.classes,
        }
        index_path(dst, split).write_text(json.dumps(index, indent=1))
        written[split] = len(entries)
    return written
