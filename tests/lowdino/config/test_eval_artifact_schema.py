"""EvalConfig's JSON schema (what the REST API validates) refuses what the model refuses, --artifact included."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lowdino.config import EvalConfig

jsonschema_rs = pytest.importorskip("jsonschema_rs")

CASES = [
    ({"artifact": "m.onnx"}, True),
    ({"artifact": "m.onnx", "protocols": ["knn", "latency"]}, True),
    ({"artifact": "m.onnx", "backbone": "resnet5m"}, False),
    ({"artifact": "m.onnx", "checkpoint": "runs/a"}, False),
    ({"artifact": "m.onnx", "pretrained": True}, False),
    ({"artifact": "m.onnx", "weights": "w.pth"}, False),
    ({"checkpoint": "runs/a"}, True),
    ({"backbone": "resnet5m", "protocols": ["latency"]}, True),
    ({}, False),
]


@pytest.mark.parametrize(("config", "valid"), CASES)
def test_schema_and_model_agree_on_the_model_source(config, valid):
    try:
        EvalConfig.model_validate(config)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted is valid
    assert jsonschema_rs.validator_for(EvalConfig.model_json_schema()).is_valid(config) is valid
