"""Report rows of models not evaluated yet: their training's kNN monitor, labelled, instead of "–";
and a Markdown export with nothing to note ends without an empty "Protocols:" heading."""

from __future__ import annotations

import statistics
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from server.metrics.queries import ingest_metrics
from server.reporting.export import to_markdown
from server.reporting.report import build_report
from server.runs import queries as run_queries
from server.settings import Settings
from server.storage.models import Run, new_run_id
from server.vocabulary import RunStatus

PRETRAIN = {
    "dataset": "cifar10",
    "backbone": "mobilevit_s",
    "method": "dino",
    "n_epochs": 2,
    "global_crop_size": 32,
}


def trained(
    session: Session, settings: Settings, config: dict[str, Any], records: list[dict[str, Any]]
) -> Run:
    run_id = new_run_id()
    settings.run_dir(run_id).mkdir(parents=True)
    run_queries.create_run(
        session, kind="pretrain", config=config, run_id=run_id, output_dir=str(settings.run_dir(run_id))
    )
    run_queries.update_run_status(session, run_id=run_id, status=RunStatus.RUNNING)
    if records:
        ingest_metrics(session, run_id=run_id, records=records)
    return run_queries.update_run_status(session, run_id=run_id, status=RunStatus.COMPLETED)


def test_monitor_knn_fills_the_knn_cell_labelled_as_the_monitor(
    client: TestClient, session: Session, settings: Settings
) -> None:
    runs = [
        trained(session, settings, {**PRETRAIN, "seed": seed}, [{"step": 10, "loss": 3.0, "knn_top1": knn}])
        for seed, knn in ((0, 40.0), (1, 44.0))
    ]
    report = build_report(session, settings, runs=runs)
    (row,) = [row for row in report.rows if row.kind == "measured"]
    cell = row.cells["knn"]
    assert cell is not None
    assert cell.protocol == "knn_monitor"
    assert cell.mean == 42.0
    assert cell.std == statistics.stdev([40.0, 44.0])
    assert sorted(cell.run_ids) == sorted(run.id for run in runs)
    assert "validation split" in (cell.note or "")
    assert row.cells["labels_10"] is None  # no probe was measured: nothing invented
    markdown = to_markdown(report)
    assert "42.00 ± 2.83 (n=2, pooled) [knn_monitor]" in markdown
    assert "knn_monitor (measured" in markdown
    assert "validation split held out of the training images" in markdown
    # The page gets the same cell through the API.
    body = client.get("/api/report", params={"runs": ",".join(run.id for run in runs)}).json()
    (measured,) = [row for row in body["rows"] if row["kind"] == "measured"]
    assert measured["cells"]["knn"]["protocol"] == "knn_monitor"


def test_markdown_has_no_empty_protocols_heading(session: Session, settings: Settings) -> None:
    # Synthetic data has no published figures, and a run without a monitor has no figure: nothing to note.
    run = trained(session, settings, {**PRETRAIN, "dataset": "synthetic"}, [{"step": 10, "loss": 3.0}])
    report = build_report(session, settings, runs=[run])
    assert report.protocols == []
    markdown = to_markdown(report)
    assert "Protocols:" not in markdown
    assert markdown.rstrip().splitlines()[-1].startswith("|")
