"""Label-fraction subsets: stratified, seeded, nested across fractions, identical for every caller."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lowdino.errors import DataError
from lowdino.eval.subsets import stratified_cap, stratified_subset


@pytest.fixture
def labels() -> torch.Tensor:
    # Unequal classes: 500 / 300 / 200 images, interleaved like a shuffled dataset.
    values = torch.tensor([0] * 500 + [1] * 300 + [2] * 200)
    return values[torch.randperm(1000, generator=torch.Generator().manual_seed(5))]


def test_each_class_keeps_its_fraction(labels):
    index = stratified_subset(labels, 0.1, seed=0)
    counts = torch.bincount(labels[index], minlength=3).tolist()
    assert counts == [50, 30, 20]
    assert index.dtype == torch.long
    assert torch.equal(index, index.unique())  # sorted, no repeats


def test_same_inputs_give_the_same_indices_for_every_call(labels):
    first = stratified_subset(labels, 0.3, seed=7)
    # A list copy stands in for "another model, same dataset": only labels, fraction and seed matter.
    second = stratified_subset(labels.tolist(), 0.3, seed=7)
    third = stratified_subset(np.asarray(labels), 0.3, seed=7)
    assert torch.equal(first, second)
    assert torch.equal(first, third)


def test_seeds_differ_and_fractions_nest(labels):
    small, large = stratified_subset(labels, 0.1, seed=1), stratified_subset(labels, 0.3, seed=1)
    assert set(small.tolist()) <= set(large.tolist())
    other_seed = stratified_subset(labels, 0.1, seed=2)
    assert not torch.equal(small, other_seed)
    assert torch.equal(torch.bincount(labels[small]), torch.bincount(labels[other_seed]))


def test_full_fraction_is_the_whole_set(labels):
    assert torch.equal(stratified_subset(labels, 1.0, seed=3), torch.arange(1000))


def test_empty_class_names_the_class_and_the_smallest_fraction(labels):
    with pytest.raises(DataError) as info:
        # 0.002 keeps 1.0 -> 1 plane and 0.6 -> 1 car but 0.4 -> 0 cats.
        stratified_subset(labels, 0.002, seed=0, class_names=["plane", "car", "cat"])
    # floor(f * 200 + 0.5) >= 1 needs f >= 0.0025, shown rounded up to 0.003.
    assert str(info.value) == "fraction 0.002 leaves class 'cat' with no image; use a fraction >= 0.003"
    assert stratified_subset(labels, 0.003, seed=0).numel() > 0
    # Exactly half an image rounds up: 0.001 of 500 planes keeps one.
    assert stratified_subset(torch.zeros(500, dtype=torch.long), 0.001, seed=0).numel() == 1


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_fraction_outside_unit_interval(labels, fraction):
    with pytest.raises(DataError, match="outside"):
        stratified_subset(labels, fraction, seed=0)


def test_cap_is_exact_and_proportional(labels):
    index = stratified_cap(labels, 101, seed=0)
    assert index.numel() == 101
    counts = torch.bincount(labels[index], minlength=3).tolist()
    assert counts == [51, 30, 20]  # quotas 50.5 / 30.3 / 20.2: the largest remainder gets the extra
    assert torch.equal(stratified_cap(labels, 5000, seed=0), torch.arange(1000))
    assert not torch.equal(stratified_cap(labels, 100, seed=0), stratified_cap(labels, 100, seed=1))


def test_empty_labels_are_an_error():
    with pytest.raises(DataError, match="empty"):
        stratified_subset(torch.zeros(0, dtype=torch.long), 0.5, seed=0)
