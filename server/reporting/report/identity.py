"""Row identity: which model an eval run measured, so that seeds of one recipe share a row.

A LowDINO-trained backbone is its training run's config less its seed, runtime and data-location options;
a baseline is its backbone and where its weights came from. Rows are further split by evaluation image size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from lowdino.config.base import DataOptions, RuntimeOptions
from server.reporting.compare import config_dataset
from server.reporting.latency import latency_rows
from server.reporting.schemas import (
    ExcludedRun,
)
from server.runs import queries as run_queries
from server.storage.models import Run
from server.vocabulary import TRAINING_KINDS, RunKind

# Options that do not change which model a training run produces: where data lives, how fast the run
# goes, and the seed (pretraining seeds of one recipe share a row).
IGNORED_TRAINING_KEYS = (
    frozenset(RuntimeOptions.model_fields)
    | (frozenset(DataOptions.model_fields) - {"dataset", "synthetic_size"})
    | {"resume", "compile", "logging_freq", "checkpoint_every_steps", "tensorboard_dir", "batch_size_eval"}
    | {"knn_monitor", "knn_max_train", "knn_max_val"}
)


@dataclass
class Source:
    """One eval run of the report and what it measured (results.json, empty while it has none)."""

    run: Run
    results: dict[str, Any]
    trained_by: Run | None

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [row for row in self.results.get("results") or [] if isinstance(row, dict)]

    @property
    def latency(self) -> list[dict[str, Any]]:
        return latency_rows(self.results)

    @property
    def measured(self) -> bool:
        """Whether it has written figures yet: top-1 rows, latency rows or both."""
        return bool(self.rows or self.latency)

    @property
    def image_size(self) -> int | None:
        size = self.results.get("image_size", (self.run.config or {}).get("image_size"))
        return size if isinstance(size, int) else None

    @property
    def dataset(self) -> str:
        return str(self.results.get("dataset") or config_dataset(self.run))


@dataclass
class ModelRow:
    key: str
    model_key: str
    model: str
    backbone: str | None
    method: str | None
    epochs: int | None
    pretrain_image_size: int | None
    image_size: int | None
    training: list[Run] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    pending: list[Run] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    trained_config: dict[str, Any] = field(default_factory=dict)


def canonical(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True, default=str)


def training_recipe(run: Run) -> dict[str, Any]:
    return {key: value for key, value in (run.config or {}).items() if key not in IGNORED_TRAINING_KEYS}


def trained_identity(run: Run) -> tuple[str, dict[str, Any]]:
    config = run.config or {}
    backbone = run_queries.backbone_of(run.kind, config)
    if run.kind == RunKind.DISTILL:
        method = f"distill:{config.get('loss', '?')} from {config.get('teacher', '?')}"
        size = config.get("crop_size")
    else:
        method = str(config.get("method") or "dino")
        size = config.get("global_crop_size")
    epochs = config.get("n_epochs")
    return f"trained:{run.kind}:{canonical(training_recipe(run))}", {
        "backbone": backbone,
        "method": method,
        "epochs": epochs if isinstance(epochs, int) else None,
        "pretrain_image_size": size if isinstance(size, int) else None,
    }


def trained_label(info: dict[str, Any]) -> str:
    parts = [str(info["backbone"] or "?"), "LowDINO " + str(info["method"]).upper()]
    if info["epochs"] is not None:
        parts.append(f"{info['epochs']} ep")
    if info["pretrain_image_size"] is not None:
        parts.append(f"{info['pretrain_image_size']} px crops")
    return " · ".join(parts)


def baseline_identity(source: Source) -> tuple[str, dict[str, Any]]:
    config = source.run.config or {}
    backbone = config.get("backbone") or source.results.get("backbone")
    if config.get("weights"):
        origin = f"weights {Path(str(config['weights'])).name}"
    elif config.get("pretrained"):
        origin = "pretrained"
    elif config.get("checkpoint"):
        origin = f"checkpoint {config['checkpoint']}"
    else:
        origin = "random init"
    return f"baseline:{backbone}:{origin}", {
        "backbone": str(backbone) if backbone else None,
        "method": "baseline" if config.get("backbone") else "checkpoint",
        "epochs": None,
        "pretrain_image_size": None,
        "label": f"{backbone} ({origin})"
        if config.get("backbone")
        else str(source.results.get("model") or origin),
    }


def run_of_checkpoint(session: Session, value: str) -> Run | None:
    """The run a `checkpoint` value names: a run id, or (as the server stores it) that run's directory
    or its checkpoint.pth."""
    return run_queries.run_of_path(session, value)


def training_parent(session: Session, run: Run) -> Run | None:
    """The pretrain/distill run whose checkpoint an eval run evaluates: its parent (a chain), the
    parent of an eval clone, or the run its `checkpoint` names."""
    seen: set[str] = set()
    current = run
    while current.parent_id and current.parent_id not in seen:
        seen.add(current.parent_id)
        parent = run_queries.get_run(session, run_id=current.parent_id)
        if parent is None:
            break
        if parent.kind in TRAINING_KINDS:
            return parent
        current = parent
    checkpoint = (run.config or {}).get("checkpoint")
    if isinstance(checkpoint, str) and checkpoint:
        named = run_of_checkpoint(session, checkpoint)
        if named is not None and named.kind in TRAINING_KINDS:
            return named
    return None


def collect_sources(session: Session, runs: list[Run]) -> tuple[list[Source], list[Run], list[ExcludedRun]]:
    """The eval runs to report (given ones, then eval children of given training runs) and the
    training runs given; runs of other kinds are excluded with the reason."""
    evals: dict[str, Run] = {}
    training: list[Run] = []
    excluded: list[ExcludedRun] = []
    for run in runs:
        if run.kind == RunKind.EVAL:
            evals.setdefault(run.id, run)
        elif run.kind in TRAINING_KINDS:
            training.append(run)
        else:
            excluded.append(
                ExcludedRun(run_id=run.id, reason=f"a {run.kind} run has no evaluation to report")
            )
    for child in run_queries.list_children(
        session, parent_ids=[run.id for run in training], kind=RunKind.EVAL
    ):
        evals.setdefault(child.id, child)
    ordered = sorted(evals.values(), key=lambda run: (run.created_at, run.id))
    return [Source(run, {}, None) for run in ordered], training, excluded


def disambiguate(rows: list[ModelRow]) -> None:
    """Rows whose labels collide (same backbone, method, epochs, crops) get the options that differ."""
    by_label: dict[str, list[ModelRow]] = {}
    for row in rows:
        by_label.setdefault(row.model, []).append(row)
    for same in by_label.values():
        if len({row.model_key for row in same}) < 2:
            continue
        keys = sorted({key for row in same for key in row.trained_config})
        differing = [
            key for key in keys if len({canonical({"v": row.trained_config.get(key)}) for row in same}) > 1
        ]
        for row in same:
            extra = ", ".join(f"{key}={row.trained_config.get(key)}" for key in differing[:3])
            if extra:
                row.model = f"{row.model} ({extra})"
