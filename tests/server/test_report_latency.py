"""Latency in the report (GET /api/report): a row's figure is batch 1, one thread, the fastest runtime
(named), from eval runs' results.json `latency` rows; a published row keeps its published accuracy and
takes latency only where it was measured here; the accuracy-against-latency figures have their Pareto
front over measured rows. Results written by the library's own writer, on SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient
from seeding import completed_run as make_run
from seeding import write_eval_results
from services import latency_row
from sqlalchemy.orm import Session

from server.settings import Settings
from server.storage.models import Run

PRETRAIN = {
    "dataset": "cifar10",
    "backbone": "mobilevit_xxs",
    "method": "dino",
    "n_epochs": 2,
    "global_crop_size": 32,
}


def write(
    settings: Settings, run: Run, *, backbone: str, params: int, size: int, cells: list, latency: list
) -> None:
    write_eval_results(
        settings, run.id, backbone=backbone, params=params, image_size=size, cells=cells, latency=latency
    )


def test_report_latency_column_published_rows_and_latency_figures(
    client: TestClient, session: Session, settings: Settings
) -> None:
    trained = make_run(session, settings, kind="pretrain", config=PRETRAIN)
    small = make_run(
        session,
        settings,
        kind="eval",
        config={"dataset": "cifar10", "checkpoint": trained.id},
        parent_id=trained.id,
    )
    write(
        settings,
        small,
        backbone="mobilevit_xxs",
        params=951_000,
        size=32,
        cells=[("knn", 1.0, [40.0]), ("knn_seed", 1.0, [33.0])],
        latency=[
            latency_row("torch", 1, 1, 16.0, 32),
            latency_row("onnxruntime", 1, 1, 0.7, 32),
            latency_row("onnxruntime", 32, 1, 0.2, 32),  # batch 32: not the deployment figure
            latency_row("onnxruntime", 1, 2, 0.5, 32),  # two threads: not the figure either
        ],
    )
    # DINOv2 timed with random weights (latency only): no accuracy of ours, a latency for the published row.
    reference = make_run(
        session,
        settings,
        kind="eval",
        config={
            "dataset": "cifar10",
            "backbone": "dinov2_vits14",
            "protocols": ["latency"],
            "image_size": 28,
        },
    )
    write(
        settings,
        reference,
        backbone="dinov2_vits14",
        params=22_056_576,
        size=28,
        cells=[],
        latency=[
            latency_row("torch", 1, 1, 17.7, 28, note="random weights: latency only"),
            latency_row("onnxruntime", 1, 1, 9.3, 28),
        ],
    )
    response = client.get("/api/report", params={"runs": f"{trained.id},{reference.id}"})
    assert response.status_code == 200, response.text
    body = response.json()
    rows = {row["key"]: row for row in body["rows"]}
    measured = next(
        row for row in rows.values() if row["kind"] == "measured" and row["backbone"] == "mobilevit_xxs"
    )
    assert measured["latency"]["median_ms"] == 0.7
    assert measured["latency"]["runtime"] == "onnxruntime"
    assert measured["latency"]["precision"] == "fp32"
    assert (measured["latency"]["batch_size"], measured["latency"]["threads"]) == (1, 1)
    assert measured["latency"]["runtimes"] == {"onnxruntime fp32": 0.7, "torch fp32": 16.0}
    assert measured["latency"]["run_ids"] == [small.id]
    assert measured["latency"]["cpu_model"] == "Test CPU @ 2.0GHz"
    # The latency-only eval is a row of its own (no accuracy), not a pending one.
    timed_only = next(
        row for row in rows.values() if row["kind"] == "measured" and row["backbone"] == "dinov2_vits14"
    )
    assert timed_only["latency"]["median_ms"] == 9.3
    assert all(cell is None for cell in timed_only["cells"].values())
    assert timed_only["pending_run_ids"] == []
    # Published DINOv2: published accuracy unchanged and marked, our latency beside it; other published
    # rows (nothing of theirs timed here) have none.
    published = [row for row in rows.values() if row["published"] and row["backbone"] == "dinov2_vits14"]
    readme = next(row for row in published if row["cells"]["nn1"] is not None)
    assert readme["cells"]["nn1"]["mean"] == 55.04
    assert readme["cells"]["nn1"]["published"] is True
    assert readme["latency"]["median_ms"] == 9.3
    assert any("latency measured here" in note and "accuracy published" in note for note in readme["notes"])
    assert all(
        row["latency"] is None
        for row in rows.values()
        if row["published"] and row["backbone"] != "dinov2_vits14"
    )
    # Accuracy against latency: the 1-NN column has both, measured and published, on a log ms axis.
    figure = body["figures"]["nn1:latency"]
    names = [trace["name"] for trace in figure["data"]]
    assert names[:2] == ["measured", "published accuracy, latency measured here"]
    assert figure["data"][0]["x"] == [0.7]
    assert figure["data"][0]["y"] == [33.0]
    assert figure["data"][1]["x"] == [9.3]
    assert figure["data"][1]["y"] == [55.04]
    assert figure["layout"]["xaxis"]["type"] == "log"
    assert "ms per image" in figure["layout"]["xaxis"]["title"]["text"]
    assert "nn1" in body["figures"]  # the accuracy-against-parameters figure stays
    assert any("Latency:" in note for note in body["notes"])
    # The exports carry the column too.
    csv_text = client.get("/api/report", params={"runs": trained.id, "format": "csv"}).text
    assert "latency_ms" in csv_text.splitlines()[0]
    assert "0.7" in csv_text


def test_pareto_front_of_latency_is_the_fastest_for_its_accuracy(
    client: TestClient, session: Session, settings: Settings
) -> None:
    ids = []
    for backbone, params, knn, ms in (
        ("mobilevit_xxs", 951_000, 40.0, 1.0),
        ("mobilenetv2_100", 2_220_000, 45.0, 0.5),  # faster and better: the only point of the front
        ("resnet5m", 4_956_000, 42.0, 2.0),
    ):
        run = make_run(session, settings, kind="eval", config={"dataset": "cifar10", "backbone": backbone})
        write(
            settings,
            run,
            backbone=backbone,
            params=params,
            size=32,
            cells=[("knn", 1.0, [knn])],
            latency=[latency_row("onnxruntime", 1, 1, ms, 32)],
        )
        ids.append(run.id)
    body = client.get("/api/report", params={"runs": ",".join(ids)}).json()
    traces = {trace["name"]: trace for trace in body["figures"]["knn:latency"]["data"]}
    assert "Pareto front (measured)" not in traces  # one point is no front
    ids.append(
        make_run(session, settings, kind="eval", config={"dataset": "cifar10", "backbone": "resnet50"}).id
    )
    write(
        settings,
        session.get(Run, ids[-1]),
        backbone="resnet50",
        params=23_500_000,
        size=32,
        cells=[("knn", 1.0, [60.0])],
        latency=[latency_row("onnxruntime", 1, 1, 7.4, 32)],
    )
    body = client.get("/api/report", params={"runs": ",".join(ids)}).json()
    front = next(
        trace
        for trace in body["figures"]["knn:latency"]["data"]
        if trace["name"] == "Pareto front (measured)"
    )
    assert front["x"] == [0.5, 7.4]
    assert front["y"] == [45.0, 60.0]
