"""Class-stratified, seeded label subsets that are identical for every model.

The indices depend only on (labels, fraction or count, seed): one permutation of all N indices is
drawn from numpy's legacy ``RandomState(seed)``, whose stream numpy keeps frozen across versions,
and each class keeps the first ``n_c`` of its indices in that order. Hence

* every model evaluated on the same dataset gets the same images;
* for a fixed seed, the subset at a smaller fraction is contained in the one at a larger fraction
  (the 10 % images are part of the 30 % images), while different seeds give different subsets.

Per class c with N_c images, ``stratified_subset`` keeps ``floor(fraction * N_c + 0.5)`` images and
``stratified_cap`` keeps about ``count * N_c / N`` (largest remainders, exactly ``count`` in total).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from lowdino.errors import DataError

LabelsLike = Tensor | np.ndarray | Sequence[int]


def _as_numpy(labels: LabelsLike) -> np.ndarray:
    array = labels.cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if array.ndim != 1:
        raise DataError(f"labels must be one integer per image, got shape {array.shape}")
    if array.size == 0:
        raise DataError("cannot take a labelled subset of an empty dataset; check the dataset split")
    return array.astype(np.int64, copy=False)


def _class_order(labels: np.ndarray, seed: int) -> dict[int, np.ndarray]:
    """Indices of every class, in the order of one seeded permutation of all indices."""
    if not 0 <= seed < 2**32:
        raise DataError(f"subset seed must be in 0..2**32-1, got {seed}")
    permutation = np.random.RandomState(seed).permutation(labels.size)
    permuted_labels = labels[permutation]
    return {int(c): permutation[permuted_labels == c] for c in np.unique(labels)}


def _class_name(label: int, class_names: Sequence[str] | None) -> str:
    if class_names is not None and 0 <= label < len(class_names):
        return class_names[label]
    return str(label)


def _round_half_up(value: float) -> int:
    # Python's round() sends 0.5 to 0, which would break the "fraction >= 0.5 / n" promise.
    return math.floor(value + 0.5)


def _gather(order: dict[int, np.ndarray], counts: dict[int, int]) -> Tensor:
    chosen = np.concatenate([order[c][: counts[c]] for c in sorted(order)])
    return torch.from_numpy(np.sort(chosen)).long()


def stratified_subset(
    labels: LabelsLike, fraction: float, seed: int, *, class_names: Sequence[str] | None = None
) -> Tensor:
    """Sorted int64 indices of ``floor(fraction * N_c + 0.5)`` images of every class c.

    Raises DataError when the fraction is outside (0, 1] or leaves a class without any image.
    """
    if not 0 < fraction <= 1:
        raise DataError(f"label fraction {fraction} is outside (0, 1]; pass e.g. 0.1 for 10 % of the labels")
    array = _as_numpy(labels)
    order = _class_order(array, seed)
    counts = {c: _round_half_up(fraction * indices.size) for c, indices in order.items()}
    empty = [c for c, count in counts.items() if count == 0]
    if empty:
        smallest = min(order[c].size for c in order)
        # Rounding half up, f * n >= 0.5 keeps one image of the smallest class.
        needed = math.ceil(0.5 / smallest * 1000) / 1000
        raise DataError(
            f"fraction {fraction} leaves class {_class_name(empty[0], class_names)!r} with no image; "
            f"use a fraction >= {needed:g}"
        )
    return _gather(order, counts)


def stratified_cap(labels: LabelsLike, count: int, seed: int) -> Tensor:
    """Sorted int64 indices of exactly ``min(count, N)`` images, classes in proportion to their size.

    Used to cap a memory bank or evaluation set; a class may get no image only when ``count`` is
    smaller than the number of classes.
    """
    array = _as_numpy(labels)
    if count < 1:
        raise DataError(f"a subset needs at least one image, got count {count}")
    if count >= array.size:
        return torch.arange(array.size, dtype=torch.long)
    order = _class_order(array, seed)
    quotas = {c: count * indices.size / array.size for c, indices in order.items()}
    counts = {c: math.floor(q) for c, q in quotas.items()}
    leftover = count - sum(counts.values())
    # Largest remainder first; ties go to the smaller class id so the result stays deterministic.
    for c in sorted(quotas, key=lambda c: (-(quotas[c] - counts[c]), c))[:leftover]:
        counts[c] += 1
    return _gather(order, counts)
