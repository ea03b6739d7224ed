"""Study presets as sweeps: one submission pretrains every backbone of the study, chains each run's
evaluation, and evaluates the study's baselines whose weights are present here.

A baseline without local weights is not queued (it could only fail); it is recorded in the sweep's
`skipped` with the reason and where to get the weights, and the report shows that row with it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session

from lowdino.backbones import get_spec
from lowdino.backbones.weights import find_cached_weights
from lowdino.config.study import StudyBaseline, StudyPreset
from server.campaigns.sweeps import SweepEntry, create_sweep
from server.runs.paths import read_roots
from server.settings import Settings
from server.storage.models import Run, Sweep
from server.vocabulary import RunKind

# Pretrain options a study sets itself: one run per backbone, in the server's run directory.
STUDY_OWNED_PRETRAIN_FIELDS = ("backbone", "output_dir", "resume")
# Pretrain options whose value the study's evaluations take too (same data for every row).
SHARED_DATA_FIELDS = ("dataset", "dataset_name", "data_path", "synthetic_size")


def find_weights_file(settings: Settings, filename: str) -> Path | None:
    """`filename` directly under a data root or its weights/ folder (the places deploy docs name)."""
    for root in read_roots(settings):
        for folder in (root, root / "weights"):
            candidate = folder / filename
            if candidate.is_file() and os.access(candidate, os.R_OK):
                return candidate
    return None


def baseline_source(settings: Settings, baseline: StudyBaseline) -> tuple[dict[str, Any] | None, str | None]:
    """The eval options that load the baseline's weights, or None and why they are not here."""
    if baseline.weights_file is not None:
        found = find_weights_file(settings, baseline.weights_file)
        if found is None:
            roots = ", ".join(str(root) for root in read_roots(settings))
            return None, (
                f"weights file {baseline.weights_file} not found under {roots} (or their weights/ folder); "
                f"download it from {baseline.download or 'its publisher'} into one of them"
            )
        return {"backbone": baseline.backbone, "weights": str(found)}, None
    if baseline.pretrained:
        if find_cached_weights(get_spec(baseline.backbone)) is None:
            return None, (
                f"pretrained weights of {baseline.backbone} are not in the local timm / Hugging Face cache; "
                f"fill it once on a machine with internet ({baseline.download or 'timm.create_model'})"
            )
        return {"backbone": baseline.backbone, "pretrained": True}, None
    return {"backbone": baseline.backbone}, None


def study_entries(
    study: StudyPreset,
    settings: Settings,
    *,
    scale: str,
    pretrain_overrides: dict[str, Any],
    evaluate_overrides: dict[str, Any],
) -> tuple[list[SweepEntry], dict[str, str], dict[str, Any], dict[str, Any]]:
    """(entries, skipped baselines, base pretrain config, evaluate block) of one study submission."""
    base = {**study.pretrain_config(scale), **pretrain_overrides}
    evaluate = {**study.evaluate_config(scale), **evaluate_overrides}
    entries = [
        SweepEntry(
            kind=RunKind.PRETRAIN,
            config={**base, "backbone": backbone},
            changes={"backbone": backbone},
            evaluate=evaluate,
            name=backbone,
        )
        for backbone in study.backbones
    ]
    shared = {field: base[field] for field in SHARED_DATA_FIELDS if base.get(field) is not None}
    skipped: dict[str, str] = {}
    for baseline in study.baselines:
        source, reason = baseline_source(settings, baseline)
        if source is None:
            skipped[baseline.label] = reason or "weights not available"
            continue
        config = {**evaluate, **shared, **baseline.evaluate, **source}
        entries.append(
            SweepEntry(
                kind=RunKind.EVAL,
                config=config,
                changes={"baseline": baseline.label},
                name=f"{baseline.label} (baseline)",
                extra_tags=["baseline"],
            )
        )
    return entries, skipped, base, evaluate


def submit_study(
    session: Session,
    celery_app: Celery,
    settings: Settings,
    *,
    study: StudyPreset,
    scale: str,
    pretrain_overrides: dict[str, Any] | None = None,
    evaluate_overrides: dict[str, Any] | None = None,
    name: str | None = None,
    tags: list[str] | None = None,
) -> tuple[Sweep, list[Run]]:
    entries, skipped, base, evaluate = study_entries(
        study,
        settings,
        scale=scale,
        pretrain_overrides=dict(pretrain_overrides or {}),
        evaluate_overrides=dict(evaluate_overrides or {}),
    )
    return create_sweep(
        session,
        celery_app,
        settings,
        kind=RunKind.PRETRAIN,
        base=base,
        entries=entries,
        name=name or f"{study.title} ({scale})",
        tags=[*(tags or []), f"study:{study.name}"],
        grid={"backbone": list(study.backbones)},
        evaluate=evaluate,
        study=study.name,
        skipped=skipped,
    )
