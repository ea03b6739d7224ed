"""k-nearest-neighbour classification of frozen features.

Two protocols:

* DINO's weighted kNN (``eval_knn.py`` of facebookresearch/dino). Features are L2-normalised, so the
  dot product is the cosine similarity ``s_ij = <x_i, m_j> / (|x_i| |m_j|)``. Each query takes its
  ``k`` most similar memory-bank entries and class ``c`` gets the score

      score_i(c) = sum_{j in topk(i)} exp(s_ij / T) * [y_j == c]

  and the prediction is ``argmax_c score_i(c)``. DINO uses k=20, T=0.07.
* The original LowDINO "seed" protocol: 1-nearest neighbour by Euclidean distance on the raw
  (un-normalised) features, ``argmin_j |x_i - m_j|^2``.

Shapes: N train (memory bank) rows, Q test (query) rows, D feature dim, C classes, k neighbours.
The similarity matrix is never materialised whole: queries go through in chunks of ``chunk_size``
rows, each a (chunk, N) matrix product followed by a two-stage top-k (`blocked_topk`) on the
features' device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lowdino.errors import DataError

# Queries per matrix product; a (512, 50 000) fp32 block is 100 MB. Of 128/256/512/1024, 512 gave
# the lowest time relative to the bare matrix product in benchmarks/knn_speed.py on 2 CPU threads
# (smaller chunks pay a thread barrier per GEMM call more often).
DEFAULT_CHUNK_SIZE = 512


# Column block of the two-stage top-k (see `blocked_topk`); measured fastest of 32-256 on CPU.
TOPK_BLOCK = 128


def blocked_topk(similarity: Tensor, k: int, block: int = TOPK_BLOCK) -> tuple[Tensor, Tensor]:
    """Row-wise top-k (values, column indices), unsorted, of a (R, N) matrix in two cheap stages.

    Cut each row into blocks of ``block`` columns and keep the k blocks with the largest maxima
    (plus the incomplete last block): every top-k entry lies in one of them, because an entry
    outside those blocks has k larger block maxima, i.e. k larger entries, above it. The final
    top-k then runs over k * block candidates instead of N. On the CPU, where torch's topk is a
    single-threaded selection pass and a blocked max a vectorised reduction, this took 7-13 ms
    instead of 21 ms for a (512, 50 000) block. Ties may resolve to other columns than
    ``torch.topk``'s, with the same values.
    """
    rows, n = similarity.shape
    blocks = n // block
    if blocks < 4 * k:  # too few blocks to discard any meaningful share of the row
        return similarity.topk(k, dim=1, largest=True, sorted=False)
    full = blocks * block
    block_max = similarity[:, :full].unflatten(1, (blocks, block)).amax(dim=2)  # (R, blocks)
    best = block_max.topk(k, dim=1, sorted=False).indices  # (R, k)
    offsets = torch.arange(block, device=similarity.device)
    columns = (best[:, :, None] * block + offsets).flatten(1)  # (R, k * block)
    if full < n:
        tail = torch.arange(full, n, device=similarity.device).expand(rows, -1)
        columns = torch.cat([columns, tail], dim=1)
    values, picked = similarity.gather(1, columns).topk(k, dim=1, sorted=False)
    return values, columns.gather(1, picked)


def _check_inputs(train_feats: Tensor, train_labels: Tensor, test_feats: Tensor) -> None:
    if train_feats.ndim != 2 or test_feats.ndim != 2:
        raise DataError(
            f"kNN needs 2-D feature matrices (rows = images), got train {tuple(train_feats.shape)} "
            f"and test {tuple(test_feats.shape)}; flatten or pool the backbone output first"
        )
    if train_feats.shape[1] != test_feats.shape[1]:
        raise DataError(
            f"train features have dim {train_feats.shape[1]} but test features have dim "
            f"{test_feats.shape[1]}; extract both with the same backbone"
        )
    if train_labels.ndim != 1 or train_labels.shape[0] != train_feats.shape[0]:
        raise DataError(
            f"train labels {tuple(train_labels.shape)} do not match train features "
            f"{tuple(train_feats.shape)}; pass one integer label per feature row"
        )
    if train_feats.shape[0] == 0:
        raise DataError("the kNN memory bank is empty; pass at least one training feature")


def _resolve_num_classes(train_labels: Tensor, num_classes: int | None) -> int:
    if train_labels.numel() == 0:
        return num_classes or 1
    low, high = int(train_labels.min()), int(train_labels.max())
    if low < 0:
        raise DataError(f"train labels must be >= 0, found {low}; map classes to 0..C-1 first")
    if num_classes is None:
        return high + 1
    if high >= num_classes:
        raise DataError(f"train label {high} is >= num_classes={num_classes}; pass the real class count")
    return num_classes


def weighted_knn_scores(
    train_feats: Tensor,
    train_labels: Tensor,
    test_feats: Tensor,
    *,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Tensor:
    """Class scores (Q, C) of DINO's weighted kNN vote, on the train features' device.

    train_feats (N, D), train_labels (N,) int, test_feats (Q, D); features need not be normalised.
    """
    _check_inputs(train_feats, train_labels, test_feats)
    if temperature <= 0:
        raise DataError(f"kNN temperature must be > 0, got {temperature}; DINO uses 0.07")
    classes = _resolve_num_classes(train_labels, num_classes)
    device = train_feats.device
    bank = F.normalize(train_feats.float(), dim=1)
    labels = train_labels.to(device=device, dtype=torch.long)
    k = max(1, min(k, bank.shape[0]))
    scores = torch.zeros(test_feats.shape[0], classes, dtype=torch.float32, device=device)
    # One (chunk, N) block reused by every chunk: a fresh block per chunk would page-fault its
    # memory in again each time on the CPU.
    block = torch.empty(min(chunk_size, max(1, test_feats.shape[0])), bank.shape[0], device=device)
    for start in range(0, test_feats.shape[0], chunk_size):
        queries = F.normalize(test_feats[start : start + chunk_size].to(device).float(), dim=1)
        similarity = torch.mm(queries, bank.T, out=block[: queries.shape[0]])  # (chunk, N) cosines
        top_sim, top_idx = blocked_topk(similarity, k)  # (chunk, k)
        weights = top_sim.div_(temperature).exp_()
        scores[start : start + queries.shape[0]].scatter_add_(1, labels[top_idx], weights)
    return scores


def weighted_knn_predict(
    train_feats: Tensor,
    train_labels: Tensor,
    test_feats: Tensor,
    *,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Tensor:
    """Predicted class (Q,) int64 of DINO's weighted kNN, on the train features' device."""
    scores = weighted_knn_scores(
        train_feats,
        train_labels,
        test_feats,
        k=k,
        temperature=temperature,
        num_classes=num_classes,
        chunk_size=chunk_size,
    )
    return scores.argmax(dim=1)


def top1_percent(predictions: Tensor, labels: Tensor) -> float:
    """Share of ``predictions == labels`` in percent (0-100)."""
    if labels.numel() == 0:
        raise DataError("the evaluation set is empty; pass at least one test image")
    if predictions.shape != labels.shape:
        raise DataError(
            f"{predictions.shape[0]} predictions for {labels.shape[0]} labels; pass one label per test row"
        )
    correct = int((predictions.cpu() == labels.cpu().long()).sum())
    return 100.0 * correct / labels.numel()


def weighted_knn_top1(
    train_feats: Tensor,
    train_labels: Tensor,
    test_feats: Tensor,
    test_labels: Tensor,
    *,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> float:
    """Top-1 accuracy in percent of DINO's weighted kNN (k=20, T=0.07 by default)."""
    predictions = weighted_knn_predict(
        train_feats,
        train_labels,
        test_feats,
        k=k,
        temperature=temperature,
        num_classes=num_classes,
        chunk_size=chunk_size,
    )
    return top1_percent(predictions, test_labels)


