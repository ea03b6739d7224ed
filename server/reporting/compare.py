"""Side-by-side comparison of runs, with Plotly figure JSON and the library's published reference rows.

Figures (plain Plotly JSON: {"data": [traces], "layout": {...}}):

    curves_loss, curves_knn_top1   the runs' series overlaid (downsampled, first/last/min/max kept)
    accuracy_vs_params             kNN top-1 against parameter count (log x); published rows
                                   are a separate trace named "published ..."
    label_fractions                grouped bars: kNN / 10 % labels / 30 % labels per run and per
                                   published model

Every figure is one look at one checkpoint, never the best of several looks: an eval run's figures
come from its results.json (mean over seeds; for a label fraction the first protocol of
PROBE_PROTOCOLS it measured, not the highest); a training run's kNN is its final checkpoint's
(the monitor's last value, on the validation split), with the best monitor value beside it as
`best_val_knn_top1`. Each row says which protocol each figure is (`score_protocols`), the image
size it was measured at, and whether the run learned from the labels (`labels_used`); labels and
legends carry the image size and a "[labels]" mark.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from lowdino.contract.rundir import RESULTS_JSON
from server.metrics.downsample import downsample_series
from server.reporting.figures import Point, accuracy_vs_params
from server.reporting.latency import deploy_latency, latency_text
from server.reporting.schemas import ReportLatency
from server.runs import queries as run_queries
from server.runs.paths import owned_run_dir
from server.settings import Settings
from server.storage.models import Run
from server.vocabulary import TRAINING_KINDS, RunKind, RunStatus

CURVE_KEYS = ("loss", "knn_top1")
# The reference model every small backbone is set against (README, /compare?vs=dinov2).
REFERENCE_BACKBONE = "dinov2_vits14"
REFERENCE_NAME = "DINOv2 ViT-S/14"
BAR_GROUPS = (("kNN", None), ("10% labels", 0.1), ("30% labels", 0.3))
# Preference order when a run measured several protocols at one label fraction.
PROBE_PROTOCOLS = ("linear", "mlp_probe", "linear_online", "finetune")
KNN_PROTOCOLS = ("knn", "knn_weighted", "knn_seed", "knn_1nn_euclidean")
IGNORED_CONFIG_KEYS = frozenset({"output_dir", "resume"})
MONITOR_PROTOCOL = "knn (training monitor, validation split, final checkpoint)"


def config_dataset(run: Run) -> str:
    """The dataset a run's config says its data is: dataset_name when declared, else the dataset option."""
    config = run.config or {}
    return str(config.get("dataset_name") or config.get("dataset") or "cifar10")


def _label(run: Run) -> str:
    return f"{run.name or run.id} ({run.id[:6]})"


