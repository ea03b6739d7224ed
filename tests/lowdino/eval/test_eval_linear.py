"""Linear probe on frozen features."""

from __future__ import annotations

import pytest
import torch

from lowdino.errors import DataError
from lowdino.eval.linear import linear_probe_top1, predict, train_linear_probe


def separable(n: int, generator: torch.Generator, num_classes: int = 4, dim: int = 16):
    """Tight, well-separated class clusters behind an offset and very unequal per-dimension scales.

    The scales (0.1 to 30) make an unstandardised Adam probe slow; the margin makes 100 % reachable.
    """
    centres = torch.randn(num_classes, dim, generator=torch.Generator().manual_seed(99)) * 3
    labels = torch.randint(0, num_classes, (n,), generator=generator)
    features = centres[labels] + 0.3 * torch.randn(n, dim, generator=generator)
    return features * torch.linspace(0.1, 30, dim) + 5.0, labels


def test_linearly_separable_features_reach_almost_100():
    generator = torch.Generator().manual_seed(0)
    train, train_labels = separable(600, generator)
    test, test_labels = separable(300, generator)
    top1 = linear_probe_top1(train, train_labels, test, test_labels, epochs=100, lr=0.01)
    assert top1 >= 99.0


def test_mini_batch_training_also_separates():
    generator = torch.Generator().manual_seed(1)
    train, train_labels = separable(600, generator)
    test, test_labels = separable(300, generator)
    top1 = linear_probe_top1(train, train_labels, test, test_labels, epochs=10, lr=0.01, batch_size=64)
    assert top1 >= 99.0


def test_standardisation_uses_training_statistics_only():
    generator = torch.Generator().manual_seed(2)
    train, train_labels = separable(200, generator)
    probe = train_linear_probe(train, train_labels, epochs=1)
    torch.testing.assert_close(probe.mean, train.mean(dim=0))
    torch.testing.assert_close(probe.std, train.std(dim=0, unbiased=False))
    raw = train_linear_probe(train, train_labels, epochs=1, standardize=False)
    assert torch.all(raw.mean == 0)
    assert torch.all(raw.std == 1)


def test_same_seed_same_probe_and_predictions_shape():
    generator = torch.Generator().manual_seed(3)
    train, labels = separable(100, generator)
    first = train_linear_probe(train, labels, epochs=5, batch_size=16, seed=4)
    second = train_linear_probe(train, labels, epochs=5, batch_size=16, seed=4)
    other = train_linear_probe(train, labels, epochs=5, batch_size=16, seed=5)
    assert torch.equal(first.linear.weight, second.linear.weight)
    assert not torch.equal(first.linear.weight, other.linear.weight)
    predictions = predict(first, train, batch_size=7)
    assert predictions.shape == (100,)
    assert predictions.dtype == torch.long


def test_num_classes_larger_than_seen_labels():
    probe = train_linear_probe(torch.randn(10, 3), torch.tensor([0, 1] * 5), num_classes=10, epochs=1)
    assert probe.linear.out_features == 10


def test_bad_inputs():
    with pytest.raises(DataError, match="do not match"):
        train_linear_probe(torch.randn(5, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(DataError, match="empty"):
        train_linear_probe(torch.randn(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(DataError, match=r"0\.\.1"):
        train_linear_probe(torch.randn(3, 3), torch.tensor([0, 1, 2]), num_classes=2)
    with pytest.raises(DataError, match="dim 3"):
        linear_probe_top1(
            torch.randn(4, 3), torch.zeros(4, dtype=torch.long), torch.randn(2, 5), torch.zeros(2)
        )
