"""Batches of an in-memory dataset: a seeded permutation per epoch, sharded over ranks.

Every rank draws the same permutation (seeded by seed and epoch). Step s takes the global batch
order[s * G : (s + 1) * G] with G = batch_size * world_size and hands rank r its entries
r, r + world_size, ... So across ranks every index is used exactly once per epoch, and no rank
needs to talk to another. ``batch_size`` is per rank (as in DistributedSampler); --batch-size is
the global G, split by the trainer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from lowdino.data.types import LabeledImages
from lowdino.errors import ConfigError, DataError

# Move the whole dataset to the GPU when it takes at most this share of the free memory: indexing
# on the device then replaces one host-to-device copy per step.
PRELOAD_SHARE = 0.25


def steps_per_epoch(n: int, batch_size: int, world_size: int = 1, drop_last: bool = True) -> int:
    """Steps per epoch, identical on every rank: ``batch_size`` images per rank, ``world_size`` ranks."""
    global_batch = batch_size * world_size
    return n // global_batch if drop_last else math.ceil(n / global_batch)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % (2**63)


def epoch_order(n: int, *, seed: int, epoch: int, shuffle: bool = True) -> torch.Tensor:
    """The permutation of ``range(n)`` for ``epoch`` (identical on every rank)."""
    if not shuffle:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
    return torch.randperm(n, generator=generator)


def rank_batches(
    n: int,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
    shuffle: bool = True,
    drop_last: bool = True,
    start_batch: int = 0,
) -> list[torch.Tensor]:
    """Rank ``rank``'s indices (into ``range(n)``) for each step of ``epoch`` from ``start_batch`` on.

    The one sharding rule of the in-memory and the streaming image-folder paths (module docstring).
    """
    order = epoch_order(n, seed=seed, epoch=epoch, shuffle=shuffle)
    global_batch = batch_size * world_size
    steps = steps_per_epoch(n, batch_size, world_size, drop_last)
    return [
        order[step * global_batch : (step + 1) * global_batch][rank::world_size]
        for step in range(start_batch, steps)
    ]


class BatchIterator:
    """Iterate (images uint8 (b, 3, H, W), labels int64 (b,)) on ``device``, b = batch_size.

    ``start_batch`` skips the first batches of the epoch (resuming mid-epoch sees the same order).
    """

    def __init__(
        self,
        data: LabeledImages,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
        start_batch: int = 0,
        preload: bool | None = None,
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is outside 0..{world_size - 1}; check the launcher's environment")
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1 (got {batch_size})")
        global_batch = batch_size * world_size
        if drop_last and global_batch > len(data):
            raise DataError(
                f"batch size {global_batch} is larger than the {len(data)} training images of {data.name}; "
                "lower --batch-size"
            )
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = epoch
        self.rank = rank
        self.world_size = world_size
        self.device = torch.device(device)
        self.start_batch = start_batch
        self._images, self._labels = data.images, data.labels
        self._preloaded = self.device.type == "cuda" and self._should_preload(preload)
        if self._preloaded:
            self._images = self._images.to(self.device)
            self._labels = self._labels.to(self.device)

    def _should_preload(self, preload: bool | None) -> bool:
        if preload is not None:
            return preload
        free, _total = torch.cuda.mem_get_info(self.device)
        return self.data.images.nbytes <= free * PRELOAD_SHARE

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.start_batch = 0

    def __len__(self) -> int:
        """Batches this iterator yields (the epoch's steps minus ``start_batch``)."""
        total = steps_per_epoch(len(self.data), self.batch_size, self.world_size, self.drop_last)
        return max(0, total - self.start_batch)

    def epoch_order(self) -> torch.Tensor:
        """The permutation of this epoch (identical on every rank)."""
        return epoch_order(len(self.data), seed=self.seed, epoch=self.epoch, shuffle=self.shuffle)

    def rank_indices(self) -> list[torch.Tensor]:
        """This rank's indices for each remaining step. With drop_last=False and several ranks the
        last step may hand a rank fewer (even zero) images; training uses drop_last=True."""
        return rank_batches(
            len(self.data),
            self.batch_size,
            seed=self.seed,
            epoch=self.epoch,
            rank=self.rank,
            world_size=self.world_size,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
            start_batch=self.start_batch,
        )

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for indices in self.rank_indices():
            if self._preloaded:
                index = indices.to(self._images.device)
                yield self._images[index], self._labels[index]
                continue
            images, labels = self._images[indices], self._labels[indices]
            if self.device.type == "cuda":
                # Pinned pages let the copy run asynchronously with the previous step's compute.
                images, labels = images.pin_memory(), labels.pin_memory()
            yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)


def iterate_batches(
    data: LabeledImages,
    batch_size: int,
    *,
    shuffle: bool,
    drop_last: bool,
    seed: int = 0,
    epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
    device: torch.device | str = "cpu",
    start_batch: int = 0,
) -> BatchIterator:
    """A `BatchIterator` over one epoch: ``batch_size`` images per rank (see the module docstring)."""
    return BatchIterator(
        data,
        batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        seed=seed,
        epoch=epoch,
        rank=rank,
        world_size=world_size,
        device=device,
        start_batch=start_batch,
    )
