"""Published results LowDINO compares against (package data ``references.json``).

Every row was copied from a paper or repository, never measured by this project; rows carry
``published=True`` and `ReferenceResult.label` says so, so that a table can never pass one off as
a measurement of ours.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

REFERENCES_FILE = "references.json"


@dataclass(frozen=True)
class ReferenceResult:
    model: str
    method: str
    backbone: str | None  # registry name where LowDINO has the same network
    params_millions: float | None  # as reported by the source
    dataset: str
    protocol: str  # knn_weighted, knn_1nn_euclidean, linear, linear_online, mlp_probe, finetune
    label_fraction: float
    top1: float
    protocol_text: str
    source: str
    citation: str  # short name of the source for table cells, e.g. "DINOv2"
    where: str
    published: bool = True
    k: int | None = None
    temperature: float | None = None
    image_size: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    notes: str | None = None

    @property
    def label(self) -> str:
        return f"{self.model} [published: {self.citation}]"


@functools.cache
def _load() -> tuple[ReferenceResult, ...]:
    text = resources.files("lowdino.eval").joinpath(REFERENCES_FILE).read_text(encoding="utf-8")
    rows = tuple(ReferenceResult(**row) for row in json.loads(text)["results"])
    if not all(row.published for row in rows):
        raise ValueError(
            f"{REFERENCES_FILE} holds a row not marked published; it may only hold published figures"
        )
    return rows


def load_references(
    *, dataset: str | None = None, protocol: str | None = None, backbone: str | None = None
) -> list[ReferenceResult]:
    """Published rows, optionally filtered by dataset, protocol and registry backbone name."""
    return [
        row
        for row in _load()
        if (dataset is None or row.dataset == dataset)
        and (protocol is None or row.protocol == protocol)
        and (backbone is None or row.backbone == backbone)
    ]
