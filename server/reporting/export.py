"""The report as CSV (every figure at full precision, one row per model) and as Markdown (the
original work's table: models with parameters, then kNN, 1-NN, 10 % and 30 % labels, and latency at
batch 1 on one thread where it was measured).

Published cells read "53.05 (published)" in Markdown and carry `published=true` with their source
in CSV; skipped models get a row with empty cells and a footnote with the reason.
"""

from __future__ import annotations

import csv
import io

from server.reporting.schemas import ReportCell, ReportPublic, ReportRow


def _params(row: ReportRow) -> str:
    return f"{row.params / 1e6:.2f} M" if row.params else "–"


def _cell_text(cell: ReportCell | None, primary: str) -> str:
    if cell is None:
        return "–"
    if cell.published:
        protocol = (
            "" if cell.protocol in ("knn_weighted", "knn_1nn_euclidean", "linear") else f", {cell.protocol}"
        )
        return f"{cell.mean:.2f} (published{protocol})"
    text = f"{cell.mean:.2f} ± {cell.std:.2f}" if cell.n > 1 else f"{cell.mean:.2f}"
    text += f" (n={cell.n}{', pooled' if cell.pooled else ''})"
    if cell.protocol != primary:
        text += f" [{cell.protocol}]"
    return text


def _image_size(row: ReportRow) -> str:
    if row.kind == "skipped":
        return "–"
    if row.image_size:
        return f"{row.image_size} px"
    return "see source" if row.published else "–"


def _other(row: ReportRow) -> str:
    """Figures outside the four columns, e.g. "linear @100 %: 97.70" (kept, never dropped silently)."""
    parts = []
    for cell in row.other:
        value = f"{cell.mean:.2f}" if cell.published or cell.n == 1 else f"{cell.mean:.2f} ± {cell.std:.2f}"
        parts.append(f"{cell.protocol} @{cell.label_fraction * 100:g} % labels: {value}")
    return f" (also {'; '.join(parts)})" if parts else ""


def _source(row: ReportRow) -> str:
    if row.kind == "published":
        return f"published: {row.citation or row.source}{_other(row)}"
    if row.kind == "skipped":
        return "skipped"
    runs = row.eval_run_ids or row.pending_run_ids
    return (f"measured: {', '.join(runs)}" if runs else "measured") + _other(row)


def _latency_text(row: ReportRow) -> str:
    """ "0.70 (onnxruntime fp32, 32 px)": measured here, also on a published row (whose accuracy is not)."""
    if row.latency is None:
        return "–"
    size = f", {row.latency.image_size} px" if row.latency.image_size else ""
    return f"{row.latency.median_ms:.2f} ({row.latency.runtime} {row.latency.precision}{size})"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: ReportPublic) -> str:
    """A Markdown table with a header line (dataset, protocols, image sizes) and footnotes."""
    measured_sizes = sorted(
        {
            cell.image_size
            for row in report.rows
            if row.kind == "measured"
            for cell in row.cells.values()
            if cell and cell.image_size
        }
    )
    sizes = ", ".join(f"{size} px" for size in measured_sizes) or "–"
    lines = [
        f"## LowDINO report: {report.dataset}",
        "",
        f"Dataset: **{report.dataset}**. Top-1 (%) as mean ± sample std over seeds (n values). "
        "kNN = weighted kNN on frozen features (DINO protocol); 1-NN = 1-nearest neighbour, Euclidean (the "
        "original LowDINO work's protocol); 10 % / 30 % labels = linear probe on frozen features "
        f"(another protocol is named in brackets). Measured at: {sizes}. "
        'Cells marked "(published)" are copied from their source, never measured here.',
        "",
    ]
    timed = any(row.latency is not None for row in report.rows)
    latency_header = ["latency (ms, batch 1, 1 thread)"] if timed else []
    header = [
        "model",
        "params",
        "image size",
        *(column.label for column in report.columns),
        *latency_header,
        "source",
    ]
    lines.append("| " + " | ".join(header) + " |")
    lines.append(
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in [*report.columns, *latency_header]) + " | --- |"
    )
    footnotes: list[str] = []
    for row in report.rows:
        model = row.model
        if row.kind == "skipped":
            footnotes.append(f"[^{len(footnotes) + 1}]: {row.model} was not evaluated: {row.reason}")
            model = f"{row.model} (skipped)[^{len(footnotes)}]"
        cells = [_cell_text(row.cells.get(column.key), column.protocols[0]) for column in report.columns]
        if timed:
            cells.append(_latency_text(row))
        lines.append(
            "| "
            + " | ".join(
                _escape(text) for text in [model, _params(row), _image_size(row), *cells, _source(row)]
            )
            + " |"
        )
    notes = []
    for note in report.protocols:
        label = next((column.label for column in report.columns if column.key == note.column), "other")
        at = ", ".join(f"{size} px" for size in note.image_sizes) or "image size: see source"
        origin = f"published, {note.source}" if note.published else "measured"
        notes.append(f"- {label} · {note.protocol} ({origin}; {at}): {_escape(note.description)}")
    notes += [f"- run {excluded.run_id} left out: {excluded.reason}" for excluded in report.excluded]
    # A heading with nothing under it reads as a truncated document: only written when it has notes.
    if notes:
        lines += ["", "Protocols:", "", *notes]
    if footnotes:
        lines += ["", *footnotes]
    return "\n".join(lines) + "\n"


def to_csv(report: ReportPublic) -> str:
    """One line per row; per column: mean, std, n, protocol, image size, runs (full precision)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["model", "kind", "published", "source", "params", "image_size", "dataset"]
    for column in report.columns:
        header += [
            f"{column.label} {part}" for part in ("mean", "std", "n", "protocol", "image_size", "runs")
        ]
    header += ["latency_ms", "latency_runtime", "latency_precision", "latency_image_size", "latency_runs"]
    header += ["training_runs", "eval_runs", "reason", "notes"]
    writer.writerow(header)
    for row in report.rows:
        line: list[object] = [
            row.model,
            row.kind,
            "true" if row.published else "false",
            row.source or "",
            row.params or "",
            row.image_size or "",
            report.dataset,
        ]
        for column in report.columns:
            cell = row.cells.get(column.key)
            if cell is None:
                line += [""] * 6
            else:
                line += [
                    repr(cell.mean),
                    repr(cell.std),
                    cell.n,
                    cell.protocol,
                    cell.image_size or "",
                    " ".join(cell.run_ids),
                ]
        latency = row.latency
        line += (
            [""] * 5
            if latency is None
            else [
                repr(latency.median_ms),
                latency.runtime,
                latency.precision,
                latency.image_size or "",
                " ".join(latency.run_ids),
            ]
        )
        line += [
            " ".join(row.training_run_ids),
            " ".join(row.eval_run_ids),
            row.reason or "",
            "; ".join(row.notes),
        ]
        writer.writerow(line)
    return buffer.getvalue()
