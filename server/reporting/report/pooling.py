"""Cells of measured rows: one run's mean and std as they are, several runs' per-seed values pooled,
and the notes that say how each protocol was run.
"""

from __future__ import annotations

import statistics
from typing import Any

from server.reporting.latency import deploy_latency
from server.reporting.report.columns import COLUMNS, EVAL_SETTING_KEYS, PROTOCOL_TEXT, Column
from server.reporting.report.identity import ModelRow, Source, canonical
from server.reporting.schemas import (
    ProtocolNote,
    ReportCell,
    ReportRow,
)


def cell_from(column: Column, protocol: str, found: list[tuple[Source, dict[str, Any]]]) -> ReportCell:
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


def measured_cells(row: ModelRow) -> tuple[dict[str, ReportCell | None], list[ReportCell]]:
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
                cells[column.key] = cell_from(column, protocol, found)
                used.add((protocol, column.label_fraction))
                break
    others: dict[tuple[str, float], list[tuple[Source, dict[str, Any]]]] = {}
    for source in row.sources:
        for result in source.rows:
            key = (str(result.get("protocol")), float(result.get("label_fraction") or 0.0))
            if key not in used and isinstance(result.get("mean"), int | float):
                others.setdefault(key, []).append((source, result))
    other = [
        cell_from(Column("other", f"{protocol} @{fraction:g}", fraction, (protocol,), ()), protocol, found)
        for (protocol, fraction), found in sorted(others.items())
    ]
    return cells, other


MONITOR_PROTOCOL = "knn_monitor"
MONITOR_KEY = "knn_top1"


def monitor_cell(row: ModelRow) -> ReportCell | None:
    """The kNN column of a model not evaluated yet: its training runs' final kNN monitor figures, on the
    validation split held out of the training set, labelled as such (never passed off as an evaluation).
    """
    found = [
        (run.id, int((run.config or {}).get("seed", 0)), float(value))
        for run in row.training
        if isinstance(value := (run.latest_metrics or {}).get(MONITOR_KEY), int | float)
    ]
    if not found:
        return None
    values = [value for _, _, value in found]
    return ReportCell(
        mean=statistics.fmean(values),
        std=statistics.stdev(values) if len(values) > 1 else 0.0,
        n=len(values),
        values=values,
        seeds=[seed for _, seed, _ in found],
        protocol=MONITOR_PROTOCOL,
        label_fraction=1.0,
        image_size=None,
        run_ids=[run_id for run_id, _, _ in found],
        pooled=len(found) > 1,
        published=False,
        note="the training's kNN monitor at its last step, on the validation split, not an evaluation on "
        "the test split: evaluate the run for that figure",
    )


def measured_row(row: ModelRow) -> ReportRow:
    cells, other = measured_cells(row)
    if cells.get("knn") is None:
        cells["knn"] = monitor_cell(row)
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
        if len({canonical({"v": (s.run.config or {}).get(key)}) for s in row.sources}) > 1
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
        latency=deploy_latency((source.run.id, source.results) for source in row.sources),
        notes=notes,
    )


def pool_text(sources: list[Source]) -> str:
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


def protocol_notes(rows: list[ReportRow], sources: list[Source]) -> list[ProtocolNote]:
    knn_settings = sorted(
        {
            f"k={(s.run.config or {}).get('k', 20)}, T={(s.run.config or {}).get('knn_temperature', 0.07)}"
            for s in sources
        }
    )
    pool = pool_text(sources)
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
