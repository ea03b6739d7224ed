"""A recipe search in a real headless Chromium against a real API and `lowdino worker` (SQLite + file broker):
Launch -> mark fields "Sweep", tick "Search" -> the Search page follows it to the end with its charts; and a
finished search arranged in the database (pruned and failed trials, an Optuna study) for what its page shows.

Screenshots: launch-search.png, search.png (the search run here), search-trials.png (the arranged one).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browserlib import PageWatch, save_screenshot
from e2elib import Stack, make_stack

from lowdino.config import PretrainConfig
from lowdino.search import engine
from lowdino.search.config import SearchConfig
from lowdino.search.space import parse_space
from server.campaigns.study_storage import optuna_storage, study_name
from server.metrics import queries as metric_queries
from server.runs import queries as run_queries
from server.settings import Settings
from server.storage.engine import create_db_engine, session_scope
from server.storage.models import Search, SearchTrial, new_run_id, utcnow
from server.vocabulary import RunStatus, SearchState, TrialState

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = make_stack(tmp_path_factory.mktemp("searches-browser"), "embedded")
    stack.env["LOWDINO_SEARCH_POLL_INTERVAL"] = "0.3"
    try:
        stack.start_api()
        stack.start_worker("w1")
        yield stack
    finally:
        stack.stop()


def plotly_value(page: Any, selector: str, expression: str) -> Any:
    return page.evaluate(f"() => {{ const el = document.querySelector('{selector}'); return {expression}; }}")


def parallel_lines(page: Any, count: int) -> list[dict[str, Any]]:
    """Waits for the Search page's parallel coordinates with `count` lines; each line's label, colour and dash.

    Under the dashboard's CSP (no 'unsafe-eval') Plotly's WebGL parcoords cannot start: parcoords.js draws
    the same axes as SVG lines, one trace per trial, in the order of the linked table's rows."""
    page.wait_for_function(
        "(n) => document.querySelectorAll('#search-parcoords #parcoords-table tbody tr').length === n",
        arg=count,
    )
    page.wait_for_function("() => document.getElementById('parcoords-chart')?._fullLayout !== undefined")
    assert page.evaluate("() => document.getElementById('parcoords-chart').dataset.mode") == "svg"
    assert "WebGL" not in page.inner_text("#search-parcoords")
    lines = page.evaluate(
        """() => document.getElementById('parcoords-chart').data.map((t) =>
             ({label: t.name, color: t.line.color, dash: t.line.dash, y: t.y}))"""
    )
    assert len(lines) == count
    return list(lines)


def show_parameters(page: Any) -> None:
    """Scrolls the Parameters section (parallel coordinates, importances) to the top, below the fixed bar."""
    page.evaluate(
        """() => { document.getElementById('search-parameters').scrollIntoView({block: 'start'});
                   window.scrollBy(0, -document.querySelector('header').offsetHeight); }"""
    )


def parallel_axes(page: Any) -> list[str]:
    return list(page.evaluate("() => document.getElementById('parcoords-chart').layout.xaxis.ticktext"))