def read_results(settings: Settings, run: Run) -> dict[str, Any]:
    """The run's results.json (an eval run that wrote one), else {}."""
    run_dir = owned_run_dir(settings, run.output_dir)
    if run_dir is None or not (run_dir / RESULTS_JSON).is_file():
        return {}
    try:
        data = json.loads(Path(run_dir / RESULTS_JSON).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def eval_results(settings: Settings, run: Run) -> list[dict[str, Any]]:
    """The `results` rows of the run's results.json, if it is an eval run that wrote one."""
    rows = read_results(settings, run).get("results")
    return [row for row in rows or [] if isinstance(row, dict)]


def _latest(run: Run, key: str) -> float | None:
    value = (run.latest_metrics or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def _best(run: Run, key: str) -> float | None:
    entry = (run.best_metrics or {}).get(key)
    return float(entry["value"]) if isinstance(entry, dict) and "value" in entry else None


@dataclass
class RunFigures:
    """A run's three comparison figures, what protocol each is, and under what conditions."""

    scores: dict[str, float | None]
    protocols: dict[str, str | None]
    image_size: int | None = None
    labels_used: float = 0.0
    best_val_knn_top1: float | None = None
    all_results: dict[str, float] = field(default_factory=dict)


def _training_image_size(run: Run) -> int | None:
    config = run.config or {}
    size = config.get("crop_size") if run.kind == RunKind.DISTILL else config.get("global_crop_size")
    return int(size) if isinstance(size, int) else None


def _training_labels_used(run: Run) -> float:
    config = run.config or {}
    return 1.0 if run.kind == RunKind.DISTILL and float(config.get("label_loss_weight") or 0) > 0 else 0.0


def run_figures(settings: Settings, run: Run) -> RunFigures:
    groups = [group for group, _ in BAR_GROUPS]
    figures = RunFigures(scores=dict.fromkeys(groups), protocols=dict.fromkeys(groups))
    results = read_results(settings, run)
    for row in eval_results(settings, run):
        protocol, fraction, mean = row.get("protocol"), row.get("label_fraction"), row.get("mean")
        if not isinstance(mean, int | float) or not isinstance(protocol, str):
            continue
        figures.all_results[f"{protocol}@{fraction}"] = float(mean)
    for group, wanted in BAR_GROUPS:
        candidates = ("knn",) if wanted is None else PROBE_PROTOCOLS
        fraction = 1.0 if wanted is None else wanted
        for protocol in candidates:
            value = figures.all_results.get(f"{protocol}@{fraction}")
            if value is not None:
                figures.scores[group], figures.protocols[group] = value, protocol
                break
    if results:
        size = results.get("image_size")
        figures.image_size = int(size) if isinstance(size, int) else None
        figures.labels_used = float(results.get("labels_used") or 0.0)
    else:
        figures.image_size = _training_image_size(run)
        figures.labels_used = _training_labels_used(run)
        figures.best_val_knn_top1 = _best(run, "knn_top1")
        if figures.scores["kNN"] is None and _latest(run, "knn_top1") is not None:
            figures.scores["kNN"] = _latest(run, "knn_top1")
            figures.protocols["kNN"] = MONITOR_PROTOCOL
    return figures


def _chart_label(run: Run, figures: RunFigures) -> str:
    size = f" @{figures.image_size}px" if figures.image_size else ""
    labels = " [labels]" if figures.labels_used else ""
    return f"{_label(run)}{size}{labels}"


def reference_scores(references: list[dict[str, Any]], dataset: str) -> dict[str, dict[str, Any]]:
    """Published rows of `dataset` grouped by model: params and the same three figures."""
    models: dict[str, dict[str, Any]] = {}
    for row in references:
        if row.get("dataset") != dataset:
            continue
        entry = models.setdefault(
            row["model"],
            {
                "params": row.get("params_millions"),
                "source": row.get("source"),
                "backbone": row.get("backbone"),
                "scores": {g: None for g, _ in BAR_GROUPS},
            },
        )
        scores = entry["scores"]
        protocol, fraction, top1 = row.get("protocol"), row.get("label_fraction"), row.get("top1")
        # Weighted kNN (what we measure) wins over the 1-NN figure when a source has both.
        if (
            protocol in KNN_PROTOCOLS
            and fraction == 1.0
            and (scores["kNN"] is None or protocol == "knn_weighted")
        ):
            scores["kNN"] = top1
            entry["knn_protocol"] = protocol
        for group, wanted in BAR_GROUPS[1:]:
            if protocol in PROBE_PROTOCOLS and fraction == wanted and scores[group] is None:
                scores[group] = top1
    return models


def run_latency(session: Session, settings: Settings, run: Run) -> ReportLatency | None:
    """An eval run's own latency rows; a training run's from its newest completed evaluation that has them."""
    own = deploy_latency([(run.id, read_results(settings, run))])
    if own is not None or run.kind not in TRAINING_KINDS:
        return own
    children = run_queries.list_children(session, parent_ids=[run.id], kind=RunKind.EVAL)
    for child in reversed(children):
        if child.status == RunStatus.COMPLETED:
            found = deploy_latency([(child.id, read_results(settings, child))])
            if found is not None:
                return found
    return None


def _timing(latency: ReportLatency) -> str:
    """'0.70 ms (onnxruntime fp32, 1 thread, 32 px)'."""
    size = f", {latency.image_size} px" if latency.image_size else ""
    return f"{latency.median_ms:.2f} ms ({latency.runtime} {latency.precision}, 1 thread{size})"


def _points(difference: float) -> str:
    """'−21.0' / '+3.2', with a real minus sign."""
    return f"{'−' if difference < 0 else '+'}{abs(difference):.1f}"


def versus_reference(
    runs: list[Run],
    latencies: dict[str, ReportLatency | None],
    figures_of: dict[str, RunFigures],
    published: dict[str, dict[str, Any]],
) -> list[str]:
    """One sentence per small model timed here against DINOv2 ViT-S/14 timed here: how many times faster
    at batch 1 on this CPU, and the kNN difference (DINOv2's own kNN when measured, else the published
    figure, said so)."""
    timed_reference = [run for run in runs if run.backbone == REFERENCE_BACKBONE and latencies.get(run.id)]
    if not timed_reference:
        return []
    reference = min(timed_reference, key=lambda run: latencies[run.id].median_ms)  # type: ignore[union-attr]
    reference_latency = latencies[reference.id]
    assert reference_latency is not None
    scores = {run_id: figures.scores for run_id, figures in figures_of.items()}
    measured_knn = next(
        (
            scores[run.id]["kNN"]
            for run in runs
            if run.backbone == REFERENCE_BACKBONE and scores[run.id]["kNN"]
        ),
        None,
    )
    published_knn = next(
        (
            (model, entry)
            for model, entry in published.items()
            if entry.get("backbone") == REFERENCE_BACKBONE and entry["scores"].get("kNN") is not None
        ),
        None,
    )
    sentences = []
    for run in runs:
        latency = latencies.get(run.id)
        if run.backbone == REFERENCE_BACKBONE or latency is None:
            continue
        ratio = reference_latency.median_ms / latency.median_ms
        speed = f"{ratio:.1f}× faster" if ratio >= 1 else f"{1 / ratio:.1f}× slower"
        same_cpu = latency.cpu_model == reference_latency.cpu_model or not latency.cpu_model
        where = "on this CPU" if same_cpu else f"({latency.cpu_model} against {reference_latency.cpu_model})"
        sentence = (
            f"{run.name or run.backbone} ({run.id[:6]}) is {speed} than {REFERENCE_NAME} {where} at batch 1"
        )
        knn = scores[run.id]["kNN"]
        ours = f"{knn:.2f} % measured, {figures_of[run.id].protocols['kNN']}" if knn is not None else ""
        if knn is not None and measured_knn is not None:
            sentence += (
                f", {_points(knn - measured_knn)} kNN points ({ours}; DINOv2 {measured_knn:.2f} % measured)"
            )
        elif knn is not None and published_knn is not None:
            model, entry = published_knn
            difference = knn - float(entry["scores"]["kNN"])
            sentence += (
                f", {_points(difference)} kNN points ({ours}; {model}: {entry['scores']['kNN']:.2f} % "
                f"{entry.get('knn_protocol')}, published by {entry['source']}, not measured here)"
            )
        else:
            sentence += " (no kNN figure on both sides to compare accuracy)"
        sentence += f"; {_timing(latency)} per image against {_timing(reference_latency)}"
        sentences.append(sentence + ".")
    return sentences


def differing_config(runs: list[Run]) -> dict[str, dict[str, Any]]:
    """key -> {run id: value} for every config key whose value is not the same in all runs."""
    keys = sorted({key for run in runs for key in (run.config or {})} - IGNORED_CONFIG_KEYS)
    differing: dict[str, dict[str, Any]] = {}
    for key in keys:
        values = {run.id: (run.config or {}).get(key) for run in runs}
        if len({json.dumps(value, sort_keys=True) for value in values.values()}) > 1:
            differing[key] = values
    return differing


def _curve_figure(session: Session, runs: list[Run], key: str, max_points: int) -> dict[str, Any]:
    traces = []
    for run in runs:
        series = downsample_series(session, run_id=run.id, key=key, max_points=max_points)
        if series.steps:
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": _label(run),
                    "x": series.steps,
                    "y": series.values,
                }
            )
    return {
        "data": traces,
        "layout": {
            "title": {"text": key},
            "xaxis": {"title": {"text": "step"}},
            "yaxis": {"title": {"text": key}},
        },
    }


