"""The Run page's actions and badges in a real headless Chromium against a real API (no worker: the runs
are arranged in the database the way a worker leaves them).

A failed run that never wrote a checkpoint makes Clone the primary action and says why (Resume would only
restart it); a finished run shows no green "live" badge; a running run shows its ETA; a completed training
run offers "Evaluate…", which opens the eval form with its checkpoint filled in; a number field holding
text is refused at the field; /login without a token says none is needed. Screenshot: run-failed-no-checkpoint.png.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browserlib import PageWatch, save_screenshot
from e2elib import Stack, running_stack

from server.metrics import queries as metric_queries
from server.runs import queries as run_queries
from server.storage.engine import create_db_engine, session_scope
from server.workers import queries as worker_queries

pytestmark = [pytest.mark.slow]
CONFIG = {"dataset": "synthetic", "backbone": "resnet5m"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("actions"), "embedded") as stack:
        yield stack


@pytest.fixture(scope="module")
def runs(stack: Stack) -> dict[str, str]:
    ids = {name: stack.submit(CONFIG, name) for name in ("failed", "completed")}
    engine = create_db_engine(stack.database_url)
    with session_scope(engine) as session:
        for run_id in ids.values():
            run_queries.claim_run(session, run_id=run_id, worker_name="w1")
        add_two_steps(session, ids["completed"])
        run_queries.update_run_status(
            session, run_id=ids["failed"], status="failed", error="CUDA out of memory"
        )
        run_queries.update_run_status(session, run_id=ids["completed"], status="completed", exit_code=0)
    engine.dispose()
    return ids


def add_two_steps(session: Any, run_id: str) -> None:
    """Two records one second apart of 100 steps, ingested one at a time as the worker does."""
    start = 1_800_000_000.0
    for step in (1, 2):
        record = {"step": step, "time": start + step, "total_steps": 100, "loss": 1.0}
        metric_queries.ingest_metrics(session, run_id=run_id, records=[record])


@contextlib.contextmanager
def running_with_heartbeats(stack: Stack) -> Iterator[str]:
    """A run claimed by a pretend worker that keeps beating, so the reaper leaves it running."""
    engine = create_db_engine(stack.database_url)
    run_id = stack.submit(CONFIG, "running")
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            with session_scope(engine) as session:
                worker_queries.heartbeat(session, worker_name="w1", run_id=run_id)
            stop.wait(0.5)

    with session_scope(engine) as session:
        run_queries.claim_run(session, run_id=run_id, worker_name="w1")
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        with session_scope(engine) as session:
            add_two_steps(session, run_id)
        yield run_id
    finally:
        stop.set()
        thread.join(timeout=10)
        engine.dispose()


def test_failed_run_without_checkpoint_offers_clone_first(
    stack: Stack, runs: dict[str, str], page: Any, shots: Path
) -> None:
    watch = PageWatch(page)
    page.goto(f"{stack.api_url}/runs/{runs['failed']}")
    page.get_by_text("nothing to continue from").wait_for()
    assert "primary" in (page.locator("#clone-run").get_attribute("class") or "")
    assert page.locator("#resume-run").inner_text() == "Restart"
    assert "primary" not in (page.locator("#resume-run").get_attribute("class") or "")
    assert "CUDA out of memory" in page.locator("#run-error").inner_text()
    save_screenshot(page, "run-failed-no-checkpoint", shots)
    assert watch.unexpected() == []


def test_finished_run_is_not_live_and_a_running_one_shows_its_eta(
    stack: Stack, runs: dict[str, str], page: Any
) -> None:
    page.goto(f"{stack.api_url}/runs/{runs['completed']}")
    page.locator("#stream-state.finished").wait_for()
    assert page.locator("#stream-state").inner_text() == "finished: no new points"
    with running_with_heartbeats(stack) as running:
        page.goto(f"{stack.api_url}/runs/{running}")
        page.locator("#stream-state.live").wait_for()
        assert page.locator("#run-eta").inner_text() == "1 min 38 s"  # 1 s per step, 98 steps to go
        assert "ETA 1 min 38 s" in page.locator(".page-head .progress").inner_text()


def test_evaluate_opens_the_eval_form_on_the_runs_checkpoint(
    stack: Stack, runs: dict[str, str], page: Any
) -> None:
    page.goto(f"{stack.api_url}/runs/{runs['completed']}")
    page.locator("#evaluate-run").click()
    page.wait_for_url(re.compile(r"/launch\?kind=eval.*evaluate="))
    checkpoint = page.locator("#field-checkpoint")
    page.wait_for_function(
        "(id) => document.getElementById('field-checkpoint')?.value === id", arg=runs["completed"]
    )
    # The run picker offers the completed training runs.
    assert checkpoint.get_attribute("list") == "field-checkpoint-choices"
    page.locator(f"#field-checkpoint-choices option[value='{runs['completed']}']").wait_for(state="attached")


def test_text_in_a_number_field_is_refused_at_the_field(stack: Stack, page: Any) -> None:
    page.goto(f"{stack.api_url}/launch?kind=pretrain")
    field = page.locator("#field-batch_size")
    field.wait_for()
    field.focus()
    page.keyboard.type("e")  # what a browser keeps of "abc" in a number field: nothing readable
    before = len(stack.get("/api/runs?limit=500")["data"])
    page.locator("#submit-run").click()
    page.wait_for_function("() => document.getElementById('field-batch_size-error').textContent !== ''")
    assert "is not a number" in page.locator("#field-batch_size-error").inner_text()
    assert field.get_attribute("aria-invalid") == "true"
    assert "got ''" not in page.content()
    assert len(stack.get("/api/runs?limit=500")["data"]) == before  # nothing was queued


def test_login_without_a_token_says_none_is_needed(stack: Stack, page: Any) -> None:
    page.goto(f"{stack.api_url}/login?next=/runs")
    page.locator("#login-open").wait_for()
    assert "needs no token" in page.locator("#login-open").inner_text()
    assert page.locator("#login-form").is_hidden()
    assert page.get_by_text("needs its API token").count() == 0
    page.locator("#login-continue").click()
    page.wait_for_url(re.compile(r"/runs$"))
