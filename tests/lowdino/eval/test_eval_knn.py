"""kNN protocols against plain reference implementations (brute force, scikit-learn)."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from lowdino.errors import DataError
from lowdino.eval.knn import (
    blocked_topk,
    nearest_neighbour_predict,
    nearest_neighbour_top1,
    top1_percent,
    weighted_knn_predict,
    weighted_knn_scores,
    weighted_knn_top1,
)


def brute_force_weighted_knn(train, train_labels, test, k, temperature, num_classes):
    """DINO's eval_knn vote written out one query at a time, in float64."""
    predictions = []
    for query in test.double():
        sims = [
            float(query @ row / (query.norm() * row.norm())) for row in train.double()
        ]  # cosine to every bank entry
        order = sorted(range(len(sims)), key=lambda j: -sims[j])[:k]
        votes = [0.0] * num_classes
        for j in order:
            votes[int(train_labels[j])] += math.exp(sims[j] / temperature)
        predictions.append(max(range(num_classes), key=lambda c: votes[c]))
    return torch.tensor(predictions)


def clustered(n, num_classes, dim, generator, spread=1.5):
    centres = torch.randn(num_classes, dim, generator=generator) * 2
    labels = torch.randint(0, num_classes, (n,), generator=generator)
    return centres[labels] + spread * torch.randn(n, dim, generator=generator), labels


@pytest.mark.parametrize(("k", "temperature", "chunk_size"), [(1, 0.07, 7), (5, 0.07, 64), (20, 0.5, 13)])
def test_weighted_knn_matches_brute_force(k, temperature, chunk_size):
    generator = torch.Generator().manual_seed(k)
    train, train_labels = clustered(300, 6, 12, generator)
    test, _ = clustered(60, 6, 12, generator)
    expected = brute_force_weighted_knn(train, train_labels, test, k, temperature, 6)
    got = weighted_knn_predict(train, train_labels, test, k=k, temperature=temperature, chunk_size=chunk_size)
    assert torch.equal(got, expected)


@pytest.mark.parametrize(("n", "k", "block"), [(1000, 5, 8), (1003, 5, 8), (997, 20, 4), (50, 5, 8)])
def test_blocked_topk_finds_the_same_entries_as_topk(n, k, block):
    similarity = torch.randn(37, n, generator=torch.Generator().manual_seed(n))
    values, columns = blocked_topk(similarity, k, block=block)
    expected = similarity.topk(k, dim=1).values
    assert torch.equal(values.sort(dim=1, descending=True).values, expected)
    assert torch.equal(similarity.gather(1, columns), values)  # indices point at those values


def test_weighted_knn_uses_the_blocked_path_and_matches_brute_force():
    generator = torch.Generator().manual_seed(11)
    # 4 * k * 128 = 2560 columns: large enough for the two-stage top-k, with an incomplete tail block.
    train, train_labels = clustered(2600, 5, 8, generator)
    test, _ = clustered(40, 5, 8, generator)
    expected = brute_force_weighted_knn(train, train_labels, test, 5, 0.07, 5)
    assert torch.equal(weighted_knn_predict(train, train_labels, test, k=5), expected)


def test_weighted_knn_is_scale_invariant_and_chunk_invariant():
    generator = torch.Generator().manual_seed(3)
    train, train_labels = clustered(200, 4, 8, generator)
    test, _ = clustered(50, 4, 8, generator)
    base = weighted_knn_scores(train, train_labels, test, chunk_size=1000)
    scaled = weighted_knn_scores(train * 7.0, train_labels, test * 0.01, chunk_size=3)
    torch.testing.assert_close(base, scaled, rtol=1e-4, atol=1e-5)


def test_weighted_knn_scores_sum_the_top_k_weights():
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    scores = weighted_knn_scores(train, labels, torch.tensor([[1.0, 0.0]]), k=2, temperature=1.0)
    # Neighbours: itself (cos 1, class 0) and [1, 1] (cos 1/sqrt 2, class 1); [0, 1] (cos 0) is third.
    expected = torch.tensor([[math.exp(1.0), math.exp(1 / math.sqrt(2))]])
    torch.testing.assert_close(scores, expected)


def test_weighted_knn_top1_on_separable_clusters_and_num_classes():
    generator = torch.Generator().manual_seed(0)
    train, train_labels = clustered(400, 5, 16, generator, spread=0.1)
    # Queries close to bank entries of tight clusters: every vote goes to the right class.
    test, test_labels = train[:100] + 0.01, train_labels[:100]
    assert weighted_knn_top1(train, train_labels, test, test_labels) == 100.0
    scores = weighted_knn_scores(train, train_labels, test, num_classes=9)
    assert scores.shape == (100, 9)
    assert torch.all(scores[:, 5:] == 0)


def test_k_larger_than_the_memory_bank_uses_every_entry():
    train = torch.randn(4, 3)
    labels = torch.tensor([0, 0, 0, 1])
    predictions = weighted_knn_predict(train, labels, torch.randn(5, 3), k=50, temperature=100.0)
    # With T large every neighbour weighs about the same: three votes for class 0 beat one for class 1.
    assert torch.equal(predictions, torch.zeros(5, dtype=torch.long))


def test_seed_protocol_reproduces_sklearn_1nn():
    generator = torch.Generator().manual_seed(1)
    # Raw features with very different norms: Euclidean 1-NN must not normalise them.
    train = torch.randn(250, 10, generator=generator) * torch.rand(250, 1, generator=generator) * 10
    train_labels = torch.randint(0, 7, (250,), generator=generator)
    test = torch.randn(80, 10, generator=generator) * 5
    reference = KNeighborsClassifier(n_neighbors=1, algorithm="brute", metric="euclidean")
    reference.fit(train.numpy(), train_labels.numpy())
    expected = torch.from_numpy(reference.predict(test.numpy()))
    got = nearest_neighbour_predict(train, train_labels, test, chunk_size=17)
    assert torch.equal(got, expected)
    test_labels = torch.randint(0, 7, (80,), generator=generator)
    assert nearest_neighbour_top1(train, train_labels, test, test_labels) == pytest.approx(
        100.0 * float((expected == test_labels).float().mean())
    )


def test_top1_percent():
    assert top1_percent(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 0, 0])) == 50.0


@pytest.mark.parametrize(
    ("train", "labels", "test", "match"),
    [
        (torch.randn(5, 3), torch.zeros(5, dtype=torch.long), torch.randn(2, 4), "dim 3"),
        (torch.randn(5, 3), torch.zeros(4, dtype=torch.long), torch.randn(2, 3), "one integer label"),
        (torch.randn(5, 3, 1), torch.zeros(5, dtype=torch.long), torch.randn(2, 3), "2-D"),
        (torch.randn(0, 3), torch.zeros(0, dtype=torch.long), torch.randn(2, 3), "empty"),
        (torch.randn(5, 3), torch.full((5,), -1), torch.randn(2, 3), ">= 0"),
    ],
)
def test_bad_inputs_raise_one_line(train, labels, test, match):
    with pytest.raises(DataError, match=match) as info:
        weighted_knn_predict(train, labels, test)
    assert "\n" not in str(info.value)


def test_label_beyond_num_classes_is_an_error():
    with pytest.raises(DataError, match="num_classes=2"):
        weighted_knn_predict(torch.randn(3, 2), torch.tensor([0, 1, 2]), torch.randn(1, 2), num_classes=2)
