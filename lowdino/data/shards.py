"""Tar shards in the WebDataset layout, read with the standard library's `tarfile`.

A shard directory (written by `lowdino data shard`) holds, per split, ``<split>-NNNNNN.tar`` files
and ``<split>.json``, an index in the wids format (webdataset's shard index,
``{"__kind__": "wids-shard-index-v1", "shardlist": [{"url", "nsamples"}, ...]}``) with the class
names added. Inside a tar a sample is consecutive members sharing a key: ``<key>.jpg`` (the source
file's bytes, any image extension) and ``<key>.cls`` (the label as decimal text).

How an epoch is split (every image once per epoch over all ranks and workers, equal steps per rank):
the shards are shuffled with a seed of (seed, epoch), identical on every rank, and read as one
virtual stream of samples. Rank r takes the contiguous slice [r * S * B, (r + 1) * S * B) of it
(S steps per epoch, B images per rank and step; the tail beyond world_size * S * B waits for another
epoch's order). Within a rank, worker w owns a contiguous block of whole batches, so it reads about
1 / (ranks * workers) of the shards sequentially; a shuffle buffer mixes samples inside the block.
The DataLoader takes batches from its workers in turn, so output batch j is batch j // W of the
worker owning residue j % W. Resuming at step s re-reads (without decoding) what each worker had
already handed out and continues with exactly the remaining images: resume is exact at step
granularity provided the number of ranks and workers is unchanged.
"""

from __future__ import annotations

import io
import json
import random
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from lowdino.data.batches import _epoch_seed, steps_per_epoch
from lowdino.data.cropdecode import CropSpec, decode_crops
from lowdino.data.gpudecode import encode_with_boxes
from lowdino.data.imagefolder import decode_image
from lowdino.data.loader import Sample
from lowdino.data.types import LabeledImages
from lowdino.errors import DataError

INDEX_KIND = "wids-shard-index-v1"
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "ppm", "tif", "tiff", "gif")


@dataclass(frozen=True)
class ShardIndex:
    shards: list[Path]
    counts: list[int]
    classes: list[str]

    @property
    def total(self) -> int:
        return sum(self.counts)


def index_path(root: Path, split: str) -> Path:
    return root / f"{split}.json"


def read_index(root: str | Path, split: str) -> ShardIndex:
    root = Path(root).expanduser()
    path = index_path(root, split)
    if not path.is_file():
        raise DataError(
            f"{path} does not exist; write shards with `lowdino data shard IMAGE_FOLDER {root}` "
            "or point --data-path at a shard directory"
        )
    try:
        payload = json.loads(path.read_text())
        entries = payload["shardlist"]
        shards = [root / entry["url"] for entry in entries]
        counts = [int(entry["nsamples"]) for entry in entries]
        classes = list(payload.get("classes") or [])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a shard index ({exc}); re-run `lowdino data shard`") from exc
    missing = [shard for shard in shards if not shard.is_file()]
    if missing:
        raise DataError(
            f"shard {missing[0]} listed in {path} is missing; copy it back or re-run `lowdino data shard`"
        )
    if not shards or sum(counts) == 0:
        raise DataError(f"{path} lists no images; re-run `lowdino data shard` on a folder with images")
    return ShardIndex(shards, counts, classes)


def iter_tar_samples(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) for each sample of a WebDataset tar, read sequentially."""
    key: str | None = None
    fields: dict[str, bytes] = {}
    with tarfile.open(path, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = member.name.rsplit("/", 1)[-1]
            stem, _, extension = name.partition(".")
            if stem != key:
                if key is not None:
                    yield key, fields
                key, fields = stem, {}
            handle = tar.extractfile(member)
            fields[extension.lower()] = handle.read() if handle is not None else b""
    if key is not None:
        yield key, fields


def image_bytes(fields: dict[str, bytes]) -> bytes | None:
    return next((fields[ext] for ext in IMAGE_EXTENSIONS if ext in fields), None)


def sample_label(fields: dict[str, bytes]) -> int:
    try:
        return int(fields["cls"].decode().strip())
    except (KeyError, ValueError):
        return -1


@dataclass(frozen=True)
class _Block:
    """Samples [start, stop) of the epoch's virtual stream, and batches of it already consumed."""

    start: int
    stop: int
    skip_batches: int
    stream_seed: int


