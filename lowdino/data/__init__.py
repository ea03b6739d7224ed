"""Datasets decoded once into uint8 tensors, and batch iteration over them.

The training step moves uint8 batches to the device and augments them there (lowdino.augment),
so no per-image Python work happens during training.
"""

from lowdino.data.batches import BatchIterator, iterate_batches, steps_per_epoch
from lowdino.data.loading import DATASETS, load_dataset
from lowdino.data.synthetic import make_synthetic
from lowdino.data.types import LabeledImages

__all__ = [
    "DATASETS",
    "BatchIterator",
    "LabeledImages",
    "iterate_batches",
    "load_dataset",
    "make_synthetic",
    "steps_per_epoch",
]
