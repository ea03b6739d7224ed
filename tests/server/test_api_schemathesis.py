"""Property tests generated from the OpenAPI schema: no request may produce a 5xx, responses match the schema.

The SSE endpoint is excluded (it streams until the client leaves); every other operation goes
through the real app on both databases. Random run ids would only ever reach the 404 branch, so in
about half of the examples the `run_id` path parameter is swapped for a freshly seeded run that has
metrics, logs and files. Example counts are kept small so the module runs in well under a minute.

(`schemathesis.pytest.from_fixture` does not work with this pytest version, so the operations are
walked here, one Hypothesis run each.)
"""

from __future__ import annotations

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from serverlib import make_run_files

from server import crud
from server.settings import Settings

EXAMPLES_PER_OPERATION = 12


def seed_run(app: FastAPI) -> str:
    settings: Settings = app.state.settings
    with app.state.session_factory() as session:
        run = crud.create_run(
            session, kind="pretrain", config={"dataset": "synthetic", "backbone": "resnet5m"}
        )
        run_dir = settings.run_dir(run.id)
        crud.update_run_status(session, run_id=run.id, status="failed", output_dir=str(run_dir))
        crud.ingest_metrics(
            session,
            run_id=run.id,
            records=[{"step": s, "time": s * 0.1, "loss": 1 / s, "knn_top1": s} for s in range(1, 30)],
        )
        crud.append_log(session, run_id=run.id, lines=["hello", "world"])
    make_run_files(run_dir)
    return run.id


def test_no_server_errors(app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex=r".*/events$")
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(), use_real_run=st.booleans())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case, use_real_run: bool) -> None:
            if use_real_run and case.path_parameters and "run_id" in case.path_parameters:
                case.path_parameters["run_id"] = seed_run(app)
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

        try:
            run()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc
        tested.append(operation.label)
    assert "POST /api/runs" in tested
    assert "GET /api/runs/{run_id}/metrics" in tested
    assert len(tested) >= 14
