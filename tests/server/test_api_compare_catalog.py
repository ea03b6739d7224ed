"""GET /api/compare (side by side + Plotly figures with published references), /api/catalog, /api/schema."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from lowdino.config import CONFIG_MODELS, EvalConfig, PretrainConfig
from lowdino.eval.references import load_references
from server.metrics import queries as metric_queries
from server.runs import queries as run_queries
from server.settings import Settings
from server.vocabulary import RunStatus

CIFAR = {"dataset": "synthetic", "backbone": "resnet5m"}


def submit(client: TestClient, kind: str, config: dict, name: str) -> dict:
    response = client.post("/api/runs", json={"kind": kind, "name": name, "config": config})
    assert response.status_code == 201, response.text
    return response.json()


def test_compare_runs(client: TestClient, session: object, settings: Settings) -> None:
    a = submit(
        client,
        "pretrain",
        {**CIFAR, "dataset": "cifar10", "data_path": str(settings.data_roots[0]), "batch_size": 64},
        "a",
    )
    b = submit(
        client,
        "pretrain",
        {
            **CIFAR,
            "dataset": "cifar10",
            "data_path": str(settings.data_roots[0]),
            "batch_size": 128,
            "backbone": "mobilevit_xxs",
        },
        "b",
    )
    e = submit(
        client,
        "eval",
        {"dataset": "cifar10", "data_path": str(settings.data_roots[0]), "checkpoint": a["id"]},
        "eval of a",
    )
    # b's monitor peaks before the end: 20, 70, then 60 at the final checkpoint.
    knn = {a["id"]: {10: 10.0, 20: 20.0, 30: 30.0}, b["id"]: {10: 20.0, 20: 70.0, 30: 60.0}}
    for run, params in ((a, 4_956_480), (b, 951_024)):
        run_queries.update_run_status(session, run_id=run["id"], status="completed", params=params)  # type: ignore[arg-type]
        metric_queries.ingest_metrics(  # type: ignore[arg-type]
            session,
            run_id=run["id"],
            records=[
                {"step": s, "loss": 10 - s / 10, "knn_top1": knn[run["id"]].get(s)} for s in range(1, 31)
            ],
        )
    run_queries.update_run_status(session, run_id=e["id"], status="completed", params=4_956_480)  # type: ignore[arg-type]
    results = {
        "image_size": 224,
        "labels_used": 1.0,
        "results": [
            {"protocol": "knn", "label_fraction": 1.0, "mean": 41.0},
            {"protocol": "linear", "label_fraction": 0.1, "mean": 45.0},
            {"protocol": "linear", "label_fraction": 0.3, "mean": 50.0},
            {"protocol": "finetune", "label_fraction": 0.3, "mean": 55.0},
        ],
    }
    (settings.run_dir(e["id"]) / "results.json").write_text(json.dumps(results))

    body = client.get("/api/compare", params={"runs": f"{a['id']},{b['id']},{e['id']}"}).json()
    rows = {row["id"]: row for row in body["runs"]}
    assert rows[a["id"]]["best_metrics"]["knn_top1"] == 30.0
    assert rows[b["id"]]["best_metrics"]["knn_top1"] == 70.0
    assert rows[a["id"]]["final_metrics"]["loss"] == pytest.approx(7.0)
    # One protocol per figure, named; never the maximum over linear and fine-tuning.
    assert rows[e["id"]]["scores"] == {"kNN": 41.0, "10% labels": 45.0, "30% labels": 50.0}
    assert rows[e["id"]]["score_protocols"] == {"kNN": "knn", "10% labels": "linear", "30% labels": "linear"}
    assert rows[e["id"]]["results"]["finetune@0.3"] == 55.0
    assert (rows[e["id"]]["image_size"], rows[e["id"]]["labels_used"]) == (224, 1.0)
    assert rows[a["id"]]["scores"]["kNN"] == 30.0
    assert rows[a["id"]]["scores"]["10% labels"] is None
    # A training run's figure is its final checkpoint's; the best look is only beside it, as validation.
    assert rows[b["id"]]["scores"]["kNN"] == 60.0
    assert rows[b["id"]]["best_val_knn_top1"] == 70.0
    assert "validation" in rows[b["id"]]["score_protocols"]["kNN"]
    assert rows[b["id"]]["image_size"] == PretrainConfig().global_crop_size
    assert rows[b["id"]]["labels_used"] == 0.0
    assert body["differing_config"]["batch_size"][a["id"]] == 64
    assert body["differing_config"]["backbone"][b["id"]] == "mobilevit_xxs"
    assert "output_dir" not in body["differing_config"]
    assert "seed" not in body["differing_config"]

    figures = body["figures"]
    loss_traces = figures["curves_loss"]["data"]
    assert len(loss_traces) == 2
    assert loss_traces[0]["x"][0] == 1
    assert loss_traces[0]["y"][-1] == pytest.approx(7.0)
    assert [len(trace["x"]) for trace in figures["curves_knn_top1"]["data"]] == [3, 3]
    measured, published = figures["accuracy_vs_params"]["data"]
    assert measured["x"] == [4_956_480, 951_024, 4_956_480]
    assert measured["y"] == [30.0, 60.0, 41.0]
    size = PretrainConfig().global_crop_size
    assert [text.rsplit(")", 1)[1] for text in measured["text"]] == [
        f" @{size}px",
        f" @{size}px",
        " @224px [labels]",
    ]
    published_cifar = {row.model for row in load_references(dataset="cifar10") if row.params_millions}
    assert published_cifar
    assert all("[published]" in text for text in published["text"])
    assert {text.removesuffix(" [published]") for text in published["text"]} <= published_cifar
    bars = figures["label_fractions"]["data"]
    assert bars[0]["x"] == ["kNN", "10% labels", "30% labels"]
    assert bars[2]["name"].endswith("@224px [labels]")
    assert bars[2]["customdata"] == ["knn", "linear", "linear"]
    assert any(trace["name"].endswith("[published]") for trace in bars)
    assert all(row["published"] for row in body["references"])


def test_compare_rejects_bad_lists(client: TestClient) -> None:
    assert client.get("/api/compare", params={"runs": ""}).status_code == 422
    assert (
        client.get("/api/compare", params={"runs": ",".join(f"r{i}" for i in range(21))}).status_code == 422
    )
    missing = client.get("/api/compare", params={"runs": "nope"})
    assert missing.status_code == 404
    assert "nope" in missing.json()["detail"]
    assert client.get("/api/compare", params={"runs": " , a"}).status_code == 422
    # Blank is ASCII whitespace, as the schema's pattern says to every client: NEL and no-break space
    # are characters of an (unknown) run id, not a 422.
    for unusual in ("\x85", " \r \f\n\f\v\n\x85", "\u00a0"):
        assert client.get("/api/compare", params={"runs": unusual}).status_code == 404, repr(unusual)


@pytest.mark.slow
def test_catalog(client: TestClient) -> None:
    body = client.get("/api/catalog").json()
    backbones = {item["name"]: item for item in body["backbones"]}
    assert {"mobilevit_xxs", "mobilenetv2_100", "resnet5m", "dinov2_vits14"} <= set(backbones)
    assert 400_000 < backbones["mobilevit_xxs"]["params"] < 5_000_000
    assert "synthetic" in body["datasets"]
    assert "cifar10" in body["datasets"]
    assert body["methods"]["pretrain"] == ["dino", "byol"]
    # The dashboard's kind and status choices come from here: one definition each, on the server.
    assert body["kinds"] == list(CONFIG_MODELS)
    # Export is a kind, but it leaves no checkpoint and is cloned rather than resumed.
    assert "export" in body["kinds"]
    assert body["training_kinds"] == ["pretrain", "distill"]
    assert body["resumable_kinds"] == ["pretrain", "distill"]
    assert body["statuses"] == [status.value for status in RunStatus]
    assert body["references"]
    assert all(row["published"] for row in body["references"])
    for preset in body["presets"]:  # every preset must be valid for the kind it is offered as
        assert preset["kind"] in ("pretrain", "eval", "distill")


def test_schema_per_kind(client: TestClient) -> None:
    schema = client.get("/api/schema/pretrain").json()
    assert schema == PretrainConfig.model_json_schema()
    assert schema["properties"]["batch_size"]["minimum"] == 1
    assert "checkpoint" in client.get("/api/schema/eval").json()["properties"]
    assert client.get("/api/schema/train").status_code == 422


# (eval config, valid): the model's "exactly one of checkpoint / backbone" rule, and its weights rule.
EVAL_MODEL_SOURCES = [
    ({"backbone": "resnet5m"}, True),
    ({"backbone": "resnet5m", "pretrained": True, "weights": "w.pth"}, True),
    ({"checkpoint": "runs/a/checkpoint.pth"}, True),
    ({"checkpoint": "runs/a/checkpoint.pth", "backbone": None, "pretrained": False}, True),
    ({}, False),
    ({"backbone": None, "checkpoint": None}, False),
    ({"backbone": "resnet5m", "checkpoint": "runs/a/checkpoint.pth"}, False),
    ({"checkpoint": "runs/a/checkpoint.pth", "pretrained": True}, False),
    ({"checkpoint": "runs/a/checkpoint.pth", "weights": "w.pth"}, False),
]


def _model_accepts(config: dict[str, object]) -> bool:
    try:
        EvalConfig.model_validate(config)
    except ValidationError:
        return False
    return True


def test_eval_schema_refuses_what_the_model_refuses(client: TestClient) -> None:
    schema = client.get("/api/schema/eval").json()
    validator = jsonschema_rs.validator_for(schema)
    for config, valid in EVAL_MODEL_SOURCES:
        assert _model_accepts(config) is valid, config
        assert validator.is_valid(config) is valid, config
    # The OpenAPI document carries the same schema, constraint included, as a component.
    components = client.get("/openapi.json").json()["components"]["schemas"]
    assert components["EvalConfig"]["oneOf"] == schema["oneOf"]
    assert {"PretrainConfig", "DistillConfig"} <= set(components)
