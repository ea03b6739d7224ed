"""Streaming batches: torch DataLoader workers decode and crop, the training device augments.

Workers return, per image, the uint8 crops of every `CropSpec` (lowdino.data.cropdecode) or a note
that the file was unreadable; `collate_samples` stacks the readable ones into a `CropBatch` and
lists the rest. `StreamingBatches` counts and logs skipped files (a run never dies on one bad
JPEG), pins host memory and copies to the device without blocking, so the copy of batch k + 1
overlaps the compute of batch k.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from lowdino.data.batches import rank_batches, steps_per_epoch
from lowdino.data.cropdecode import CropSpec
from lowdino.data.gpudecode import Encoded, check_decode_device, crops_on_device, decode_batch
from lowdino.data.types import CropBatch
from lowdino.errors import DataError
from lowdino.resources import plan_resources, this_machine

logger = logging.getLogger("lowdino.train.data")

# (crops per spec, or encoded bytes and boxes for GPU decoding, or None when unreadable; label;
# why it was skipped or None)
Sample = tuple[list[torch.Tensor] | Encoded | None, int, str | None]
# Stacked crops per spec, or the encoded bytes and boxes of each image; labels; skipped notes.
Collated = tuple[
    list[torch.Tensor] | tuple[list[torch.Tensor], list[list[torch.Tensor]]] | CropBatch,
    torch.Tensor,
    list[str],
]

# Skipped files are logged one by one up to this count, then only counted.
MAX_LOGGED_SKIPS = 20


@dataclass(frozen=True)
class LoaderOptions:
    num_workers: int | None = None  # None: the resource plan's (lowdino.resources) for this machine
    prefetch_factor: int = 2
    persistent_workers: bool = True
    pin_memory: bool | None = None  # None: when the device is CUDA

    def workers(self, device_type: str = "cpu") -> int:
        if self.num_workers is not None:
            return self.num_workers
        return plan_resources(this_machine(device_type)).loader_workers


class StreamSource(Protocol):
    """A training set read image by image (folder files or tar shards), never decoded as a whole."""

    iterable: bool  # IterableDataset (shards) rather than indexable (folder files)

    @property
    def name(self) -> str: ...

    @property
    def classes(self) -> list[str]: ...

    def __len__(self) -> int: ...

    def dataset(self, specs: tuple[CropSpec, ...], **layout: Any) -> Dataset[Sample]:
        """``layout``: batch_size (per rank), seed, rank, world_size, for sources that split epochs themselves."""
        ...


def collate_samples(samples: Sequence[Sample]) -> Collated:
    """Readable samples -> uint8 groups (B, count, 3, size, size), labels; skipped notes."""
    good = [sample for sample in samples if sample[0] is not None]
    skipped = [sample[2] or "unreadable" for sample in samples if sample[0] is None]
    labels = torch.tensor([sample[1] for sample in good], dtype=torch.int64)
    if not good:
        return [], labels, skipped
    if isinstance(good[0][0], tuple):  # decoded later, on the GPU
        pairs = [cast(Encoded, sample[0]) for sample in good]
        encoded = [torch.from_numpy(data.copy()) for data, _ in pairs]
        return (encoded, [boxes for _, boxes in pairs]), labels, skipped
    groups = []
    for index in range(len(good[0][0])):  # type: ignore[arg-type]
        groups.append(torch.stack([cast(list[torch.Tensor], sample[0])[index] for sample in good]))
    return groups, labels, skipped


class AugmentingCollate:
    """`collate_samples`, then the photometric chain of ``augmentation`` on the batch, in the worker.

    The views leave the worker as uint8 (the chain's [0, 1] output rounded to 1/255, as DINO's PIL
    pipeline is at every step) and the training process only normalises them
    (`MultiCropAugmentation.normalize_views`): float views would be four times the bytes to hand
    over, which cost more CPU per image than augmenting in the training process did (72.7 against
    90.1 images per CPU-second on the ImageNet-like benchmark, benchmarks/data_speed.py).
    """

    def __init__(self, augmentation: nn.Module) -> None:
        self.augmentation = augmentation

    def __call__(self, samples: Sequence[Sample]) -> Collated:
        groups, labels, skipped = collate_samples(samples)
        if not isinstance(groups, list) or not groups:
            return groups, labels, skipped
        with torch.no_grad():
            views = self.augmentation.augment_crops(CropBatch(groups), quantize=True)  # type: ignore[operator]
        return CropBatch([], views), labels, skipped


class EpochBatchSampler(Sampler[list[int]]):
    """This rank's batches of one epoch: the in-memory path's rule (`rank_batches`), so each image
    is used once per epoch over all ranks and a resumed epoch continues at ``start_batch``."""

    def __init__(self, n: int, batch_size: int, *, seed: int, rank: int, world_size: int) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def _batches(self) -> list[torch.Tensor]:
        return rank_batches(
            self.n,
            self.batch_size,
            seed=self.seed,
            epoch=self.epoch,
            rank=self.rank,
            world_size=self.world_size,
            start_batch=self.start_batch,
        )

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._batches():
            yield batch.tolist()

    def __len__(self) -> int:
        return max(0, steps_per_epoch(self.n, self.batch_size, self.world_size) - self.start_batch)


class StreamingBatches:
    """(CropBatch, labels) on ``device`` for each step of an epoch, from DataLoader workers."""

    def __init__(
        self,
        source: StreamSource,
        specs: tuple[CropSpec, ...],
        batch_size: int,
        *,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
        options: LoaderOptions | None = None,
        decode_device: str = "cpu",
        augment_in_workers: nn.Module | None = None,
    ) -> None:
        """``augment_in_workers``: a CPU augmentation whose photometric chain the workers apply
        (batches then carry uint8 views; see `AugmentingCollate`)."""
        self.source, self.specs, self.batch_size = source, specs, batch_size
        self.gpu_decode = decode_device == "cuda"
        self.augment_in_workers = augment_in_workers if not self.gpu_decode else None
        self.world_size = world_size
        self.device = torch.device(device)
        check_decode_device(decode_device, self.device)
        self.options = options or LoaderOptions()
        if batch_size * world_size > len(source):
            raise DataError(
                f"batch size {batch_size * world_size} is larger than the {len(source)} training images of "
                f"{source.name}; lower --batch-size"
            )
        self.skipped = 0  # unreadable files met so far by this process
        self.dataset = source.dataset(
            specs, batch_size=batch_size, seed=seed, rank=rank, world_size=world_size, encoded=self.gpu_decode
        )
        self.sampler: EpochBatchSampler | None = None
        if not source.iterable:
            self.sampler = EpochBatchSampler(
                len(source), batch_size, seed=seed, rank=rank, world_size=world_size
            )
        self._loader: DataLoader[Any] | None = None

    def __len__(self) -> int:
        return steps_per_epoch(len(self.source), self.batch_size, self.world_size)

    def _make_loader(self) -> DataLoader[Any]:
        workers = self.options.workers(self.device.type)
        pin = self.options.pin_memory if self.options.pin_memory is not None else self.device.type == "cuda"
        common: dict[str, Any] = {
            "num_workers": workers,
            "collate_fn": collate_samples
            if self.augment_in_workers is None
            else AugmentingCollate(self.augment_in_workers),
            "pin_memory": pin,
        }
        if workers:
            common["prefetch_factor"] = self.options.prefetch_factor
            # Shard streams get their epoch when their workers start, so they never persist.
            common["persistent_workers"] = self.options.persistent_workers and self.sampler is not None
        if self.sampler is not None:
            return DataLoader(self.dataset, batch_sampler=self.sampler, **common)
        return DataLoader(self.dataset, batch_size=self.batch_size, **common)

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[CropBatch, torch.Tensor]]:
        """The batches of ``epoch`` from step ``start_batch`` on (resuming mid-epoch)."""
        if self.sampler is not None:
            self.sampler.set_epoch(epoch, start_batch)
            if self._loader is None:
                self._loader = self._make_loader()
            loader = self._loader
        else:
            self.dataset.set_epoch(epoch, start_batch)  # type: ignore[attr-defined]
            loader = self._make_loader()
        for first, labels, skipped in loader:
            if isinstance(first, tuple):
                first, labels = self._decode_on_device(first[0], first[1], labels, skipped)
            self._note_skipped(skipped)
            if not first:
                raise DataError(
                    f"every image of a batch of {self.batch_size} from {self.source.name} is unreadable "
                    f"(first: {skipped[0]}); check the files or the --data-path"
                )
            batch = first if isinstance(first, CropBatch) else CropBatch(first)
            yield batch.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)

    def _decode_on_device(
        self,
        encoded: list[torch.Tensor],
        boxes: list[list[torch.Tensor]],
        labels: torch.Tensor,
        skipped: list[str],
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        images = decode_batch(encoded, self.device)
        keep = [index for index, image in enumerate(images) if image is not None]
        skipped += ["(undecodable on the device)"] * (len(images) - len(keep))
        if not keep:
            return [], labels[:0]
        groups = crops_on_device([images[i] for i in keep], [boxes[i] for i in keep], self.specs)  # type: ignore[misc]
        return groups, labels[keep]

    def _note_skipped(self, skipped: list[str]) -> None:
        for note in skipped:
            self.skipped += 1
            if self.skipped <= MAX_LOGGED_SKIPS:
                logger.warning("skipped unreadable image %s (%d skipped so far)", note, self.skipped)
            elif self.skipped == MAX_LOGGED_SKIPS + 1:
                logger.warning("more unreadable images: now only counted (metric skipped_images)")
