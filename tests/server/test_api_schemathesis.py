"""Property tests generated from the OpenAPI schema with every schemathesis check: no request may produce a
5xx, and status codes, content types, headers (Allow on 405 included), bodies, rejection of invalid data
and acceptance of valid data all match what the schema declares.

One exemption, stated where it applies: positive-data acceptance is off for POST /runs, /clone, /sweeps,
/studies, /searches and /searches/{id}/promote, whose configs the document states per kind (a search's
space, only as the config model checks it); what it cannot state (this server's data
roots, rules between options) answers the documented 409, which schemathesis accepts. The CLI run in
test_api_schemathesis_cli.py checks them without exemption; here the seeded runs make clone reach
real originals, whose config may refuse an override in combination (409 too). GET /api/runs is
generated without `where`, whose grammar no schema states (test_api_runs_where.py tests it).

The SSE endpoint is excluded (it streams until the client leaves); every other operation goes
through the real app on both databases. Random run ids would only ever reach the 404 branch, so in
about half of the examples the `run_id` path parameter is swapped for a freshly seeded run that has
metrics, logs and files. Example counts are kept small so the module runs in well under a minute.

(`schemathesis.pytest.from_fixture` does not work with this pytest version, so the operations are
walked here, one Hypothesis run each.)
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.specs.openapi.checks import positive_data_acceptance
from serverlib import make_run_files

from server.events import queries as event_queries
from server.metrics import queries as metric_queries
from server.runs import queries as run_queries
from server.settings import Settings

EXAMPLES_PER_OPERATION = 12
# Operations whose valid requests may name files or runs that do not exist here (see the docstring).
SEMANTIC_CONFIG_OPERATIONS = frozenset(
    {
        "POST /api/runs",
        "POST /api/runs/{run_id}/clone",
        "POST /api/sweeps",
        "POST /api/studies",
        # A search's base config is any kind's options and its space names them: a valid body may still
        # name an option, a bound or a corner the config model refuses (422 naming space.<option>).
        "POST /api/searches",
        "POST /api/searches/{search_id}/promote",
    }
)


def seed_run(app: FastAPI) -> str:
    settings: Settings = app.state.settings
    with app.state.session_factory() as session:
        run = run_queries.create_run(
            session, kind="pretrain", config={"dataset": "synthetic", "backbone": "resnet5m"}
        )
        run_dir = settings.run_dir(run.id)
        run_queries.update_run_status(session, run_id=run.id, status="failed", output_dir=str(run_dir))
        metric_queries.ingest_metrics(
            session,
            run_id=run.id,
            records=[{"step": s, "time": s * 0.1, "loss": 1 / s, "knn_top1": s} for s in range(1, 30)],
        )
        event_queries.append_log(session, run_id=run.id, lines=["hello", "world"])
    make_run_files(run_dir)
    return run.id


@pytest.mark.slow
def test_the_api_conforms_to_its_schema(app: FastAPI) -> None:
    load_all_checks()
    checks = list(CHECKS.get_all())
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex=r".*/events$")
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()

        excluded = [positive_data_acceptance] if operation.label in SEMANTIC_CONFIG_OPERATIONS else []

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
            if case.query and "where" in case.query:
                # A query's grammar is beyond JSON Schema: generated text is almost never a query, and its
                # 422 (naming the token) is what test_api_runs_where.py checks.
                del case.query["where"]
            case.call_and_validate(checks=checks, excluded_checks=excluded)  # noqa: B023 (called in this iteration)

        try:
            run()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc
        tested.append(operation.label)
    assert "POST /api/runs" in tested
    assert "GET /api/runs/{run_id}/metrics" in tested
    assert len(tested) >= 18
