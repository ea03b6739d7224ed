"""End to end: a tiny pretrain completes through a real `lowdino worker`, then an `export` run of it
(POST /api/runs kind=export, source = the run's id) completes through the same worker, and its ONNX
artifact and manifest are listed and downloaded with the bytes the exporter wrote."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from e2elib import Stack, running_stack, tiny_pretrain

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("export"), "embedded") as stack:
        stack.start_worker("x1")
        yield stack


def test_export_run_of_a_completed_pretrain_lists_and_serves_its_artifact(stack: Stack) -> None:
    trained = stack.submit(tiny_pretrain(n_epochs=1), name="to-export")
    assert stack.wait_status(trained, {"completed", "failed"}, deadline_s=180)["status"] == "completed"

    export = stack.post(
        "/api/runs",
        {"kind": "export", "name": "onnx of it", "config": {"source": trained, "format": "onnx"}},
        expect=201,
    )
    assert export["backbone"] == "resnet5m"
    done = stack.wait_status(export["id"], {"completed", "failed"}, deadline_s=240)
    assert done["status"] == "completed", stack.tail(f"runs/{export['id']}/stdout.log")

    listed = {item["name"]: item for item in stack.get(f"/api/runs/{export['id']}/artifacts")["data"]}
    onnx_names = [name for name in listed if name.endswith(".onnx")]
    assert len(onnx_names) == 1, sorted(listed)
    artifact = onnx_names[0]
    manifest_name = f"{artifact}.manifest.json"
    assert manifest_name in listed
    run_dir = stack.home / "runs" / export["id"]
    for name in (artifact, manifest_name):
        response = httpx.get(f"{stack.api_url}/api/runs/{export['id']}/artifacts/{name}", timeout=30)
        assert response.status_code == 200
        assert response.content == (run_dir / name).read_bytes()
    manifest = json.loads((run_dir / manifest_name).read_text())
    assert manifest["backbone"] == "resnet5m"
    assert manifest["image_size"] == 16  # the run's own evaluation size
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
    summary = json.loads(stack.artifact_text(export["id"], "summary.json"))
    assert artifact in json.dumps(summary)
