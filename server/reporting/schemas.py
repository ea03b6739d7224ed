"""Response body of GET /api/report: the original work's table, regenerated from runs (server.reporting.report).

Rows are models, columns the four figures of the original LowDINO table (kNN, 1-NN, 10 % and 30 %
labels). A row is measured (its cells come from eval runs' results.json), published (copied from a
paper, never measured here) or skipped (a model the caller wanted but could not evaluate).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from server.schemas import PlotlyFigure

RowKind = Literal["measured", "published", "skipped"]


class ReportColumn(BaseModel):
    key: str = Field(description="Key of the column in every row's `cells`.")
    label: str = Field(description="Header text, e.g. '10 % labels'.")
    label_fraction: float = Field(description="Fraction of the training labels the figure may use.")
    protocols: list[str] = Field(description="Measured protocols that fill it, preferred first.")


class ReportCell(BaseModel):
    """One figure: mean ± std (sample) of top-1 % over seeds, with where and how it was measured."""

    mean: float
    std: float = Field(description="Sample standard deviation over `values`; 0 for a single value.")
    n: int = Field(description="Number of per-seed values behind the mean (published: 1).")
    values: list[float] = Field(description="The per-seed values (published: the one reported figure).")
    seeds: list[int]
    protocol: str = Field(description="knn, knn_seed, linear, finetune; published rows: the source's name.")
    label_fraction: float
    image_size: int | None = Field(description="Side of the images the figure was measured at (px).")
    run_ids: list[str] = Field(description="Eval runs the values come from (empty for published).")
    pooled: bool = Field(description="True when the values of several eval runs were pooled.")
    published: bool
    source: str | None = Field(None, description="Where a published figure was copied from.")
    note: str | None = Field(None, description="What a reader must know, e.g. a fallback protocol.")


class ReportLatency(BaseModel):
    """Milliseconds per image of a row's model at batch 1 on one thread, measured here (eval runs'
    results.json `latency` rows), in the runtime that was fastest; every measured runtime in `runtimes`."""

    median_ms: float = Field(description="Median milliseconds per image (median over runs when several).")
    runtime: str = Field(description="torch, onnxruntime, executorch or torchscript.")
    precision: str = Field(description="fp32, or int8 for a quantized artifact.")
    batch_size: int = 1
    threads: int = 1
    image_size: int | None = Field(description="Side of the timed images (px).")
    cpu_model: str | None = Field(None, description="The CPU the figure was measured on.")
    run_ids: list[str] = Field(description="Eval runs whose latency rows give the figure.")
    runtimes: dict[str, float] = Field(
        default_factory=dict,
        description="'<runtime> <precision>' -> median ms per image, every one measured.",
    )
    note: str | None = Field(None, description="e.g. timed with random weights (latency only).")


class ReportRow(BaseModel):
    key: str = Field(description="Stable identifier of the row within the report.")
    model: str = Field(description="Display name of the model.")
    kind: RowKind
    published: bool
    backbone: str | None
    method: str | None = Field(description="Pretraining method (dino, byol, distill:<loss>) or baseline.")
    epochs: int | None = Field(description="Pretraining epochs of a LowDINO-trained backbone.")
    pretrain_image_size: int | None = Field(description="Global crop size the backbone was trained at.")
    image_size: int | None = Field(description="Evaluation image size of the row's measured cells (px).")
    params: int | None = Field(description="Parameters of the evaluated backbone.")
    labels_used: float = Field(0.0, description="Fraction of the training labels the pretraining used.")
    source: str | None = Field(description="'measured', the published source, or None for skipped.")
    citation: str | None = None
    reason: str | None = Field(None, description="Why a skipped row was not evaluated.")
    training_run_ids: list[str] = Field(description="Pretrain/distill runs that produced the backbone.")
    eval_run_ids: list[str] = Field(description="Eval runs with results behind the row's cells.")
    pending_run_ids: list[str] = Field(description="Runs of the row still without results.")
    cells: dict[str, ReportCell | None] = Field(description="Column key -> cell (None: no figure).")
    other: list[ReportCell] = Field(description="Figures outside the four columns (e.g. 100 % labels).")
    latency: ReportLatency | None = Field(
        None,
        description="Measured here at batch 1, one thread (published rows too: their latency is ours, "
        "their accuracy the source's).",
    )
    notes: list[str]


class ProtocolNote(BaseModel):
    """The resolution and protocol of a group of numbers in the table."""

    column: str = Field(description="Column key, or 'other'.")
    protocol: str
    published: bool
    source: str | None
    image_sizes: list[int] = Field(description="Image sides (px) the numbers were measured at, if known.")
    description: str


class ExcludedRun(BaseModel):
    run_id: str
    reason: str


class ReportPublic(BaseModel):
    dataset: str = Field(description="The dataset every measured number is on; published rows are for it.")
    columns: list[ReportColumn]
    rows: list[ReportRow] = Field(description="Measured rows, then published rows, then skipped rows.")
    protocols: list[ProtocolNote]
    figures: dict[str, PlotlyFigure] = Field(
        description="Column key -> top-1 against parameters (log x), Pareto front over measured rows; "
        "'<column key>:latency' -> top-1 against measured latency (ms per image, batch 1, one thread)."
    )
    chart_column: str | None = Field(description="The column the report's chart shows first.")
    run_ids: list[str] = Field(description="The runs the report was asked for.")
    excluded: list[ExcludedRun] = Field(description="Given runs left out of the table, with the reason.")
    notes: list[str]