def compare_runs(
    session: Session,
    settings: Settings,
    runs: list[Run],
    references: list[dict[str, Any]],
    *,
    max_points: int = 500,
) -> dict[str, Any]:
    datasets = Counter(config_dataset(run) for run in runs)
    dataset = datasets.most_common(1)[0][0] if datasets else "cifar10"
    figures_of = {run.id: run_figures(settings, run) for run in runs}
    scores = {run_id: figures.scores for run_id, figures in figures_of.items()}
    chart_labels = {run.id: _chart_label(run, figures_of[run.id]) for run in runs}
    published = reference_scores(references, dataset)
    latencies = {run.id: run_latency(session, settings, run) for run in runs}
    # A published model takes the latency measured here for its backbone (its accuracy stays published).
    timed_backbones: dict[str, ReportLatency] = {}
    for run in runs:
        latency = latencies[run.id]
        known = timed_backbones.get(run.backbone or "")
        if run.backbone and latency is not None and (known is None or latency.median_ms < known.median_ms):
            timed_backbones[run.backbone] = latency

    rows = [
        {
            "id": run.id,
            "name": run.name,
            "label": _label(run),
            "kind": run.kind,
            "status": run.status,
            "backbone": run.backbone,
            "params": run.params,
            "final_metrics": dict(run.latest_metrics or {}),
            "best_metrics": {key: entry.get("value") for key, entry in (run.best_metrics or {}).items()},
            "scores": scores[run.id],
            "score_protocols": figures_of[run.id].protocols,
            "results": figures_of[run.id].all_results,
            "best_val_knn_top1": figures_of[run.id].best_val_knn_top1,
            "image_size": figures_of[run.id].image_size,
            "labels_used": figures_of[run.id].labels_used,
            "latency": latencies[run.id],
            "published": False,
        }
        for run in runs
    ]
    reference_rows = [
        {
            "model": model,
            "params_millions": entry["params"],
            "source": entry["source"],
            "scores": entry["scores"],
            "backbone": entry["backbone"],
            "latency": timed_backbones.get(entry["backbone"] or ""),
            "published": True,
        }
        for model, entry in published.items()
    ]

    measured = [run for run in runs if run.params and scores[run.id]["kNN"] is not None]
    with_params = {m: e for m, e in published.items() if e["params"] and e["scores"]["kNN"] is not None}
    scatter = accuracy_vs_params(
        [
            Point(float(run.params or 0), float(scores[run.id]["kNN"] or 0), chart_labels[run.id])
            for run in measured
        ],
        [
            Point(entry["params"] * 1e6, entry["scores"]["kNN"], f"{model} [published]")
            for model, entry in with_params.items()
        ],
        title=f"kNN top-1 vs parameters ({dataset})",
    )
    groups = [group for group, _ in BAR_GROUPS]
    bars = {
        "data": [
            {
                "type": "bar",
                "name": chart_labels[run.id],
                "x": groups,
                "y": [scores[run.id][g] for g in groups],
                "customdata": [figures_of[run.id].protocols[g] for g in groups],
            }
            for run in runs
        ]
        + [
            {
                "type": "bar",
                "name": f"{model} [published]",
                "x": groups,
                "y": [entry["scores"][g] for g in groups],
                "marker": {"pattern": {"shape": "/"}},
            }
            for model, entry in published.items()
        ],
        "layout": {
            "title": {"text": f"Top-1 by labels used ({dataset})"},
            "barmode": "group",
            "yaxis": {"title": {"text": "top-1 (%)"}},
        },
    }
    figures = {f"curves_{key}": _curve_figure(session, runs, key, max_points) for key in CURVE_KEYS}
    figures["accuracy_vs_params"] = scatter
    figures["accuracy_vs_latency"] = accuracy_vs_params(
        [
            Point(
                latency.median_ms,
                float(scores[run.id]["kNN"] or 0),
                chart_labels[run.id],
                latency_text(latency),
            )
            for run in runs
            if (latency := latencies[run.id]) is not None and scores[run.id]["kNN"] is not None
        ],
        [
            Point(
                row["latency"].median_ms,
                row["scores"]["kNN"],
                f"{row['model']} [published]",
                f"published accuracy ({row['source']}); latency measured here: {latency_text(row['latency'])}",
            )
            for row in reference_rows
            if row["latency"] is not None and row["scores"]["kNN"] is not None
        ],
        title=f"kNN top-1 vs latency ({dataset})",
        x_title="ms per image (batch 1, 1 thread, measured here)",
        published_name="published accuracy, latency measured here",
        with_front=True,
    )
    figures["label_fractions"] = bars
    return {
        "dataset": dataset,
        "runs": rows,
        "references": reference_rows,
        "versus_dinov2": versus_reference(runs, latencies, figures_of, published),
        "differing_config": differing_config(runs),
        "figures": figures,
    }
