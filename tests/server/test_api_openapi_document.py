"""The OpenAPI document states the request configs per kind, and the server agrees with it.

Run configs are `oneOf` one variant per kind (RunCreate, SweepCreate), each with its model's request
schema; overrides are partial option sets; strings that the models parse (comma-separated lists) are
declared with their patterns; what no schema can state answers the documented 409 (server.http.contract).
"""

from __future__ import annotations

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from lowdino.config import EvalConfig
from lowdino.config.base import GPU_IDS_TEXT, INTEGERS_TEXT, matches_pattern
from lowdino.config.eval import FRACTIONS_TEXT, PROTOCOLS_TEXT
from server.errors import ArtifactNotFoundError
from server.runs.paths import INSIDE_RUN_PATH, USABLE_PATH, artifact_path
from server.vocabulary import RunKind

SYNTHETIC = {"dataset": "synthetic", "synthetic_size": 20}


def validator(client: TestClient, name: str) -> jsonschema_rs.Draft202012Validator:
    """The component as schemathesis validates it (jsonschema_rs: ECMA-262 patterns)."""
    document = client.get("/openapi.json").json()
    schema = {**document["components"]["schemas"][name], "components": document["components"]}
    return jsonschema_rs.Draft202012Validator(schema)


def test_run_and_sweep_bodies_are_one_variant_per_kind(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for body in ("RunCreate", "SweepCreate"):
        assert schemas[body]["discriminator"]["propertyName"] == "kind"
        assert set(schemas[body]["discriminator"]["mapping"]) == set(RunKind)
    eval_request = schemas["EvalConfigRequest"]
    assert schemas["RunCreateEval"]["properties"]["config"]["$ref"].endswith("/EvalConfigRequest")
    assert "config" in schemas["RunCreateEval"]["required"]  # an empty eval config is refused
    assert "oneOf" in eval_request
    assert eval_request["additionalProperties"] is False
    for name in ("PretrainConfigRequest", "EvalConfigRequest", "DistillConfigRequest"):
        assert "output_dir" not in schemas[name]["properties"]
        assert "resume" not in schemas[name]["properties"]
    for name in ("StudyPretrainOptions", "EvaluateOptions"):
        assert schemas[name]["additionalProperties"] is False
    assert "backbone" not in schemas["StudyPretrainOptions"]["properties"]
    assert "checkpoint" not in schemas["EvaluateOptions"]["properties"]


def test_every_body_operation_documents_its_refusals(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in (("/api/runs", "post"), ("/api/sweeps", "post"), ("/api/studies", "post")):
        responses = paths[path][method]["responses"]
        assert {"409", "422"} <= set(responses), path
        assert "data roots" in responses["409"]["description"]
    assert "409" in paths["/api/runs/{run_id}/clone"]["post"]["responses"]


def test_an_unreadable_body_is_a_422_with_the_error_body(client: TestClient) -> None:
    for path in ("/api/session", "/api/runs"):
        response = client.post(path, content=b"7P\xff\xfe", headers={"content-type": "application/json"})
        assert response.status_code == 422, path
        assert set(response.json()) == {"detail", "field_errors"}
        assert "body" in response.json()["field_errors"]


def test_an_eval_config_without_a_model_source_names_the_json_fields(client: TestClient) -> None:
    response = client.post("/api/runs", json={"kind": "eval", "config": SYNTHETIC})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "checkpoint" in detail
    assert "backbone" in detail
    assert "--" not in detail
    unknown = client.post("/api/runs", json={"kind": "pretrain", "config": {"bach_size": 8}})
    assert "--help" not in unknown.json()["detail"]
    sweep = client.post("/api/sweeps", json={"kind": "eval", "config": SYNTHETIC})
    assert sweep.status_code == 422  # the base config must be valid by itself, as the schema says


@pytest.mark.parametrize(
    ("pattern", "accepted", "refused"),
    [
        (PROTOCOLS_TEXT, ["knn", "knn, linear", " finetune ,knn"], ["", "knn,", "KNN", "knn;linear"]),
        (FRACTIONS_TEXT, ["0.1,0.3", "1", "1.0", "0.01", " 0.5 "], ["0.001", "1.5", "0", ".5", "1e-1", ""]),
        (INTEGERS_TEXT, ["0,1,2", "-1", " 3 "], ["", "a", "1.0", "1_0"]),
        (GPU_IDS_TEXT, ["", "0", "0, 1"], ["-1", "x", "0;1"]),
    ],
)
def test_text_forms_match_their_declared_pattern(
    pattern: str, accepted: list[str], refused: list[str]
) -> None:
    for text in accepted:
        assert matches_pattern(pattern, text), text
        assert jsonschema_rs.is_valid({"pattern": pattern}, text), text
    for text in [*refused, *(text + "\n" for text in accepted)]:  # ECMA: $ is the end, not a last newline
        assert not matches_pattern(pattern, text), text
        assert not jsonschema_rs.is_valid({"pattern": pattern}, text), text


def test_the_eval_model_accepts_exactly_its_declared_text_forms() -> None:
    for field, good, bad in (
        ("protocols", "knn,finetune", "knn;finetune"),
        ("label_fractions", "0.1, 0.3", "0.1,1.5"),
        ("seeds", "0,1", "0,one"),
    ):
        assert EvalConfig.model_validate({"backbone": "resnet5m", field: good})
        with pytest.raises(ValueError, match=field.rstrip("s")):
            EvalConfig.model_validate({"backbone": "resnet5m", field: bad})


def test_path_forms() -> None:
    assert matches_pattern(USABLE_PATH, "data/cifar10")
    assert not matches_pattern(USABLE_PATH, " \t")
    assert matches_pattern(INSIDE_RUN_PATH, "logs/tb")
    assert not matches_pattern(INSIDE_RUN_PATH, "logs/../..")


def test_documented_request_schemas_agree_with_the_server(client: TestClient) -> None:
    runs = validator(client, "RunCreate")
    for body, status in (
        ({"kind": "pretrain", "config": {**SYNTHETIC, "n_epochs": 1}}, 201),
        ({"kind": "pretrain", "config": {**SYNTHETIC, "n_epochs": 2.0}}, 201),  # a JSON Schema integer
        ({"kind": "eval", "config": {**SYNTHETIC, "backbone": "resnet5m", "seeds": "0,1"}}, 201),
        ({"kind": "eval"}, 422),
        ({"kind": "eval", "config": {"backbone": "resnet5m"}, "evaluate": {}}, 422),
        ({"kind": "pretrain", "config": {"n_epochs": "5"}}, 422),
        ({"kind": "pretrain", "config": {"resume": False}}, 422),
        ({"kind": "pretrain", "config": {"tensorboard_dir": "/abs"}}, 422),
        ({"kind": "distill", "config": {"student": "dinov2_vits14"}}, 422),  # the default teacher
        ({"kind": "pretrain", "config": {"data_path": "/etc"}}, 409),  # schema-valid: this server's roots
    ):
        assert runs.is_valid(body) == (status != 422), body
        response = client.post("/api/runs", json=body)
        assert response.status_code == status, (body, response.text)
    # A rule between two options that the schema leaves unstated is the documented 409, never a 422.
    finetuned_artifact = {"kind": "eval", "config": {"artifact": "a.onnx", "protocols": "knn,finetune"}}
    assert runs.is_valid(finetuned_artifact)
    response = client.post("/api/runs", json=finetuned_artifact)
    assert response.status_code == 409
    assert "cannot be fine-tuned" in response.json()["detail"]


def test_study_overrides_are_the_models_options(client: TestClient) -> None:
    studies = validator(client, "StudyCreate")
    bad = {"pretrain": {"Ú": {}}}
    assert not studies.is_valid(bad)
    assert client.post("/api/studies", json=bad).status_code == 422
    owned = {"pretrain": {"backbone": "resnet5m"}}
    assert not studies.is_valid(owned)
    assert client.post("/api/studies", json=owned).status_code == 422
    assert not studies.is_valid({"scale": "0000"})


def test_a_clone_option_of_another_kind_is_a_conflict_with_the_original(client: TestClient) -> None:
    run = client.post("/api/runs", json={"kind": "pretrain", "config": SYNTHETIC}).json()
    other_kind = client.post(f"/api/runs/{run['id']}/clone", json={"config": {"protocols": ["knn"]}})
    assert other_kind.status_code == 409
    assert "protocols" in other_kind.json()["field_errors"]
    eval_form = client.post(f"/api/runs/{run['id']}/clone", json={"config": {"backbone": None}})
    assert eval_form.status_code == 409  # null is an eval backbone, not a pretrain one
    nowhere = client.post(f"/api/runs/{run['id']}/clone", json={"config": {"Ô": [True]}})
    assert nowhere.status_code == 422
    crops = client.post(f"/api/runs/{run['id']}/clone", json={"config": {"local_crop_size": 1024}})
    assert crops.status_code == 409  # above the original's global_crop_size: no schema can state it


def test_an_artifact_name_too_long_for_the_filesystem_is_not_found(tmp_path) -> None:
    with pytest.raises(ArtifactNotFoundError):
        artifact_path(tmp_path, "x" * 5000)
