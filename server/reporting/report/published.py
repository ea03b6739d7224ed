"""Published rows (lowdino.eval.references) beside the measured ones, never pooled into them, and the rows
a study could not measure here, with the reason.
"""

from __future__ import annotations

from lowdino.eval.references import ReferenceResult
from server.reporting.report.columns import COLUMNS
from server.reporting.schemas import (
    ReportCell,
    ReportRow,
)

# The published figures the report sets beside its measurements: the original LowDINO table, DINO and
# DINOv2 (lowdino.eval.references also holds lightly / solo-learn rows, which Compare shows).
PUBLISHED_CITATIONS = ("LowDINO README", "DINO", "DINOv2")


def published_rows(references: list[ReferenceResult]) -> list[ReportRow]:
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


def skipped_row(model: str, reason: str) -> ReportRow:
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