def test_a_search_from_the_launch_page_ends_with_parallel_coordinates_and_importances(
    stack: Stack, page: Any, shots: Path
) -> None:
    watch = PageWatch(page)
    page.goto(f"{stack.api_url}/launch?kind=pretrain&preset=quickstart")
    page.wait_for_selector("#field-lr")
    page.evaluate(
        "() => document.querySelectorAll('details.advanced').forEach((fold) => { fold.open = true; })"
    )
    # Small enough for seconds a trial: 200 synthetic images, batch 16, a tiny head, a small kNN bank.
    for field, value in {
        "synthetic_size": "200", "batch_size": "16", "hidden_dim": "64", "bottleneck_dim": "32",
        "knn_max_train": "100", "knn_max_val": "50", "batch_size_eval": "64",
    }.items():  # fmt: skip
        page.fill(f"#field-{field}", value)
    page.click("#field-lr-sweep-toggle")
    page.fill("#field-lr-sweep", "0.0005..0.005 log")
    page.click("#field-out_dim-sweep-toggle")
    page.fill("#field-out_dim-sweep", "64, 128")
    page.check("#search-mode")
    page.wait_for_selector("#search-n-trials")
    page.fill("#search-n-trials", "2")
    page.fill("#search-budget-steps", "4")
    # The time budget is a field generated from SearchConfig like every search option; the API's refusal
    # of a non-positive one shows under it, and nothing is created.
    page.fill("#search-trial-minutes", "0")
    page.click("#submit-run")
    page.wait_for_function(
        "() => document.getElementById('search-trial-minutes-error').textContent.includes('greater than 0')"
    )
    assert page.get_attribute("#search-trial-minutes", "aria-invalid") == "true"
    assert stack.get("/api/searches")["count"] == 0
    page.fill("#search-trial-minutes", "5")
    assert page.inner_text("#search-trial-minutes-error") == ""  # the refusal was of the old value
    page.fill("#search-reports", "2")
    page.select_option("#search-sampler", "random")
    page.select_option("#search-pruner", "none")
    assert page.inner_text("#submit-run") == "Queue search: 2 trials × 4 steps (at most 5 min each)"
    assert page.is_hidden("#evaluate-after")  # no test-split evaluation from a search
    page.locator("#search-block").scroll_into_view_if_needed()
    save_screenshot(page, "launch-search", shots, from_top=False)
    page.click("#submit-run")
    page.wait_for_url("**/searches/*")
    search_id = page.url.rstrip("/").rsplit("/", 1)[1]
    page.wait_for_function(
        "() => document.querySelector('#search-state')?.textContent === 'done'", timeout=300_000
    )
    search = stack.get(f"/api/searches/{search_id}")
    assert search["search"]["space"] == {
        "lr": {"float": [0.0005, 0.005], "log": True},
        "out_dim": {"choice": [64, 128]},
    }
    assert search["search"]["trial_minutes"] == 5
    assert search["state_counts"] == {"complete": 2}
    page.wait_for_function("() => document.querySelectorAll('#search-trials tbody tr').length === 2")
    lines = parallel_lines(page, 2)
    assert parallel_axes(page) == ["lr (log)", "out_dim", "validation kNN top-1 (%)"]
    assert all(line["dash"] == "solid" for line in lines)  # completed trials: solid, in their colours
    page.wait_for_function(
        "() => document.querySelector('#search-importances')?.layout?.title?.text?.startsWith('Parameter importance')"
    )
    importances = stack.get(f"/api/searches/{search_id}/importances")
    bars = plotly_value(page, "#search-importances", "el.data.length ? el.data[0].y : []")
    assert sorted(bars) == sorted(importances["importances"])
    show_parameters(page)
    save_screenshot(page, "search", shots, from_top=False)
    assert page.is_enabled("#search-promote")
    assert stack.get("/api/runs?kind=eval")["count"] == 0
    # The one failed request is the refusal asked for above (the browser logs a 422 as a console error).
    assert [error for error in watch.unexpected() if "status of 422" not in error] == []


SPACE = {"lr": {"float": [1e-4, 1e-2], "log": True}, "out_dim": {"choice": [64, 128]}}
ARRANGED: list[tuple[dict[str, Any], TrialState, float | None]] = [
    ({"lr": 1e-3, "out_dim": 64}, TrialState.COMPLETE, 40.0),
    ({"lr": 3e-3, "out_dim": 128}, TrialState.COMPLETE, 45.0),
    ({"lr": 8e-3, "out_dim": 128}, TrialState.PRUNED, 20.0),
    ({"lr": 5e-4, "out_dim": 64}, TrialState.COMPLETE, 35.0),
    ({"lr": 2e-4, "out_dim": 64}, TrialState.FAIL, None),
]


