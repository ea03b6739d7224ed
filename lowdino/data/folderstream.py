"""An image folder read file by file: the streaming counterpart of `load_imagefolder`.

The listing is kept as one numpy byte-string array rather than a list of Python strings: DataLoader
workers are forked, and touching millions of Python objects (reference counts) would copy their
pages into every worker; one array is a single object.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lowdino.data.cropdecode import CropSpec, decode_crops, open_image
from lowdino.data.gpudecode import encode_with_boxes
from lowdino.data.imagefolder import FolderSplit, decode_image, list_split
from lowdino.data.loader import Sample
from lowdino.data.types import LabeledImages
from lowdino.errors import DataError

# Files whose headers are read before a run starts: all unreadable means a wrong --data-path.
PROBE_COUNT = 16


def _reason(exc: Exception) -> str:
    return (str(exc).splitlines() or [""])[0] or exc.__class__.__name__


class FolderCrops(Dataset[Sample]):
    """Item i: the crops of file i (decoded at reduced scale), its label, or why it was unreadable."""

    def __init__(
        self, paths: np.ndarray, labels: torch.Tensor, specs: tuple[CropSpec, ...], *, encoded: bool = False
    ) -> None:
        self.paths, self.labels, self.specs = paths, labels, specs
        self.encoded = encoded  # bytes and boxes for decoding on the GPU (lowdino.data.gpudecode)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Sample:
        path = self.paths[index].decode()
        label = int(self.labels[index])
        try:
            if self.encoded:
                return encode_with_boxes(path, self.specs), label, None
            return decode_crops(path, self.specs), label, None
        except Exception as exc:  # one bad file must not end the run; the loader counts it
            return None, label, f"{path} ({_reason(exc)})"


@dataclass
class FolderSource:
    """One split of an image folder, streamed (see lowdino.data.loader.StreamSource)."""

    split: FolderSplit
    name: str
    paths: np.ndarray = field(init=False)
    labels: torch.Tensor = field(init=False)
    iterable: bool = False

    def __post_init__(self) -> None:
        self.paths = np.array([entry.path.encode() for entry in self.split.files])
        self.labels = torch.tensor([entry.label for entry in self.split.files], dtype=torch.int64)

    @property
    def classes(self) -> list[str]:
        return self.split.classes

    def __len__(self) -> int:
        return len(self.paths)

    def dataset(self, specs: tuple[CropSpec, ...], **layout: Any) -> FolderCrops:
        # The loader's batch sampler splits the epoch over ranks; only the decoding mode matters here.
        return FolderCrops(self.paths, self.labels, specs, encoded=bool(layout.get("encoded")))

    def hold_out(self, indices: torch.Tensor) -> tuple[FolderSource, FolderSource]:
        """(this split without the files at ``indices``, those files alone): a validation split that the
        stream never yields, chosen from the listing without decoding anything."""
        held = torch.zeros(len(self.split.files), dtype=torch.bool)
        held[indices] = True
        kept = [entry for entry, out in zip(self.split.files, held.tolist(), strict=True) if not out]
        taken = [entry for entry, out in zip(self.split.files, held.tolist(), strict=True) if out]
        return (
            FolderSource(replace(self.split, files=kept), name=self.name),
            FolderSource(replace(self.split, files=taken), name=f"{self.name} (validation)"),
        )

    def check_readable(self) -> None:
        """Fail fast when none of a spread of files opens as an image (wrong folder, wrong format)."""
        step = max(1, len(self.paths) // PROBE_COUNT)
        probes = [self.paths[i].decode() for i in range(0, len(self.paths), step)][:PROBE_COUNT]
        reasons = []
        for path in probes:
            try:
                with open_image(path):  # parses the header
                    return
            except Exception as exc:
                reasons.append(f"{path}: {_reason(exc)}")
        raise DataError(
            f"none of {len(probes)} files sampled from {self.split.root} is a readable image "
            f"({reasons[0]}); point --data-path at a folder of JPEG/PNG images in class sub-folders"
        )

    def sample_images(self, count: int | None, size: int, seed: int) -> LabeledImages:
        """A fixed random subset of ``count`` files decoded at ``size`` px (for the kNN monitor)."""
        files = self.split.files
        if count is not None and count < len(files):
            order = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))[:count]
            files = [files[int(i)] for i in order.sort().values]
        with ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) + 4)) as pool:
            decoded = list(pool.map(lambda entry: _try_decode(entry.path, size), files))
        kept = [
            (image, entry.label) for image, entry in zip(decoded, files, strict=True) if image is not None
        ]
        if not kept:
            raise DataError(
                f"no readable image among {len(files)} files of {self.split.root}; check the folder"
            )
        images = torch.from_numpy(np.stack([image for image, _ in kept])).permute(0, 3, 1, 2).contiguous()
        labels = torch.tensor([label for _, label in kept], dtype=torch.int64)
        return LabeledImages(images, labels, list(self.classes), name=self.name)


def _try_decode(path: str, size: int) -> np.ndarray | None:
    try:
        return decode_image(path, size)
    except DataError:  # skipped like in training; the loader's warning names the file
        return None


def open_folder_source(root: str, split: str, *, listing: FolderSplit | None = None) -> FolderSource:
    """``listing``: the split's files when already listed (``list_split(root, split)``)."""
    source = FolderSource(listing or list_split(root, split), name=f"imagefolder {root}")
    source.check_readable()
    return source
