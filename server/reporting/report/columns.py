"""The report's columns (kNN, 1-NN, 10 % and 30 % labels): which measured and published protocols feed each,
and how each protocol is described to a reader.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    label_fraction: float
    protocols: tuple[str, ...]  # measured protocols, preferred first; later ones are labelled fallbacks
    published_protocols: tuple[str, ...]  # the references' names for the same figure


COLUMNS = (
    Column("knn", "kNN", 1.0, ("knn",), ("knn_weighted",)),
    Column("nn1", "1-NN", 1.0, ("knn_seed",), ("knn_1nn_euclidean",)),
    Column(
        "labels_10",
        "10 % labels",
        0.1,
        ("linear", "finetune"),
        ("linear", "mlp_probe", "linear_online", "finetune"),
    ),
    Column(
        "labels_30",
        "30 % labels",
        0.3,
        ("linear", "finetune"),
        ("linear", "mlp_probe", "linear_online", "finetune"),
    ),
)


# Order in which the chart picks its first column when several have measured figures.
CHART_PREFERENCE = ("knn", "nn1", "labels_10", "labels_30")


PROTOCOL_TEXT = {
    "knn": "weighted kNN on frozen, L2-normalised backbone features (DINO protocol{settings}), the training "
    "images as memory bank",
    "knn_seed": "1-nearest neighbour (Euclidean) on raw frozen backbone features (the original LowDINO "
    "work's protocol), the training images as memory bank",
    "linear": "linear probe on frozen features, trained on a class-stratified, seeded subset of the "
    "training labels (one subset per seed)",
    "knn_monitor": "the training run's own kNN monitor at its last step (weighted kNN, k=20, T=0.07, on a "
    "validation split held out of the training images, knn_max_train / knn_max_val of them), shown until "
    "the run is evaluated",
    "finetune": "end-to-end fine-tuning on a class-stratified, seeded subset of the training labels "
    "(shown because no linear probe was measured)",
}


# Evaluation options that, differing between pooled runs, a reader should be told about.
EVAL_SETTING_KEYS = (
    "k",
    "knn_temperature",
    "linear_epochs",
    "linear_lr",
    "finetune_epochs",
    "max_train_samples",
)
