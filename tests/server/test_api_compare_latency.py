"""Latency in /api/compare: each run's batch-1, one-thread figure (a training run's from its evaluation),
a published model's latency only where its backbone was timed here, the accuracy-against-latency figure,
and the DINOv2 sentence (speed ratio on this CPU, kNN difference, published accuracy said so)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from seeding import completed_run as make_run
from seeding import write_eval_results
from services import latency_row
from sqlalchemy.orm import Session

from server.runs import queries as run_queries
from server.settings import Settings
from server.storage.models import Run


def write(settings: Settings, run: Run, backbone: str, knn: float | None, latency: list[dict]) -> None:
    cells = [] if knn is None else [("knn", 1.0, [knn])]
    write_eval_results(settings, run.id, backbone=backbone, params=1_000_000, cells=cells, latency=latency)


def test_compare_latency_and_the_dinov2_sentence(
    client: TestClient, session: Session, settings: Settings
) -> None:
    trained = make_run(
        session, settings, kind="pretrain", config={"dataset": "cifar10", "backbone": "mobilevit_xxs"}
    )
    chained = make_run(
        session,
        settings,
        kind="eval",
        config={"dataset": "cifar10", "checkpoint": trained.id},
        parent_id=trained.id,
    )
    write(settings, chained, "mobilevit_xxs", 40.0, [latency_row("onnxruntime", 1, 1, 0.7, 32)])
    # A training run's kNN is its monitor's final value (Compare's rule); its latency is its evaluation's.
    run_queries.update_run_status(
        session, run_id=trained.id, status="completed", latest_metrics={"knn_top1": 40.0}
    )
    baseline = make_run(
        session,
        settings,
        kind="eval",
        config={"dataset": "cifar10", "backbone": "resnet5m", "pretrained": True},
    )
    write(settings, baseline, "resnet5m", 30.0, [latency_row("torch", 1, 1, 8.0, 32)])
    dinov2 = make_run(
        session,
        settings,
        kind="eval",
        config={"dataset": "cifar10", "backbone": "dinov2_vits14", "protocols": ["latency"]},
    )
    write(settings, dinov2, "dinov2_vits14", None, [latency_row("onnxruntime", 1, 1, 9.3, 28)])

    response = client.get("/api/compare", params={"runs": f"{trained.id},{baseline.id},{dinov2.id}"})
    assert response.status_code == 200, response.text
    body = response.json()
    rows = {row["id"]: row for row in body["runs"]}
    # The training run's latency is its evaluation's.
    assert rows[trained.id]["latency"]["median_ms"] == 0.7
    assert rows[trained.id]["latency"]["run_ids"] == [chained.id]
    assert rows[baseline.id]["latency"]["runtime"] == "torch"
    # Published rows: latency only for the backbone timed here; their accuracy untouched.
    references = {row["model"]: row for row in body["references"]}
    dinov2_published = [row for row in references.values() if row["backbone"] == "dinov2_vits14"]
    assert dinov2_published
    assert all(row["latency"]["median_ms"] == 9.3 for row in dinov2_published)
    assert all(row["published"] for row in dinov2_published)
    timed = {"mobilevit_xxs", "resnet5m", "dinov2_vits14"}
    assert all(row["latency"] is None for row in references.values() if row["backbone"] not in timed)
    resnet5m = next(row for row in references.values() if row["backbone"] == "resnet5m")
    assert resnet5m["latency"]["median_ms"] == 8.0  # the published ResNet5M row, timed by the baseline run
    # One sentence per small model timed here.
    sentences = body["versus_dinov2"]
    assert len(sentences) == 2
    small = next(sentence for sentence in sentences if trained.id[:6] in sentence)
    assert "13.3× faster than DINOv2 ViT-S/14 on this CPU at batch 1" in small
    assert "−15.0 kNN points" in small  # 40.00 measured against the published 55.04 (1-NN, LowDINO README)
    assert "published" in small
    assert "not measured here" in small
    assert "knn_1nn_euclidean" in small  # the published figure's protocol is named beside ours
    assert "40.00 % measured" in small
    slower = next(sentence for sentence in sentences if baseline.id[:6] in sentence)
    assert "1.2× faster" in slower
    assert "−25.0 kNN points" in slower
    figure = body["figures"]["accuracy_vs_latency"]
    measured, published = figure["data"][0], figure["data"][1]
    assert sorted(measured["x"]) == [0.7, 8.0]
    assert published["name"] == "published accuracy, latency measured here"
    assert set(published["x"]) == {8.0, 9.3}  # published ResNet5M and DINOv2 accuracy, our timings
    assert figure["layout"]["xaxis"]["type"] == "log"


def test_no_dinov2_sentence_without_its_latency(
    client: TestClient, session: Session, settings: Settings
) -> None:
    run = make_run(session, settings, kind="eval", config={"dataset": "cifar10", "backbone": "resnet5m"})
    write(settings, run, "resnet5m", 30.0, [latency_row("torch", 1, 1, 8.0, 32)])
    body = client.get("/api/compare", params={"runs": run.id}).json()
    assert body["versus_dinov2"] == []
    assert body["runs"][0]["latency"]["median_ms"] == 8.0
