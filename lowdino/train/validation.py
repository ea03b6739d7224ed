"""The validation split: a seeded, class-stratified part of the training split, held out of training.

Everything that guides a run or a recipe (the kNN monitor, tuning runs, "best" figures) reads this
split; the test split is for the final evaluation only. The split depends only on the labels and the
fraction (seed VAL_SPLIT_SEED, not the run's seed), so runs with different seeds, and every tuning
run of a recipe, hold out the same images and their validation figures are comparable.
"""

from __future__ import annotations

import torch

from lowdino.data import LabeledImages
from lowdino.eval.subsets import stratified_subset

VAL_SPLIT_SEED = 0


def validation_indices(
    labels: torch.Tensor, fraction: float, class_names: list[str] | None = None
) -> torch.Tensor:
    """Sorted indices of the validation images: round(fraction * N_c) of every class c."""
    return stratified_subset(labels, fraction, VAL_SPLIT_SEED, class_names=class_names)


def split_validation(train: LabeledImages, fraction: float) -> tuple[LabeledImages, LabeledImages]:
    """(the training images left for training, the validation images); disjoint, together all of them."""
    val_index = validation_indices(train.labels, fraction, train.classes)
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[val_index] = False
    return train.subset(keep.nonzero().squeeze(1)), train.subset(val_index)