class ShardCrops(IterableDataset[Sample]):
    """The crops of this rank's samples of one epoch (module docstring); call set_epoch first."""

    def __init__(
        self,
        index: ShardIndex,
        specs: tuple[CropSpec, ...],
        *,
        batch_size: int,
        seed: int,
        rank: int,
        world_size: int,
        shuffle_buffer: int,
        encoded: bool = False,
    ) -> None:
        self.index, self.specs = index, specs
        self.encoded = encoded  # bytes and boxes for decoding on the GPU (lowdino.data.gpudecode)
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.shuffle_buffer = shuffle_buffer
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def block(self, worker: int, workers: int) -> _Block:
        steps = steps_per_epoch(self.index.total, self.batch_size, self.world_size)
        # Resuming at step s: DataLoader output j (counted from s) comes from worker j % W, which
        # must serve global batch s + j, so worker w plays the part of owner (w + s) % W.
        owner = (worker + self.start_batch) % workers
        per_owner = [steps // workers + (k < steps % workers) for k in range(workers)]
        first_batch = sum(per_owner[:owner])
        # Global batches of this owner are first_batch + m, yielded at positions owner + m * W.
        consumed = max(0, -(-(self.start_batch - owner) // workers))
        rank_start = self.rank * steps * self.batch_size
        start = rank_start + first_batch * self.batch_size
        return _Block(
            start=start,
            stop=start + per_owner[owner] * self.batch_size,
            skip_batches=min(consumed, per_owner[owner]),
            stream_seed=_epoch_seed(self.seed, self.epoch) * 1_000_003 + self.rank * 4099 + owner,
        )

    def shard_order(self) -> list[int]:
        generator = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch))
        return torch.randperm(len(self.index.shards), generator=generator).tolist()

    def raw_samples(self, start: int, stop: int) -> Iterator[tuple[bytes | None, int, str]]:
        """(image bytes, label, where) of virtual-stream positions [start, stop), in stream order."""
        offset = 0
        for shard in self.shard_order():
            count = self.index.counts[shard]
            if offset + count <= start:
                offset += count
                continue
            if offset >= stop:
                return
            path = self.index.shards[shard]
            seen = 0
            for seen, (key, fields) in enumerate(iter_tar_samples(path), start=1):
                position = offset + seen - 1
                if start <= position < stop:
                    yield image_bytes(fields), sample_label(fields), f"{path.name}:{key}"
                elif position >= stop:
                    break
            else:
                if seen != count:
                    raise DataError(
                        f"shard {path} holds {seen} samples but its index says {count}; "
                        "re-run `lowdino data shard` (was the copy interrupted?)"
                    )
            offset += count

    def shuffled(self, block: _Block) -> Iterator[tuple[bytes | None, int, str]]:
        """The block's samples through a seeded shuffle buffer (raw bytes: nothing decoded yet)."""
        rng = random.Random(block.stream_seed)
        buffer: list[tuple[bytes | None, int, str]] = []
        for item in self.raw_samples(block.start, block.stop):
            if len(buffer) < self.shuffle_buffer:
                buffer.append(item)
                continue
            pick = rng.randrange(len(buffer))
            buffer[pick], item = item, buffer[pick]
            yield item
        rng.shuffle(buffer)
        yield from buffer

    def __iter__(self) -> Iterator[Sample]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        block = self.block(worker, workers)
        skip = block.skip_batches * self.batch_size
        for position, (data, label, where) in enumerate(self.shuffled(block)):
            if position < skip:
                continue
            if data is None:
                yield None, label, f"{where} (no image member)"
                continue
            try:
                if self.encoded:
                    yield encode_with_boxes(data, self.specs), label, None
                else:
                    yield decode_crops(data, self.specs), label, None
            except Exception as exc:  # skipped and counted by the loader, never fatal
                yield None, label, f"{where} ({(str(exc).splitlines() or [''])[0] or exc.__class__.__name__})"


@dataclass
class ShardSource:
    """One split of a shard directory, streamed (see lowdino.data.loader.StreamSource)."""

    root: Path
    split: str
    index: ShardIndex
    shuffle_buffer: int = 1000
    iterable: bool = True

    @property
    def name(self) -> str:
        return f"shards {self.root}"

    @property
    def classes(self) -> list[str]:
        return self.index.classes

    def __len__(self) -> int:
        return self.index.total

    def dataset(self, specs: tuple[CropSpec, ...], **layout: Any) -> ShardCrops:
        return ShardCrops(self.index, specs, shuffle_buffer=self.shuffle_buffer, **layout)

    def sample_images(self, count: int | None, size: int, seed: int) -> LabeledImages:
        """The first ``count`` readable samples (shards are written in shuffled order) at ``size`` px."""
        del seed  # the writer already shuffled; reading from the start keeps this one sequential pass
        images, labels = [], []
        for shard in self.index.shards:
            for _key, fields in iter_tar_samples(shard):
                data = image_bytes(fields)
                if data is None:
                    continue
                try:
                    images.append(decode_image(io.BytesIO(data), size))
                except DataError:
                    continue
                labels.append(sample_label(fields))
                if count is not None and len(images) >= count:
                    break
            if count is not None and len(images) >= count:
                break
        if not images:
            raise DataError(
                f"no readable image in the {self.split} shards of {self.root}; re-run `lowdino data shard`"
            )
        tensor = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
        return LabeledImages(tensor, torch.tensor(labels, dtype=torch.int64), list(self.classes), self.name)


def open_shard_source(root: str | Path, split: str, *, shuffle_buffer: int = 1000) -> ShardSource:
    root = Path(root).expanduser()
    return ShardSource(root, split, read_index(root, split), shuffle_buffer=shuffle_buffer)
