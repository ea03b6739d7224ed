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

from collections import Counter
from typing import Any

from sqlalchemy.orm import Session

from lowdino.eval.references import load_references
from server.reporting.compare import config_dataset, read_results
from server.reporting.figures import Point, accuracy_vs_params
from server.reporting.latency import latency_text
from server.reporting.report.columns import CHART_PREFERENCE, COLUMNS
from server.reporting.report.identity import (
    ModelRow,
    Source,
    baseline_identity,
    collect_sources,
    disambiguate,
    trained_identity,
    trained_label,
    training_parent,
    training_recipe,
)
from server.reporting.report.pooling import measured_row, protocol_notes
from server.reporting.report.published import PUBLISHED_CITATIONS, published_rows, skipped_row
from server.reporting.schemas import (
    ExcludedRun,
    ReportColumn,
    ReportPublic,
    ReportRow,
)
from server.settings import Settings
from server.storage.models import Run
from server.vocabulary import RunStatus


def short_label(row: ReportRow) -> str:
    """A chart label: backbone and recipe in a few words (the table has the full name)."""
    if row.method in (None, "baseline", "checkpoint") or row.backbone is None:
        return row.model
    epochs = f" {row.epochs} ep" if row.epochs is not None else ""
    return f"{row.backbone} ({row.method.split(' ')[0]}{epochs})"


def report_figures(rows: list[ReportRow], dataset: str) -> tuple[dict[str, dict[str, Any]], str | None]:
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
                        f"{short_label(row)}{size}",
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


def published_latency(published: list[ReportRow], measured: list[ReportRow]) -> None:
    """A published row takes the latency measured here for its backbone (at its image size when both are
    known); its accuracy stays the source's."""
    for row in published:
        if row.backbone is None:
            continue
        timed = [
            other
            for other in measured
            if other.backbone == row.backbone
            and other.latency is not None
            and (row.image_size is None or other.latency.image_size in (None, row.image_size))
        ]
        if timed:
            latency = min(
                (other.latency for other in timed if other.latency), key=lambda item: item.median_ms
            )
            row.latency = latency
            row.notes.append(
                f"latency measured here ({latency_text(latency)}, runs {', '.join(latency.run_ids)}); "
                "accuracy published"
            )


def latency_figures(rows: list[ReportRow], dataset: str) -> dict[str, dict[str, Any]]:
    """'<column>:latency' -> top-1 against measured ms per image (log x), Pareto front over measured rows."""
    figures: dict[str, dict[str, Any]] = {}
    for column in COLUMNS:
        measured: list[Point] = []
        published: list[Point] = []
        for row in rows:
            cell = row.cells.get(column.key)
            if cell is None or row.latency is None:
                continue
            timing = latency_text(row.latency)
            if row.published:
                published.append(
                    Point(
                        row.latency.median_ms,
                        cell.mean,
                        f"{row.model} [published]",
                        f"published accuracy: {row.source}; latency measured here: {timing}",
                    )
                )
            elif row.kind == "measured":
                size = f" @{cell.image_size}px" if cell.image_size else ""
                measured.append(
                    Point(
                        row.latency.median_ms,
                        cell.mean,
                        f"{short_label(row)}{size}",
                        f"{cell.protocol}, n = {cell.n}; {timing}",
                        error=cell.std if cell.n > 1 else None,
                    )
                )
        if not measured and not published:
            continue
        figures[f"{column.key}:latency"] = accuracy_vs_params(
            measured,
            published,
            title=f"{column.label} top-1 vs latency ({dataset})",
            x_title="ms per image (batch 1, 1 thread, measured here)",
            measured_name="measured",
            published_name="published accuracy, latency measured here",
            with_front=True,
        )
    return figures


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
    sources, training, excluded = collect_sources(session, runs)
    for source in sources:
        source.results = read_results(settings, source.run)
        source.trained_by = training_parent(session, source.run)
    with_results = [s for s in sources if s.measured]
    if dataset is None:
        counted = Counter(s.dataset for s in with_results) or Counter(
            config_dataset(run) for run in [*training, *(s.run for s in sources)]
        )
        dataset = counted.most_common(1)[0][0] if counted else "cifar10"

    rows: dict[str, ModelRow] = {}

    def row_for(model_key: str, info: dict[str, Any], image_size: int | None, label: str) -> ModelRow:
        key = f"{model_key}@{image_size}"
        if key not in rows:
            rows[key] = ModelRow(
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

    def identity(source: Source) -> tuple[str, dict[str, Any], str]:
        if source.trained_by is not None:
            model_key, info = trained_identity(source.trained_by)
            return model_key, info, trained_label(info)
        model_key, info = baseline_identity(source)
        return model_key, info, info["label"]

    def attach_training(row: ModelRow, run: Run | None) -> None:
        if run is not None and all(known.id != run.id for known in row.training):
            row.training.append(run)
            row.trained_config = training_recipe(run)

    pending_sources: list[Source] = []
    for source in sources:
        if source.dataset != dataset:
            excluded.append(
                ExcludedRun(
                    run_id=source.run.id,
                    reason=f"evaluated on {source.dataset}; this report is on {dataset} (report it separately)",
                )
            )
            continue
        if not source.measured:
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
        model_key, info = trained_identity(run)
        row = next((r for r in rows.values() if r.model_key == model_key), None) or row_for(
            model_key, info, None, trained_label(info)
        )
        attach_training(row, run)
        if run.status != RunStatus.COMPLETED and run not in row.pending:
            row.pending.append(run)
    disambiguate(list(rows.values()))

    measured = sorted(
        (measured_row(row) for row in rows.values()),
        key=lambda r: (r.params is None, r.params or 0, r.model, r.image_size or 0),
    )
    references = [r for r in load_references(dataset=dataset) if r.citation in PUBLISHED_CITATIONS]
    # Rows with a figure in one of the four columns first; the rest only have figures beside the table.
    published = sorted(published_rows(references), key=lambda r: all(c is None for c in r.cells.values()))
    published_latency(published, measured)
    skipped_rows = [skipped_row(model, reason) for model, reason in (skipped or {}).items()]
    all_rows = [*measured, *published, *skipped_rows]
    figures, chart = report_figures(all_rows, dataset)
    figures.update(latency_figures(all_rows, dataset))
    notes = [
        "Measured cells: mean ± sample standard deviation over seeds (n values); published cells are copied "
        "from their source, never measured here, and never pooled into a measured mean."
    ]
    if any(row.latency is not None for row in all_rows):
        notes.append(
            "Latency: median milliseconds per image at batch 1 on one thread, measured here by eval runs' "
            "latency protocol, in the fastest runtime measured (named); published rows show their source's "
            "accuracy beside our own timing of the same backbone."
        )
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
        protocols=protocol_notes(all_rows, [s for s in sources if s.rows]),
        figures=figures,  # type: ignore[arg-type]  # validated into PlotlyFigure
        chart_column=chart,
        run_ids=[run.id for run in runs],
        excluded=excluded,
        notes=notes,
    )
