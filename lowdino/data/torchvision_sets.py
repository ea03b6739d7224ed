"""CIFAR-10, CIFAR-100 and STL-10 through torchvision, downloaded into --data-path when online."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lowdino.data.types import LabeledImages
from lowdino.errors import DataError

DOWNLOAD_TIMEOUT_S = 30
_ARCHIVES = {
    "cifar10": "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/",
    "cifar100": "cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/",
    "stl10": "stl10_binary.tar.gz from https://cs.stanford.edu/~acoates/stl10/",
}


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    # torchvision's urllib calls have no timeout; a dropped connection would otherwise hang the run.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _dataset(name: str, root: Path, split: str, download: bool) -> Any:
    import torchvision.datasets as tvd

    if name == "stl10":
        return tvd.STL10(str(root), split=split, download=download)
    cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
    return cls(str(root), train=split == "train", download=download)


def load_torchvision(name: str, root: str | Path, split: str) -> LabeledImages:
    """The ``split`` of torchvision dataset ``name`` as uint8 (N, 3, H, W) tensors."""
    root = Path(root).expanduser()
    try:
        dataset = _dataset(name, root, split, download=False)
    except RuntimeError:  # torchvision: "Dataset not found or corrupted"
        try:
            root.mkdir(parents=True, exist_ok=True)
            with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                dataset = _dataset(name, root, split, download=True)
        except Exception as exc:
            reason = (str(exc).splitlines() or [""])[0] or exc.__class__.__name__
            raise DataError(
                f"{name} is not in {root} and could not be downloaded ({reason}); on a machine with "
                f"network download {_ARCHIVES[name]} into {root} (or run once online), or use "
                "--dataset imagefolder / synthetic"
            ) from exc
    if name == "stl10":
        images = torch.from_numpy(np.ascontiguousarray(dataset.data))  # already (N, 3, 96, 96)
        labels = torch.as_tensor(np.asarray(dataset.labels), dtype=torch.int64)
    else:
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()  # (N, 32, 32, 3) in file
        labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
    return LabeledImages(images, labels, list(dataset.classes), name=name)
