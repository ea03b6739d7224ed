"""The report: the original LowDINO table regenerated from runs, beside the published figures.

`build_report(session, settings, runs=[...])` turns eval runs (and pretrain/distill runs, through
their eval children: runs with `parent_id` = the training run and kind "eval") into rows of models:

* a LowDINO-trained backbone: the training run's config less its seed, runtime and data-location
  options, so that pretraining seeds of one recipe share a row and their per-seed values pool;
* a baseline evaluated directly (an eval run with `backbone`, pretrained weights or random init).

Rows are further split by evaluation image size: figures at 32 px and at 224 px are not one number.
Each cell is one column (kNN, 1-NN, 10 % and 30 % labels) from the eval runs' results.json: when one
run feeds it, its mean and std are the run's own; when several do, their per-seed values pool and the
cell says so. Published rows (lowdino.eval.references, the report's dataset) are separate rows marked
`published`, never pooled into a measured mean; skipped rows carry the caller's reason.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from lowdino.config.base import DataOptions, RuntimeOptions
from lowdino.eval.references import ReferenceResult, load_references
from server.reporting.compare import config_dataset, read_results
from server.reporting.figures import Point, accuracy_vs_params
from server.reporting.schemas import (
    ExcludedRun,
    ProtocolNote,
    ReportCell,
    ReportColumn,
    ReportPublic,
    ReportRow,
)
from server.runs import queries as run_queries
from server.settings import Settings
from server.storage.models import Run

TRAINING_KINDS = ("pretrain", "distill")


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
# The published figures the report sets beside its measurements: the original LowDINO table, DINO and
# DINOv2 (lowdino.eval.references also holds lightly / solo-learn rows, which Compare shows).
PUBLISHED_CITATIONS = ("LowDINO README", "DINO", "DINOv2")
# Order in which the chart picks its first column when several have measured figures.
CHART_PREFERENCE = ("knn", "nn1", "labels_10", "labels_30")

PROTOCOL_TEXT = {
    "knn": "weighted kNN on frozen, L2-normalised backbone features (DINO protocol{settings}), the training "
    "images as memory bank",
    "knn_seed": "1-nearest neighbour (Euclidean) on raw frozen backbone features (the original LowDINO "
    "work's protocol), the training images as memory bank",
    "linear": "linear probe on frozen features, trained on a class-stratified, seeded subset of the "
    "training labels (one subset per seed)",
    "finetune": "end-to-end fine-tuning on a class-stratified, seeded subset of the training labels "
    "(shown because no linear probe was measured)",
}
# Options that do not change which model a training run produces: where data lives, how fast the run
# goes, and the seed (pretraining seeds of one recipe share a row).
IGNORED_TRAINING_KEYS = (
    frozenset(RuntimeOptions.model_fields)
    | (frozenset(DataOptions.model_fields) - {"dataset", "synthetic_size"})
    | {"resume", "compile", "logging_freq", "checkpoint_every_steps", "tensorboard_dir", "batch_size_eval"}
    | {"knn_monitor", "knn_max_train", "knn_max_val"}
)
# Evaluation options that, differing between pooled runs, a reader should be told about.
EVAL_SETTING_KEYS = (
    "k",
    "knn_temperature",
    "linear_epochs",
    "linear_lr",
    "finetune_epochs",
    "max_train_samples",
)


@dataclass
class _Source:
    """One eval run of the report and what it measured (results.json, empty while it has none)."""

    run: Run
    results: dict[str, Any]
    trained_by: Run | None

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [row for row in self.results.get("results") or [] if isinstance(row, dict)]

    @property
    def image_size(self) -> int | None:
        size = self.results.get("image_size", (self.run.config or {}).get("image_size"))
        return size if isinstance(size, int) else None

    @property
    def dataset(self) -> str:
        return str(self.results.get("dataset") or config_dataset(self.run))


@dataclass
class _Row:
    key: str
    model_key: str
    model: str
    backbone: str | None
    method: str | None
    epochs: int | None
    pretrain_image_size: int | None
    image_size: int | None
    training: list[Run] = field(default_factory=list)
    sources: list[_Source] = field(default_factory=list)
    pending: list[Run] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    trained_config: dict[str, Any] = field(default_factory=dict)


def _canonical(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True, default=str)


def _training_recipe(run: Run) -> dict[str, Any]:
    return {key: value for key, value in (run.config or {}).items() if key not in IGNORED_TRAINING_KEYS}


def _trained_identity(run: Run) -> tuple[str, dict[str, Any]]:
    config = run.config or {}
    backbone = run_queries.backbone_of(run.kind, config)
    if run.kind == "distill":
        method = f"distill:{config.get('loss', '?')} from {config.get('teacher', '?')}"
        size = config.get("crop_size")
    else:
        method = str(config.get("method") or "dino")
        size = config.get("global_crop_size")
    epochs = config.get("n_epochs")
    return f"trained:{run.kind}:{_canonical(_training_recipe(run))}", {
        "backbone": backbone,
        "method": method,
        "epochs": epochs if isinstance(epochs, int) else None,
        "pretrain_image_size": size if isinstance(size, int) else None,
    }


def _trained_label(info: dict[str, Any]) -> str:
    parts = [str(info["backbone"] or "?"), "LowDINO " + str(info["method"]).upper()]
    if info["epochs"] is not None:
        parts.append(f"{info['epochs']} ep")
    if info["pretrain_image_size"] is not None:
        parts.append(f"{info['pretrain_image_size']} px crops")
    return " · ".join(parts)


def _baseline_identity(source: _Source) -> tuple[str, dict[str, Any]]:
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


def _run_of_checkpoint(session: Session, value: str) -> Run | None:
    """The run a `checkpoint` value names: a run id, or (as the server stores it) that run's directory
    or its checkpoint.pth."""
    if "/" not in value and "\\" not in value:
        return run_queries.get_run(session, run_id=value) if len(value) <= 32 else None
    path = Path(value)
    folder = path.parent if path.suffix == ".pth" else path
    run = run_queries.get_run(session, run_id=folder.name) if len(folder.name) <= 32 else None
    if run is None or not run.output_dir or Path(run.output_dir).resolve() != folder.resolve():
        return None
    return run


def _training_parent(session: Session, run: Run) -> Run | None:
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
        named = _run_of_checkpoint(session, checkpoint)
        if named is not None and named.kind in TRAINING_KINDS:
            return named
    return None


def _cell_from(column: Column, protocol: str, found: list[tuple[_Source, dict[str, Any]]]) -> ReportCell:
    sizes = sorted({source.image_size for source, _ in found if source.image_size is not None})
    run_ids = [source.run.id for source, _ in found]
    if len(found) == 1:
        _source, row = found[0]
        values = [float(v) for v in row.get("values") or [row["mean"]]]
        seeds = [int(s) for s in row.get("seeds") or []]
        # One run feeds the cell: its own mean and std, exactly as results.json has them.
        mean, std, pooled, note = float(row["mean"]), float(row.get("std") or 0.0), False, None
    else:
        values, seeds = [], []
        for _source, row in found:
            values += [float(v) for v in row.get("values") or [row["mean"]]]
            seeds += [int(s) for s in row.get("seeds") or []]
        mean = statistics.fmean(values)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        pooled = True
        note = f"per-seed values of {len(found)} eval runs pooled (n = {len(values)})"
    if protocol != column.protocols[0]:
        fallback = f"{protocol}, not {column.protocols[0]}: no {column.protocols[0]} result was measured"
        note = f"{note}; {fallback}" if note else fallback
    return ReportCell(
        mean=mean,
        std=std,
        n=len(values),
        values=values,
        seeds=seeds,
        protocol=protocol,
        label_fraction=column.label_fraction,
        image_size=sizes[0] if len(sizes) == 1 else None,
        run_ids=run_ids,
        pooled=pooled,
        published=False,
        note=note,
    )


def _measured_cells(row: _Row) -> tuple[dict[str, ReportCell | None], list[ReportCell]]:
    cells: dict[str, ReportCell | None] = {}
    used: set[tuple[str, float]] = set()
    for column in COLUMNS:
        cells[column.key] = None
        for protocol in column.protocols:
            found = [
                (source, result)
                for source in row.sources
                for result in source.rows
                if result.get("protocol") == protocol
                and result.get("label_fraction") == column.label_fraction
                and isinstance(result.get("mean"), int | float)
            ]
            if found:
                cells[column.key] = _cell_from(column, protocol, found)
                used.add((protocol, column.label_fraction))
                break
    others: dict[tuple[str, float], list[tuple[_Source, dict[str, Any]]]] = {}
    for source in row.sources:
        for result in source.rows:
            key = (str(result.get("protocol")), float(result.get("label_fraction") or 0.0))
            if key not in used and isinstance(result.get("mean"), int | float):
                others.setdefault(key, []).append((source, result))
    other = [
        _cell_from(Column("other", f"{protocol} @{fraction:g}", fraction, (protocol,), ()), protocol, found)
        for (protocol, fraction), found in sorted(others.items())
    ]
    return cells, other


def _measured_row(row: _Row) -> ReportRow:
    cells, other = _measured_cells(row)
    params = next(
        (s.results.get("params") for s in row.sources if isinstance(s.results.get("params"), int)), None
    )
    if params is None:
        params = next(
            (run.params for run in [*row.training, *(s.run for s in row.sources)] if run.params), None
        )
    labels_used = max((float(s.results.get("labels_used") or 0.0) for s in row.sources), default=0.0)
    notes = list(row.notes)
    if labels_used:
        notes.append(
            f"the pretraining learned from {labels_used * 100:g} % of the labels: its label-fraction "
            "figures are not a low-label result"
        )
    differing = [
        key
        for key in EVAL_SETTING_KEYS
        if len({_canonical({"v": (s.run.config or {}).get(key)}) for s in row.sources}) > 1
    ]
    if differing:
        notes.append(f"pooled eval runs differ in {', '.join(differing)}")
    if len(row.training) > 1:
        seeds = sorted({(run.config or {}).get("seed", 0) for run in row.training})
        notes.append(
            f"{len(row.training)} pretraining runs (seeds {', '.join(map(str, seeds))}) share this row"
        )
    if row.pending:
        notes.append(
            f"{len(row.pending)} run(s) without results yet: {', '.join(run.id for run in row.pending)}"
        )
    if not row.sources:
        notes.append("not evaluated yet: no eval run of this model has written results.json")
    return ReportRow(
        key=row.key,
        model=row.model,
        kind="measured",
        published=False,
        backbone=row.backbone,
        method=row.method,
        epochs=row.epochs,
        pretrain_image_size=row.pretrain_image_size,
        image_size=row.image_size,
        params=params,
        labels_used=labels_used,
        source="measured",
        training_run_ids=[run.id for run in row.training],
        eval_run_ids=[source.run.id for source in row.sources],
        pending_run_ids=[run.id for run in row.pending],
        cells=cells,
        other=other,
        notes=notes,
    )


def _published_rows(references: list[ReferenceResult]) -> list[ReportRow]:
    """One row per (model, source): figures from different papers never share a row."""
    grouped: dict[tuple[str, str], list[ReferenceResult]] = {}
    for reference in references:
        grouped.setdefault((reference.model, reference.source), []).append(reference)
    rows: list[ReportRow] = []
    for (model, source), group in grouped.items():
        first = group[0]

        def cell(reference: ReferenceResult) -> ReportCell:
            return ReportCell(
                mean=reference.top1,
                std=0.0,
                n=1,
                values=[reference.top1],
                seeds=[],
                protocol=reference.protocol,
                label_fraction=reference.label_fraction,
                image_size=reference.image_size,
                run_ids=[],
                pooled=False,
                published=True,
                source=reference.source,
                note=reference.protocol_text,
            )

        cells: dict[str, ReportCell | None] = {}
        used: set[int] = set()
        for column in COLUMNS:
            cells[column.key] = None
            for protocol in column.published_protocols:
                match = next(
                    (
                        i
                        for i, r in enumerate(group)
                        if r.protocol == protocol
                        and r.label_fraction == column.label_fraction
                        and i not in used
                    ),
                    None,
                )
                if match is not None:
                    cells[column.key] = cell(group[match])
                    used.add(match)
                    break
        rows.append(
            ReportRow(
                key=f"published:{model}:{first.citation}",
                model=model,
                kind="published",
                published=True,
                backbone=first.backbone,
                method=first.method,
                epochs=first.epochs,
                pretrain_image_size=None,
                image_size=first.image_size,
                params=round(first.params_millions * 1e6) if first.params_millions is not None else None,
                source=source,
                citation=first.citation,
                training_run_ids=[],
                eval_run_ids=[],
                pending_run_ids=[],
                cells=cells,
                other=[cell(r) for i, r in enumerate(group) if i not in used],
                notes=[n for n in dict.fromkeys(r.notes for r in group) if n],
            )
        )
    return rows


def _skipped_row(model: str, reason: str) -> ReportRow:
    return ReportRow(
        key=f"skipped:{model}",
        model=model,
        kind="skipped",
        published=False,
        backbone=None,
        method=None,
        epochs=None,
        pretrain_image_size=None,
        image_size=None,
        params=None,
        source=None,
        reason=reason,
        training_run_ids=[],
        eval_run_ids=[],
        pending_run_ids=[],
        cells={column.key: None for column in COLUMNS},
        other=[],
        notes=[],
    )


def _pool_text(sources: list[_Source]) -> str:
    """How many images the measured figures used: a capped evaluation must say so beside its numbers."""

    def sizes(field: str) -> str:
        found = sorted({int(s.results[field]) for s in sources if isinstance(s.results.get(field), int)})
        return " or ".join(f"{size:,}" for size in found)

    train, test = sizes("train_size"), sizes("test_size")
    if not train or not test:
        return ""
    capped = any(
        (s.run.config or {}).get("max_train_samples") or (s.run.config or {}).get("max_test_samples")
        for s in sources
    )
    sample = " (class-stratified samples: max_train_samples / max_test_samples)" if capped else ""
    return f"; {train} training and {test} test images{sample}"


def _protocol_notes(rows: list[ReportRow], sources: list[_Source]) -> list[ProtocolNote]:
    knn_settings = sorted(
        {
            f"k={(s.run.config or {}).get('k', 20)}, T={(s.run.config or {}).get('knn_temperature', 0.07)}"
            for s in sources
        }
    )
    pool = _pool_text(sources)
    groups: dict[tuple[str, str, bool, str | None], set[int]] = {}
    texts: dict[tuple[str, str, bool, str | None], str] = {}
    for row in rows:
        cells = [(key, cell) for key, cell in row.cells.items() if cell is not None]
        cells += [("other", cell) for cell in row.other]
        for column, cell in cells:
            key = (column, cell.protocol, cell.published, cell.source)
            sizes = groups.setdefault(key, set())
            if cell.image_size is not None:
                sizes.add(cell.image_size)
            if cell.published:
                texts[key] = cell.note or cell.protocol
            else:
                text = PROTOCOL_TEXT.get(cell.protocol, cell.protocol)
                settings = f", {'; '.join(knn_settings)}" if knn_settings else ""
                texts[key] = text.format(settings=settings) + pool
    notes = []
    for (column, protocol, published, source), sizes in groups.items():
        fraction = next((c.label_fraction for c in COLUMNS if c.key == column), None)
        description = texts[(column, protocol, published, source)]
        if fraction is not None and fraction < 1.0:
            description = f"{fraction * 100:g} % of the training labels: {description}"
        notes.append(
            ProtocolNote(
                column=column,
                protocol=protocol,
                published=published,
                source=source,
                image_sizes=sorted(sizes),
                description=description,
            )
        )
    order = {column.key: i for i, column in enumerate(COLUMNS)}
    return sorted(notes, key=lambda n: (n.published, order.get(n.column, 99), n.protocol, n.source or ""))


def _short_label(row: ReportRow) -> str:
    """A chart label: backbone and recipe in a few words (the table has the full name)."""
    if row.method in (None, "baseline", "checkpoint") or row.backbone is None:
        return row.model
    epochs = f" {row.epochs} ep" if row.epochs is not None else ""
    return f"{row.backbone} ({row.method.split(' ')[0]}{epochs})"


def _figures(rows: list[ReportRow], dataset: str) -> tuple[dict[str, dict[str, Any]], str | None]:
    figures: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    totals: dict[str, int] = {}
    for column in COLUMNS:
        measured = []
        published = []
        for row in rows:
            cell = row.cells.get(column.key)
            if cell is None or not row.params:
                continue
            if row.published:
                published.append(
                    Point(
                        float(row.params), cell.mean, f"{row.model} [published]", f"published: {row.source}"
                    )
                )
            elif row.kind == "measured":
                size = f" @{cell.image_size}px" if cell.image_size else ""
                measured.append(
                    Point(
                        float(row.params),
                        cell.mean,
                        f"{_short_label(row)}{size}",
                        f"{cell.protocol}, n = {cell.n}, runs {', '.join(cell.run_ids)}",
                        error=cell.std if cell.n > 1 else None,
                    )
                )
        if not measured and not published:
            continue
        counts[column.key] = len(measured)
        totals[column.key] = len(measured) + len(published)
        figures[column.key] = accuracy_vs_params(
            measured,
            published,
            title=f"{column.label} top-1 vs parameters ({dataset})",
            measured_name="measured",
            published_name="published",
            with_front=True,
        )
    # First shown: the column with the most models on it, measured and published, among those with a
    # measured one (on CIFAR-10 the published table is 1-NN and probes, not weighted kNN).
    with_measured = [key for key in CHART_PREFERENCE if counts.get(key)]
    chart = max(with_measured, key=lambda key: totals[key]) if with_measured else next(iter(figures), None)
    return figures, chart


def _collect_sources(session: Session, runs: list[Run]) -> tuple[list[_Source], list[Run], list[ExcludedRun]]:
    """The eval runs to report (given ones, then eval children of given training runs) and the
    training runs given; runs of other kinds are excluded with the reason."""
    evals: dict[str, Run] = {}
    training: list[Run] = []
    excluded: list[ExcludedRun] = []
    for run in runs:
        if run.kind == "eval":
            evals.setdefault(run.id, run)
        elif run.kind in TRAINING_KINDS:
            training.append(run)
        else:
            excluded.append(
                ExcludedRun(run_id=run.id, reason=f"a {run.kind} run has no evaluation to report")
            )
    for child in run_queries.list_children(session, parent_ids=[run.id for run in training], kind="eval"):
        evals.setdefault(child.id, child)
    ordered = sorted(evals.values(), key=lambda run: (run.created_at, run.id))
    return [_Source(run, {}, None) for run in ordered], training, excluded


def build_report(
    session: Session,
    settings: Settings,
    *,
    runs: list[Run],
    skipped: dict[str, str] | None = None,
    dataset: str | None = None,
) -> ReportPublic:
    """The table, chart and protocol notes for `runs` (eval runs, and training runs through their
    evaluations), with published rows for the dataset and the caller's `skipped` models."""
    sources, training, excluded = _collect_sources(session, runs)
    for source in sources:
        source.results = read_results(settings, source.run)
        source.trained_by = _training_parent(session, source.run)
    with_results = [s for s in sources if s.rows]
    if dataset is None:
        counted = Counter(s.dataset for s in with_results) or Counter(
            config_dataset(run) for run in [*training, *(s.run for s in sources)]
        )
        dataset = counted.most_common(1)[0][0] if counted else "cifar10"

    rows: dict[str, _Row] = {}

    def row_for(model_key: str, info: dict[str, Any], image_size: int | None, label: str) -> _Row:
        key = f"{model_key}@{image_size}"
        if key not in rows:
            rows[key] = _Row(
                key=key,
                model_key=model_key,
                model=label,
                backbone=info["backbone"],
                method=info["method"],
                epochs=info["epochs"],
                pretrain_image_size=info["pretrain_image_size"],
                image_size=image_size,
            )
        return rows[key]

    def identity(source: _Source) -> tuple[str, dict[str, Any], str]:
        if source.trained_by is not None:
            model_key, info = _trained_identity(source.trained_by)
            return model_key, info, _trained_label(info)
        model_key, info = _baseline_identity(source)
        return model_key, info, info["label"]

    def attach_training(row: _Row, run: Run | None) -> None:
        if run is not None and all(known.id != run.id for known in row.training):
            row.training.append(run)
            row.trained_config = _training_recipe(run)

    pending_sources: list[_Source] = []
    for source in sources:
        if source.dataset != dataset:
            excluded.append(
                ExcludedRun(
                    run_id=source.run.id,
                    reason=f"evaluated on {source.dataset}; this report is on {dataset} (report it separately)",
                )
            )
            continue
        if not source.rows:
            pending_sources.append(source)
            continue
        model_key, info, label = identity(source)
        row = row_for(model_key, info, source.image_size, label)
        row.sources.append(source)
        attach_training(row, source.trained_by)
    # Runs without results yet join a row of the same model (any image size), else get their own.
    for source in pending_sources:
        model_key, info, label = identity(source)
        row = next((r for r in rows.values() if r.model_key == model_key), None) or row_for(
            model_key, info, source.image_size, label
        )
        row.pending.append(source.run)
        attach_training(row, source.trained_by)
    for run in training:
        if config_dataset(run) != dataset and not any(
            known.id == run.id for r in rows.values() for known in r.training
        ):
            excluded.append(
                ExcludedRun(
                    run_id=run.id,
                    reason=f"trained on {config_dataset(run)}; report is on {dataset}",
                )
            )
            continue
        model_key, info = _trained_identity(run)
        row = next((r for r in rows.values() if r.model_key == model_key), None) or row_for(
            model_key, info, None, _trained_label(info)
        )
        attach_training(row, run)
        if run.status != "completed" and run not in row.pending:
            row.pending.append(run)
    _disambiguate(list(rows.values()))

    measured = sorted(
        (_measured_row(row) for row in rows.values()),
        key=lambda r: (r.params is None, r.params or 0, r.model, r.image_size or 0),
    )
    references = [r for r in load_references(dataset=dataset) if r.citation in PUBLISHED_CITATIONS]
    # Rows with a figure in one of the four columns first; the rest only have figures beside the table.
    published = sorted(_published_rows(references), key=lambda r: all(c is None for c in r.cells.values()))
    skipped_rows = [_skipped_row(model, reason) for model, reason in (skipped or {}).items()]
    all_rows = [*measured, *published, *skipped_rows]
    figures, chart = _figures(all_rows, dataset)
    notes = [
        "Measured cells: mean ± sample standard deviation over seeds (n values); published cells are copied "
        "from their source, never measured here, and never pooled into a measured mean."
    ]
    if any(cell is not None and cell.pooled for row in measured for cell in row.cells.values()):
        notes.append("Cells marked pooled combine the per-seed values of several eval runs of one model.")
    return ReportPublic(
        dataset=dataset,
        columns=[
            ReportColumn(
                key=column.key,
                label=column.label,
                label_fraction=column.label_fraction,
                protocols=list(column.protocols),
            )
            for column in COLUMNS
        ],
        rows=all_rows,
        protocols=_protocol_notes(all_rows, [s for s in sources if s.rows]),
        figures=figures,  # type: ignore[arg-type]  # validated into PlotlyFigure
        chart_column=chart,
        run_ids=[run.id for run in runs],
        excluded=excluded,
        notes=notes,
    )


def _disambiguate(rows: list[_Row]) -> None:
    """Rows whose labels collide (same backbone, method, epochs, crops) get the options that differ."""
    by_label: dict[str, list[_Row]] = {}
    for row in rows:
        by_label.setdefault(row.model, []).append(row)
    for same in by_label.values():
        if len({row.model_key for row in same}) < 2:
            continue
        keys = sorted({key for row in same for key in row.trained_config})
        differing = [
            key for key in keys if len({_canonical({"v": row.trained_config.get(key)}) for row in same}) > 1
        ]
        for row in same:
            extra = ", ".join(f"{key}={row.trained_config.get(key)}" for key in differing[:3])
            if extra:
                row.model = f"{row.model} ({extra})"
