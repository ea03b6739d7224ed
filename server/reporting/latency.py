"""Latency beside accuracy: the deployment figure of a model, from eval runs' results.json `latency` rows.

The figure a row or a run is given is the median milliseconds per image at batch 1 on one thread (what
an edge device serving one request at a time sees), in the runtime that was fastest, with that runtime
named; the others stay listed. Several runs of one runtime give the median of their medians. Rows come
from `lowdino eval --protocols latency` (`lowdino.eval.latency.LatencyRow`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from server.reporting.schemas import ReportLatency

DEPLOY_BATCH = 1
DEPLOY_THREADS = 1
LATENCY_PROTOCOL = "latency"


def latency_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The well-formed latency rows of one results.json."""
    return [
        row
        for row in results.get("latency") or []
        if isinstance(row, dict)
        and row.get("protocol", LATENCY_PROTOCOL) == LATENCY_PROTOCOL
        and isinstance(row.get("median_ms"), int | float)
    ]


def deploy_latency(measured: Iterable[tuple[str, dict[str, Any]]]) -> ReportLatency | None:
    """The batch-1, one-thread figure of (run id, results.json) pairs of one model, or None."""
    groups: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for run_id, results in measured:
        for row in latency_rows(results):
            if row.get("batch_size") == DEPLOY_BATCH and row.get("threads") == DEPLOY_THREADS:
                key = (str(row.get("runtime") or "torch"), str(row.get("precision") or "fp32"))
                groups.setdefault(key, []).append((run_id, row))
    if not groups:
        return None
    medians = {
        key: statistics.median(float(row["median_ms"]) for _, row in rows) for key, rows in groups.items()
    }
    best = min(medians, key=lambda key: medians[key])
    rows = groups[best]
    sizes = sorted({int(row["image_size"]) for _, row in rows if isinstance(row.get("image_size"), int)})
    cpus = sorted({str(row["cpu_model"]) for _, row in rows if row.get("cpu_model")})
    notes = sorted({str(row["note"]) for _, row in rows if row.get("note")})
    return ReportLatency(
        median_ms=medians[best],
        runtime=best[0],
        precision=best[1],
        image_size=sizes[0] if len(sizes) == 1 else None,
        cpu_model=cpus[0] if len(cpus) == 1 else (" / ".join(cpus) or None),
        run_ids=list(dict.fromkeys(run_id for run_id, _ in rows)),
        runtimes={f"{runtime} {precision}": value for (runtime, precision), value in sorted(medians.items())},
        note="; ".join(notes) or None,
    )


def latency_text(latency: ReportLatency) -> str:
    """'3.21 ms (onnxruntime fp32, batch 1, 1 thread, 224 px)'."""
    size = f", {latency.image_size} px" if latency.image_size else ""
    return f"{latency.median_ms:.2f} ms ({latency.runtime} {latency.precision}, batch 1, 1 thread{size})"
