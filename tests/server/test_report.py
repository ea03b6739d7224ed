"""The report (server.reporting.report, GET /api/report): measured cells equal the eval runs' results.json means,
pretraining seeds pool, published rows stay separate and marked, skipped rows carry their reason, and
the CSV / Markdown exports say the same. Runs and their results.json files are arranged the way the
worker leaves them (results written by the library's own writer), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import statistics
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from lowdino.contract.rundir import RESULTS_JSON
from lowdino.eval.results import EvalResults, ProtocolResult, write_results
from server.campaigns import queries as sweep_queries
from server.http.app import create_app
from server.reporting.export import to_csv, to_markdown
from server.reporting.report import build_report
from server.runs import queries as run_queries
from server.settings import Settings
from server.storage.models import Run, new_run_id

PRETRAIN = {
    "dataset": "cifar10",
    "backbone": "mobilevit_s",
    "method": "dino",
    "n_epochs": 2,
    "global_crop_size": 32,
}


def make_run(
    session: Session,
    settings: Settings,
    *,
    kind: str,
    config: dict[str, Any],
    parent_id: str | None = None,
    status: str = "completed",
    params: int | None = None,
) -> Run:
    run_id = new_run_id()
    run_dir = settings.run_dir(run_id)
    run_dir.mkdir(parents=True)
    run_queries.create_run(
        session, kind=kind, config=config, run_id=run_id, output_dir=str(run_dir), parent_id=parent_id
    )
    return run_queries.update_run_status(session, run_id=run_id, status=status, params=params)


def write_eval_results(
    settings: Settings,
    run: Run,
    cells: list[tuple[str, float, list[float], list[int]]],
    *,
    backbone: str = "mobilevit_s",
    params: int = 4_940_000,
    image_size: int = 32,
    dataset: str = "cifar10",
) -> dict[str, Any]:
    """results.json written by lowdino.eval.results.write_results, read back as the report reads it."""
    results = EvalResults(
        model=f"{backbone} (test)",
        backbone=backbone,
        source="checkpoint",
        params=params,
        feature_dim=640,
        dataset=dataset,
        image_size=image_size,
        train_size=500,
        test_size=100,
        num_classes=10,
        results=[
            ProtocolResult(protocol, fraction, values, seeds) for protocol, fraction, values, seeds in cells
        ],
    )
    write_results(results, settings.run_dir(run.id))
    return json.loads((settings.run_dir(run.id) / RESULTS_JSON).read_text())


def json_mean(results: dict[str, Any], protocol: str, fraction: float) -> float:
    return next(
        row["mean"]
        for row in results["results"]
        if row["protocol"] == protocol and row["label_fraction"] == fraction
    )


def rows_by_kind(report: Any, kind: str) -> list[Any]:
    return [row for row in report.rows if row.kind == kind]


def test_single_eval_run_cells_equal_its_results_json(
    client: TestClient, session: Session, settings: Settings
) -> None:
    run = make_run(
        session,
        settings,
        kind="eval",
        config={"dataset": "cifar10", "backbone": "resnet50", "pretrained": True},
    )
    # Values whose mean is not exactly representable: the cell must still be the file's mean, bit for bit.
    written = write_eval_results(
        settings,
        run,
        [
            ("knn", 1.0, [41.123456789], [0]),
            ("knn_seed", 1.0, [35.1], [0]),
            ("linear", 0.1, [45.1, 45.7, 44.9], [0, 1, 2]),
            ("linear", 0.3, [50.3, 50.1, 51.7], [0, 1, 2]),
            ("linear", 1.0, [60.0], [0]),
        ],
        backbone="resnet50",
        params=23_508_032,
        image_size=224,
    )
    report = build_report(session, settings, runs=[run])
    (row,) = rows_by_kind(report, "measured")
    assert row.model == "resnet50 (pretrained)"
    assert row.params == 23_508_032
    assert row.image_size == 224
    for key, protocol, fraction in (
        ("knn", "knn", 1.0),
        ("nn1", "knn_seed", 1.0),
        ("labels_10", "linear", 0.1),
        ("labels_30", "linear", 0.3),
    ):
        cell = row.cells[key]
        assert cell is not None
        assert cell.mean == json_mean(written, protocol, fraction)
        assert (cell.protocol, cell.run_ids, cell.pooled, cell.published, cell.image_size) == (
            protocol,
            [run.id],
            False,
            False,
            224,
        )
    assert row.cells["labels_10"].n == 3
    assert row.cells["labels_10"].std == next(
        r["std"] for r in written["results"] if r["label_fraction"] == 0.1
    )
    # Figures outside the four columns are kept, not dropped.
    assert [(cell.protocol, cell.label_fraction) for cell in row.other] == [("linear", 1.0)]
    assert row.eval_run_ids == [run.id]
    assert row.notes == []
    assert {note.column for note in report.protocols if not note.published} == {
        "knn",
        "nn1",
        "labels_10",
        "labels_30",
        "other",
    }
    # The same through the API, exactly.
    body = client.get("/api/report", params={"runs": run.id}).json()
    (api_row,) = [row for row in body["rows"] if row["kind"] == "measured"]
    assert api_row["cells"]["labels_30"]["mean"] == json_mean(written, "linear", 0.3)
    assert api_row["cells"]["knn"]["mean"] == json_mean(written, "knn", 1.0)
    knn_note = next(note for note in report.protocols if note.column == "knn" and not note.published)
    assert knn_note.image_sizes == [224]
    assert "k=20" in knn_note.description


def test_pretrain_seeds_pool_and_published_rows_stay_apart(
    client: TestClient, session: Session, settings: Settings
) -> None:
    trained = [
        make_run(
            session,
            settings,
            kind="pretrain",
            config={**PRETRAIN, "seed": seed, "data_path": f"/d{seed}"},
            params=4_940_000,
        )
        for seed in (0, 1)
    ]
    # One eval chained to its pretraining (parent_id), one submitted by hand: the server stores its
    # checkpoint as the run's directory, and the report finds the pretraining from that.
    evals = [
        make_run(
            session,
            settings,
            kind="eval",
            config={"dataset": "cifar10", "checkpoint": run.id, "seeds": [0, 1]},
            parent_id=run.id,
        )
        for run in trained[:1]
    ]
    evals.append(
        make_run(
            session,
            settings,
            kind="eval",
            config={
                "dataset": "cifar10",
                "checkpoint": str(settings.run_dir(trained[1].id)),
                "seeds": [0, 1],
            },
        )
    )
    knn_values = ([40.0], [42.5])
    probe_values = ([55.0, 56.0], [57.5, 58.25])
    for run, knn, probe in zip(evals, knn_values, probe_values, strict=True):
        write_eval_results(
            settings,
            run,
            [
                ("knn", 1.0, knn, [0]),
                ("knn_seed", 1.0, [30.0], [0]),
                ("linear", 0.1, probe, [0, 1]),
                ("finetune", 0.3, [70.0], [0]),
            ],
        )
    # A clone of a training run (same kind) is not an evaluation; a third recipe (other epochs) is another row.
    clone = make_run(
        session,
        settings,
        kind="pretrain",
        config={**PRETRAIN, "n_epochs": 5},
        parent_id=trained[0].id,
        params=4_940_000,
    )
    # Still queued: it joins the row of its model as pending, with no figures of its own.
    waiting = make_run(
        session,
        settings,
        kind="eval",
        config={"dataset": "cifar10", "checkpoint": trained[0].id},
        parent_id=trained[0].id,
        status="queued",
    )
    other_dataset = make_run(
        session, settings, kind="eval", config={"dataset": "cifar100", "backbone": "resnet50"}
    )
    write_eval_results(settings, other_dataset, [("knn", 1.0, [20.0], [0])], dataset="cifar100")

    report = build_report(
        session,
        settings,
        runs=[*trained, clone, other_dataset, evals[1]],
        skipped={"DINOv2 ViT-S/14": "weights not found locally: put them under ~/.cache"},
    )
    pooled, unevaluated = rows_by_kind(report, "measured")
    assert pooled.training_run_ids == [run.id for run in trained]
    assert pooled.eval_run_ids == [run.id for run in evals]
    assert pooled.pending_run_ids == [waiting.id]
    assert pooled.model == "mobilevit_s · LowDINO DINO · 2 ep · 32 px crops"
    knn = pooled.cells["knn"]
    assert knn.pooled
    assert knn.n == 2
    assert knn.run_ids == [run.id for run in evals]
    assert knn.mean == statistics.fmean([40.0, 42.5])
    assert knn.std == statistics.stdev([40.0, 42.5])
    probe = pooled.cells["labels_10"]
    assert probe.values == [55.0, 56.0, 57.5, 58.25]
    assert probe.mean == statistics.fmean(probe.values)
    # No linear probe at 30 %: fine-tuning fills the cell, labelled as such.
    assert pooled.cells["labels_30"].protocol == "finetune"
    assert "not linear" in pooled.cells["labels_30"].note
    assert any("seeds 0, 1" in note for note in pooled.notes)
    assert unevaluated.training_run_ids == [clone.id]
    assert unevaluated.eval_run_ids == []
    assert all(cell is None for cell in unevaluated.cells.values())
    assert [(e.run_id, "cifar100" in e.reason) for e in report.excluded] == [(other_dataset.id, True)]

    published = rows_by_kind(report, "published")
    mobilevit = next(row for row in published if row.model == "MobileViT-S (LowDINO)")
    assert mobilevit.published
    assert mobilevit.citation == "LowDINO README"
    assert mobilevit.params == 5_500_000
    assert mobilevit.cells["nn1"].mean == 53.05
    assert mobilevit.cells["nn1"].published
    assert mobilevit.cells["labels_10"].protocol == "mlp_probe"
    assert mobilevit.cells["labels_10"].mean == 61.93
    assert mobilevit.cells["knn"] is None
    assert all(cell.run_ids == [] for row in published for cell in row.cells.values() if cell)
    # Published figures never enter a measured mean: the pooled 1-NN is the two runs' 30.0.
    assert pooled.cells["nn1"].mean == 30.0
    assert pooled.cells["nn1"].values == [30.0, 30.0]
    (skipped,) = rows_by_kind(report, "skipped")
    assert skipped.model == "DINOv2 ViT-S/14"
    assert skipped.reason.startswith("weights not found")
    assert all(cell is None for cell in skipped.cells.values())

    # The chart: measured points, published points (hollow, named so) and the Pareto front over measured.
    figure = report.figures[report.chart_column]
    names = [trace["name"] for trace in figure.data]
    assert names[:2] == ["measured", "published"]
    assert figure.data[1]["marker"]["symbol"].endswith("-open")
    assert all(text.endswith("[published]") for text in figure.data[1]["text"])
    assert figure.layout["xaxis"]["type"] == "log"
    assert report.figures["nn1"].data[0]["y"] == [30.0]

    # Exports say the same.
    table = list(csv.DictReader(io.StringIO(to_csv(report))))
    row = next(line for line in table if line["kind"] == "measured" and line["eval_runs"])
    assert float(row["kNN mean"]) == knn.mean
    assert row["kNN n"] == "2"
    assert row["kNN runs"] == " ".join(knn.run_ids)
    published_line = next(line for line in table if line["model"] == "MobileViT-S (LowDINO)")
    assert (published_line["published"], published_line["1-NN mean"]) == ("true", "53.05")
    markdown = to_markdown(report)
    assert "Dataset: **cifar10**" in markdown
    assert "32 px" in markdown
    assert (
        "| MobileViT-S (LowDINO) | 5.50 M | see source | – | 53.05 (published) | 61.93 (published, mlp_probe) |"
        in markdown
    )
    assert f"{knn.mean:.2f} ± {knn.std:.2f} (n=2, pooled)" in markdown
    assert "| published: DINOv2 (also linear @100 % labels: 97.70) |" in markdown
    assert "DINOv2 ViT-S/14 (skipped)[^1]" in markdown
    assert "[^1]: DINOv2 ViT-S/14 was not evaluated: weights not found locally" in markdown

    # Through the API: JSON as above, CSV and Markdown as downloads.
    ids = ",".join(run.id for run in [*trained, evals[1]])
    body = client.get("/api/report", params={"runs": ids}).json()
    api_row = next(row for row in body["rows"] if row["kind"] == "measured" and row["eval_run_ids"])
    assert api_row["cells"]["knn"]["mean"] == knn.mean
    answer = client.get("/api/report", params={"runs": ids, "format": "csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="lowdino-report-cifar10.csv"'
    assert answer.text.startswith("model,kind,published,source,params")
    answer = client.get("/api/report", params={"runs": ids, "format": "md"})
    assert answer.headers["content-type"].startswith("text/markdown")
    assert "53.05 (published)" in answer.text


def test_report_errors_are_one_line(client: TestClient, session: Session, settings: Settings) -> None:
    answer = client.get("/api/report", params={"runs": "nope"})
    assert answer.status_code == 404
    assert answer.json()["detail"] == "run 'nope' does not exist; list runs with GET /api/runs"
    answer = client.get("/api/report", params={"runs": ",".join(f"r{i}" for i in range(201))})
    assert answer.status_code == 422
    assert "\n" not in answer.json()["detail"]
    answer = client.get("/api/report", params={"runs": "a", "format": "xlsx"})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("invalid request: format")
    assert client.get("/api/report", params={"sweep": "s1"}).status_code == 404
    # Nothing asked for: the published table of the default dataset.
    body = client.get("/api/report").json()
    assert body["rows"]
    assert all(row["published"] for row in body["rows"])


@pytest.mark.parametrize("fmt", ["csv", "md"])
def test_empty_report_exports(client: TestClient, fmt: str) -> None:
    answer = client.get("/api/report", params={"format": fmt})
    assert answer.status_code == 200
    assert "published" in answer.text


def test_export_links_take_the_token_like_other_downloads(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"api_token": "report-token"}))
    with TestClient(app) as secured:
        assert secured.get("/api/report", params={"format": "md"}).status_code == 401
        answer = secured.get("/api/report", params={"format": "md", "token": "report-token"})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/markdown")
    app.state.engine.dispose()


def test_sweep_report_has_its_runs_and_skipped_rows(
    client: TestClient, session: Session, settings: Settings
) -> None:
    sweep_queries.create_sweep(
        session,
        sweep_id="sw1",
        kind="pretrain",
        config=PRETRAIN,
        runs=[],
        study="reproduce_original_table",
        skipped={"DINOv2 ViT-S/14": "weights not found locally"},
    )
    trained = make_run(session, settings, kind="pretrain", config=PRETRAIN)
    evaluated = make_run(
        session,
        settings,
        kind="eval",
        config={"dataset": "cifar10", "checkpoint": trained.id},
        parent_id=trained.id,
    )
    for run in (trained, evaluated):
        run_queries.update_run_status(session, run_id=run.id, status="completed", sweep_id="sw1")
    written = write_eval_results(settings, evaluated, [("knn", 1.0, [44.4], [0])])
    body = client.get("/api/report", params={"sweep": "sw1"}).json()
    (row,) = [row for row in body["rows"] if row["kind"] == "measured"]
    assert row["cells"]["knn"]["mean"] == json_mean(written, "knn", 1.0)
    assert row["training_run_ids"] == [trained.id]
    (skipped,) = [row for row in body["rows"] if row["kind"] == "skipped"]
    assert skipped["reason"] == "weights not found locally"
    answer = client.get("/api/report", params={"sweep": "sw1", "format": "md"})
    assert answer.headers["content-disposition"] == 'attachment; filename="lowdino-report-sw1.md"'
    assert client.get("/api/report", params={"sweep": "nope"}).status_code == 404