def arrange_finished_search(stack: Stack) -> str:
    """A done search as the service leaves one: 3 completed trials, one pruned at step 4 after reporting
    20 %, one failed before its run started; its Optuna study holds the completed ones (for importances)."""
    settings = Settings(home=stack.home, database_url=stack.database_url)
    search_id = new_run_id()
    options = SearchConfig(space=SPACE, budget_steps=8, reports=2, pruner="median", n_trials=5)
    optuna = engine.optuna_module()
    study = optuna.create_study(
        storage=optuna_storage(stack.database_url), study_name=study_name(search_id), direction="maximize"
    )
    distributions = engine.distributions(parse_space(SPACE, PretrainConfig, {}))
    states = optuna.trial.TrialState
    with session_scope(create_db_engine(stack.database_url)) as session:
        # Done already, so that the API's search driver (which drives running searches) leaves it alone.
        session.add(
            Search(id=search_id, name="arranged", kind="pretrain", config={}, state=SearchState.DONE,
                   search=options.model_dump(mode="json"), tags=[], finished_at=utcnow())
        )  # fmt: skip
        session.commit()
        for number, (params, state, value) in enumerate(ARRANGED):
            study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions=distributions,
                    value=value if state == TrialState.COMPLETE else None,
                    state=getattr(states, state.name),  # the study's state of the same name
                )
            )
            run_id = None
            if state != TrialState.FAIL:
                run_id = new_run_id()
                settings.run_dir(run_id).mkdir(parents=True)
                run_queries.create_run(
                    session, kind="pretrain", config=params, run_id=run_id, output_dir=str(settings.run_dir(run_id))
                )  # fmt: skip
                run_queries.update_run_status(session, run_id=run_id, status=RunStatus.RUNNING)
                knn = {4: 20.0} if state == TrialState.PRUNED else {4: (value or 0) - 5, 8: value}
                records = [
                    {"step": step, "epoch": step / 4, "loss": 5.0, "knn_top1": v} for step, v in knn.items()
                ]
                metric_queries.ingest_metrics(session, run_id=run_id, records=records)
                done = RunStatus.PRUNED if state == TrialState.PRUNED else RunStatus.COMPLETED
                run_queries.update_run_status(session, run_id=run_id, status=done)
            session.add(
                SearchTrial(
                    search_id=search_id, number=number, trial_id=study.trials[number]._trial_id, run_id=run_id,
                    params=params, state=state, value=value if state != TrialState.FAIL else None,
                    last_step=4 if state == TrialState.PRUNED else 8,
                    pruned_step=4 if state == TrialState.PRUNED else None,
                    reason="its run ran out of memory" if state == TrialState.FAIL else None, finished_at=utcnow(),
                )
            )  # fmt: skip
            session.commit()
    return search_id


def test_the_search_page_draws_one_line_per_trial_with_pruned_and_failed_ones_set_apart(
    stack: Stack, page: Any, shots: Path
) -> None:
    watch = PageWatch(page)
    search_id = arrange_finished_search(stack)
    page.goto(f"{stack.api_url}/searches/{search_id}")
    lines = parallel_lines(page, 5)
    by_trial = dict(enumerate(lines))
    # Completed trials in the colours they have in the page's other charts (colors.js, by position) ...
    assert [by_trial[n]["color"] for n in (0, 1, 3)] == ["#0072B2", "#D55E00", "#CC79A7"]
    assert {by_trial[n]["dash"] for n in (0, 1, 3)} == {"solid"}
    # ... a pruned one grey and dashed at the last validation kNN it reported, below every completed one ...
    assert (by_trial[2]["color"], by_trial[2]["dash"]) == ("#5b636e", "dash")
    assert by_trial[2]["label"] == "trial 2 · pruned at step 4"
    knn_axis = len(parallel_axes(page)) - 1
    assert by_trial[2]["y"][knn_axis] < min(by_trial[n]["y"][knn_axis] for n in (0, 1, 3))
    # ... and a failed one (no value) red and dotted, below the pruned one, where the axis says "no value".
    assert (by_trial[4]["color"], by_trial[4]["dash"]) == ("#b42318", "dot")
    assert by_trial[4]["y"][knn_axis] < by_trial[2]["y"][knn_axis]
    labels = page.evaluate(
        "() => document.getElementById('parcoords-chart').layout.annotations.map((a) => a.text)"
    )
    assert labels.count("no value") == 1
    table = page.locator("#parcoords-table tbody tr")
    assert table.nth(4).locator("td").last.inner_text() == "–"
    assert table.nth(2).locator(".swatch").get_attribute("data-dash") == "dash"
    # Hovering a table row names the trial in the readout (the chart's lines name none on their own).
    table.nth(1).hover()
    assert page.inner_text("#parcoords-readout").startswith("trial 1 · complete: lr (log) 0.003")
    page.wait_for_function("() => (document.querySelector('#search-importances')?.data || []).length === 1")
    assert sorted(plotly_value(page, "#search-importances", "el.data[0].y")) == ["lr", "out_dim"]
    show_parameters(page)
    save_screenshot(page, "search-trials", shots, from_top=False)
    assert watch.unexpected() == []