def nearest_neighbour_predict(
    train_feats: Tensor,
    train_labels: Tensor,
    test_feats: Tensor,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Tensor:
    """The original LowDINO protocol: label (Q,) of the Euclidean nearest raw train feature.

    Uses |x - m|^2 = |x|^2 - 2 <x, m> + |m|^2; |x|^2 is the same for every candidate of a query
    and is dropped from the argmin. Computed in float64 so that near-ties resolve like an exact
    distance (e.g. scikit-learn's KNeighborsClassifier(n_neighbors=1)).
    """
    _check_inputs(train_feats, train_labels, test_feats)
    device = train_feats.device
    bank = train_feats.to(torch.float64)
    bank_sq = (bank * bank).sum(dim=1)  # (N,)
    bank_t = bank.t().contiguous()
    labels = train_labels.to(device=device, dtype=torch.long)
    nearest = torch.empty(test_feats.shape[0], dtype=torch.long, device=device)
    for start in range(0, test_feats.shape[0], chunk_size):
        queries = test_feats[start : start + chunk_size].to(device=device, dtype=torch.float64)
        distance = bank_sq - 2.0 * (queries @ bank_t)  # (chunk, N), up to the per-row constant |x|^2
        nearest[start : start + queries.shape[0]] = distance.argmin(dim=1)
    return labels[nearest]


def nearest_neighbour_top1(
    train_feats: Tensor, train_labels: Tensor, test_feats: Tensor, test_labels: Tensor
) -> float:
    """Top-1 accuracy in percent of the 1-NN Euclidean seed protocol."""
    return top1_percent(nearest_neighbour_predict(train_feats, train_labels, test_feats), test_labels)
