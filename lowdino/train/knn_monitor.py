"""kNN monitor: weighted kNN top-1 of the evaluated backbone (DINO: the teacher) during training.

The queries are validation images held out of the training split (`lowdino.train.validation`),
never test images: a run's curve, its "best" figure and any recipe tuned on them say nothing about
the test split. Fixed, class-stratified subsets are drawn once per run (knn_max_train memory-bank
images from the rest of the training split, knn_max_val queries from the validation split), so every
measurement of a run, and of a resumed run, uses the same images. Protocol: L2-normalised features, k = 20, T = 0.07 (DINO eval_knn).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from lowdino.eval.features import extract_features
from lowdino.eval.knn import weighted_knn_top1
from lowdino.eval.subsets import stratified_cap

KNN_K = 20
KNN_TEMPERATURE = 0.07


class KnnMonitor:
    def __init__(
        self,
        *,
        train_images: Tensor,
        train_labels: Tensor,
        query_images: Tensor,
        query_labels: Tensor,
        num_classes: int,
        transform: Callable[[Tensor], Tensor],
        batch_size: int,
        device: torch.device,
        max_train: int | None = None,
        max_query: int | None = None,
        seed: int = 0,
    ) -> None:
        train_index = stratified_cap(train_labels, max_train, seed) if max_train else None
        query_index = stratified_cap(query_labels, max_query, seed) if max_query else None
        self.train_images = train_images if train_index is None else train_images[train_index]
        self.train_labels = train_labels if train_index is None else train_labels[train_index]
        self.query_images = query_images if query_index is None else query_images[query_index]
        self.query_labels = query_labels if query_index is None else query_labels[query_index]
        self.num_classes = num_classes
        self.transform = transform
        self.batch_size = batch_size
        self.device = device

    def __call__(self, backbone: nn.Module) -> float:
        """Top-1 accuracy in percent; the backbone's train/eval mode is left as it was."""
        features = [
            extract_features(backbone, images, self.transform, batch_size=self.batch_size, device=self.device)
            for images in (self.train_images, self.query_images)
        ]
        return weighted_knn_top1(
            features[0],
            self.train_labels,
            features[1],
            self.query_labels,
            k=min(KNN_K, len(self.train_labels)),
            temperature=KNN_TEMPERATURE,
            num_classes=self.num_classes,
        )
