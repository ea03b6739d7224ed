"""Evaluation results: one row per model, one cell per (protocol, label fraction), mean ± std over seeds.

Measured rows and published rows (`lowdino.eval.references`) share a table only through
`format_table`, which marks every published row "published" in its own column so that a figure
copied from a paper is never read as one measured here.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lowdino.contract.rundir import RESULTS_CSV, RESULTS_JSON, atomic_write_text
from lowdino.eval.references import ReferenceResult

PROTOCOL_LABELS = {"knn": "kNN", "knn_seed": "1-NN", "linear": "linear", "finetune": "finetune"}


@dataclass
class ProtocolResult:
    """Top-1 (percent) of one protocol at one label fraction, one value per seed."""

    protocol: str  # knn (weighted, DINO), knn_seed (1-NN Euclidean), linear, finetune
    label_fraction: float
    values: list[float]
    seeds: list[int]

    @property
    def column(self) -> str:
        label = PROTOCOL_LABELS.get(self.protocol, self.protocol)
        if self.protocol in ("knn", "knn_seed") and self.label_fraction == 1.0:
            return label
        return f"{label}@{self.label_fraction * 100:g}%"

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        # Sample standard deviation over seeds; a single run has no spread to report.
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def cell(self) -> str:
        return f"{self.mean:.2f} ± {self.std:.2f}" if len(self.values) > 1 else f"{self.mean:.2f}"


@dataclass
class EvalResults:
    model: str
    backbone: str
    source: str
    params: int
    feature_dim: int
    dataset: str
    image_size: int
    train_size: int
    test_size: int
    num_classes: int
    results: list[ProtocolResult]
    labels_used: float = 0.0  # of the training labels, by the pretraining (see EvalModel.labels_used)
    references: list[ReferenceResult] = field(default_factory=list)
    output_dir: str | None = None
    wall_time_s: float = 0.0
    runtime: str = "torch"  # what computed the features: torch, onnxruntime, torchscript
    precision: str = "fp32"
    artifact: str | None = None  # the exported file evaluated (`lowdino eval --artifact`)
    note: str | None = None  # e.g. "random weights: latency only"
    # Rows of the latency protocol (`lowdino.eval.latency.LatencyRow.as_dict`, "protocol": "latency"),
    # apart from ``results`` whose cells are all top-1.
    latency: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["results"] = [
            {**asdict(result), "column": result.column, "mean": result.mean, "std": result.std}
            for result in self.results
        ]
        data["measured"] = True
        return data

    def table(self) -> str:
        return format_table([self], self.references)


def _published_cells(reference: ReferenceResult) -> tuple[str, str]:
    """(column, cell) of a published row in the measured table's vocabulary."""
    protocol = {
        "knn_weighted": "knn",
        "knn_1nn_euclidean": "knn_seed",
        "mlp_probe": "mlp",
        "linear_online": "linear (online)",
    }.get(reference.protocol, reference.protocol)
    fraction = reference.label_fraction
    column = PROTOCOL_LABELS.get(protocol, protocol)
    if not (protocol in ("knn", "knn_seed") and fraction == 1.0):
        column = f"{column}@{fraction * 100:g}%"
    return column, f"{reference.top1:.2f}"


def table_rows(
    measured: list[EvalResults], references: list[ReferenceResult] | None = None
) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) with measured rows first, then published rows grouped by model."""
    columns: list[str] = []
    rows: list[dict[str, str]] = []
    for result in measured:
        source = "measured"
        if result.labels_used:
            # Not a low-label result: the pretraining already learned from these labels.
            source += f"; pretraining used {result.labels_used * 100:g} % of the labels"
        row = {
            "model": result.model,
            "params": f"{result.params / 1e6:.2f} M",
            "image size": f"{result.image_size} px",
            "source": source,
        }
        for cell in result.results:
            if cell.column not in columns:
                columns.append(cell.column)
            row[cell.column] = cell.cell()
        rows.append(row)
    # One row per (model, source): figures from different papers never share a row.
    published: dict[tuple[str, str], dict[str, str]] = {}
    for reference in references or []:
        column, value = _published_cells(reference)
        if column not in columns:
            columns.append(column)
        params = f"{reference.params_millions:g} M" if reference.params_millions is not None else "?"
        row = published.setdefault(
            (reference.model, reference.source),
            {
                "model": reference.model,
                "params": params,
                "image size": f"{reference.image_size} px" if reference.image_size else "see source",
                "source": f"published ({reference.citation})",
            },
        )
        row[column] = value
    rows.extend(published.values())
    return ["model", "params", "image size", *columns, "source"], rows


def format_table(measured: list[EvalResults], references: list[ReferenceResult] | None = None) -> str:
    """Plain-text table, one row per model; published rows say "published (<citation>)" in ``source``."""
    header, rows = table_rows(measured, references)
    widths = {name: max(len(name), *(len(row.get(name, "-")) for row in rows)) for name in header}
    lines = ["  ".join(name.ljust(widths[name]) for name in header)]
    lines.append("  ".join("-" * widths[name] for name in header))
    lines += ["  ".join(row.get(name, "-").ljust(widths[name]) for name in header) for row in rows]
    return "\n".join(lines)


def format_latency(results: EvalResults) -> str:
    """Plain-text table of the latency rows (empty when the protocol did not run)."""
    if not results.latency:
        return ""
    header = ["runtime", "precision", "batch", "threads", "median ms/img", "p90 ms/img", "img/s", "peak MB"]
    rows = [
        [
            row["runtime"],
            row["precision"],
            str(row["batch_size"]),
            str(row["threads"]),
            f"{row['median_ms']:.3f}",
            f"{row['p90_ms']:.3f}",
            f"{row['images_per_s']:.1f}",
            f"{row['peak_memory_mb']:.0f}",
        ]
        for row in results.latency
    ]
    widths = [max(len(name), *(len(row[i]) for row in rows)) for i, name in enumerate(header)]
    lines = ["  ".join(name.ljust(width) for name, width in zip(header, widths, strict=True))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    first = results.latency[0]
    lines.append(
        f"{results.image_size} px, {first['device']} ({first['cpu_model']})"
        + (f"; {results.note}" if results.note else "")
    )
    return "\n".join(lines)


def format_markdown(measured: list[EvalResults], references: list[ReferenceResult] | None = None) -> str:
    header, rows = table_rows(measured, references)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row.get(name, "-") for name in header) + " |" for row in rows]
    return "\n".join(lines)


def results_csv(results: EvalResults) -> str:
    """One line per (protocol, fraction, seed): the raw figures behind every table cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "model",
            "backbone",
            "params",
            "dataset",
            "image_size",
            "labels_used",
            "protocol",
            "label_fraction",
            "seed",
            "top1",
        ]
    )
    for cell in results.results:
        for seed, value in zip(cell.seeds, cell.values, strict=True):
            writer.writerow(
                [
                    results.model,
                    results.backbone,
                    results.params,
                    results.dataset,
                    results.image_size,
                    results.labels_used,
                    cell.protocol,
                    cell.label_fraction,
                    seed,
                    f"{value:.4f}",
                ]
            )
    return buffer.getvalue()


def write_results(results: EvalResults, output_dir: Path) -> tuple[Path, Path]:
    """results.json (everything, published references included and marked) and results.csv."""
    json_path, csv_path = output_dir / RESULTS_JSON, output_dir / RESULTS_CSV
    atomic_write_text(json_path, json.dumps(results.to_dict(), indent=2) + "\n")
    atomic_write_text(csv_path, results_csv(results))
    return json_path, csv_path
