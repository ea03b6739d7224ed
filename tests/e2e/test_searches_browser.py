"""A recipe search in a real headless Chromium against a real API and `lowdino worker` (SQLite + file broker):
Launch -> mark fields "Sweep", tick "Search" -> the Search page follows it to the end with its charts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browserlib import PageWatch, save_screenshot
from e2elib import Stack, make_stack

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
    page.fill("#search-n-trials", "3")
    page.fill("#search-budget-steps", "4")
    page.fill("#search-reports", "2")
    page.select_option("#search-sampler", "random")
    page.select_option("#search-pruner", "none")
    assert page.inner_text("#submit-run") == "Queue search: 3 trials × 4 steps"
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
    assert search["state_counts"] == {"complete": 3}
    page.wait_for_function("() => document.querySelectorAll('#search-trials tbody tr').length === 3")
    page.wait_for_function(
        "() => document.querySelector('#search-parcoords')?.data?.[0]?.type === 'parcoords'"
    )
    dimensions = plotly_value(page, "#search-parcoords", "el.data[0].dimensions.map((d) => d.label)")
    assert dimensions == ["log10 lr", "out_dim", "validation kNN (%)"]
    page.wait_for_function(
        "() => document.querySelector('#search-importances')?.layout?.title?.text?.startsWith('Parameter importance')"
    )
    importances = stack.get(f"/api/searches/{search_id}/importances")
    bars = plotly_value(page, "#search-importances", "el.data.length ? el.data[0].y : []")
    assert sorted(bars) == sorted(importances["importances"])
    save_screenshot(page, "search", shots)
    # Plotly mounted both charts (parcoords draws its lines with WebGL, which a --disable-gpu browser may lack).
    assert page.locator("#search-parcoords.js-plotly-plot").count() == 1
    assert page.locator("#search-importances.js-plotly-plot").count() == 1
    assert page.is_enabled("#search-promote")
    assert stack.get("/api/runs?kind=eval")["count"] == 0
    assert watch.unexpected() == []
