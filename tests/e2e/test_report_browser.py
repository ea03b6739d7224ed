"""The Report page in a real headless Chromium against a real API (SQLite + file broker).

Runs are arranged in the database and their results.json written by the library's own writer, the way
a worker leaves them: two pretraining seeds of one recipe, each with its chained eval run, and a
baseline evaluated directly. The page shows the table (measured cells linked to their runs, pooled
seeds, published rows marked), the chart with measured, published and Pareto traces, the protocol
notes, and exports CSV and Markdown through the API's download URLs. Screenshot: report.png.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browserlib import PageWatch, launched_browser, save_screenshot
from e2elib import Stack, running_stack
from seeding import completed_run, write_eval_results

from server.settings import Settings
from server.storage.engine import create_db_engine, session_scope

pytestmark = [pytest.mark.slow]
PRETRAIN = {
    "dataset": "cifar10",
    "backbone": "mobilevit_s",
    "method": "dino",
    "n_epochs": 2,
    "global_crop_size": 32,
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("report"), "embedded") as stack:
        yield stack


def seed_runs(stack: Stack) -> dict[str, Any]:
    """Two pretraining seeds with one eval each, and a pretrained baseline; returns their ids."""
    settings = Settings(home=stack.home, database_url=stack.database_url)
    engine = create_db_engine(stack.database_url)
    ids: dict[str, Any] = {"trained": [], "evals": []}

    def make(session: Any, kind: str, config: dict[str, Any], parent_id: str | None = None) -> str:
        return completed_run(session, settings, kind=kind, config=config, parent_id=parent_id).id

    def results(run_id: str, backbone: str, params: int, size: int, cells: list) -> None:
        write_eval_results(
            settings, run_id, backbone=backbone, params=params, image_size=size, cells=cells, feature_dim=640
        )

    with session_scope(engine) as session:
        for seed, knn, probe in ((0, 40.0, [55.0, 56.0]), (1, 42.0, [57.0, 58.0])):
            trained = make(session, "pretrain", {**PRETRAIN, "seed": seed})
            evaluated = make(
                session, "eval", {"dataset": "cifar10", "checkpoint": trained}, parent_id=trained
            )
            results(
                evaluated,
                "mobilevit_s",
                4_940_000,
                32,
                [
                    ("knn", 1.0, [knn]),
                    ("knn_seed", 1.0, [30.0]),
                    ("linear", 0.1, probe),
                    ("linear", 0.3, [60.0, 61.0]),
                ],
            )
            ids["trained"].append(trained)
            ids["evals"].append(evaluated)
        ids["baseline"] = make(
            session, "eval", {"dataset": "cifar10", "backbone": "resnet50", "pretrained": True}
        )
        results(
            ids["baseline"],
            "resnet50",
            23_508_032,
            224,
            [
                ("knn", 1.0, [71.25]),
                ("knn_seed", 1.0, [50.5]),
                ("linear", 0.1, [80.0]),
                ("linear", 0.3, [82.0]),
            ],
        )
    engine.dispose()
    return ids


def test_report_page_table_chart_and_exports(stack: Stack, tmp_path: Path) -> None:
    ids = seed_runs(stack)
    selection = ",".join([*ids["trained"], ids["baseline"]])
    with launched_browser() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 1600}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        watch = PageWatch(page)
        page.goto(f"{stack.api_url}/report?runs={selection}")
        table = page.locator("#report-table")
        table.locator("tr[data-kind='measured']").first.wait_for()

        # Measured rows: the baseline's cell is its run's own mean and links to it; the seeds pool.
        measured = table.locator("tr[data-kind='measured']")
        assert measured.count() == 2
        pooled = measured.filter(has_text="mobilevit_s")
        knn = pooled.locator("td[data-column='knn']")
        assert knn.locator(".value").inner_text() == "41.00 ± 1.41 %"
        assert "n = 2" in knn.inner_text()
        assert "pooled" in knn.inner_text()
        assert {link.get_attribute("href") for link in knn.locator(".cell-meta a").all()} == {
            f"/runs/{run_id}" for run_id in ids["evals"]
        }
        baseline = measured.filter(has_text="resnet50").locator("td[data-column='knn'] a.value")
        assert baseline.inner_text() == "71.25 %"
        assert baseline.get_attribute("href") == f"/runs/{ids['baseline']}"

        # Published rows: marked in the row, in every cell, and never linked to a run.
        published = table.locator("tr[data-kind='published']")
        assert published.count() >= 4
        original = published.filter(has_text="MobileViT-S (LowDINO)")
        assert original.locator("td[data-column='nn1'] .value").inner_text() == "53.05 %"
        assert original.locator("td[data-column='nn1'] .badge.published").inner_text() == "published"
        assert original.locator("a").count() == 0
        style = original.locator("td").first.evaluate("(td) => getComputedStyle(td).fontStyle")
        assert style == "italic"

        # The chart: measured points, hollow published points, the Pareto front over measured only.
        page.wait_for_function("() => document.getElementById('report-chart')?.data?.length >= 2")
        traces = page.evaluate(
            "() => document.getElementById('report-chart').data.map((t) => [t.name, t.marker?.symbol || null, t.x.length])"
        )
        names = [name for name, _, _ in traces]
        assert names[:2] == ["measured", "published"]
        assert traces[1][1] == "diamond-open"
        assert "Pareto front (measured)" in names
        assert "weighted kNN" in page.locator("#protocol-notes").inner_text()
        save_screenshot(page, "report", tmp_path)

        with page.expect_download() as download_info:
            page.locator("#export-csv").click()
        download = download_info.value
        assert download.suggested_filename == "lowdino-report-cifar10.csv"
        rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
        by_model = {row["model"]: row for row in rows}
        assert by_model["MobileViT-S (LowDINO)"]["published"] == "true"
        assert by_model["MobileViT-S (LowDINO)"]["1-NN mean"] == "53.05"
        assert next(row for row in rows if row["eval_runs"] == ids["baseline"])["kNN mean"] == "71.25"

        with page.expect_download() as download_info:
            page.locator("#export-md").click()
        markdown = Path(download_info.value.path()).read_text()
        assert download_info.value.suggested_filename == "lowdino-report-cifar10.md"
        assert "| MobileViT-S (LowDINO) | 5.50 M | see source | – | 53.05 (published) |" in markdown
        assert "41.00 ± 1.41 (n=2, pooled)" in markdown
        page.locator("#copy-markdown").click()
        page.wait_for_function(
            "() => (document.getElementById('copy-state').dataset.copied || '').length > 0"
        )
        assert page.evaluate("() => document.getElementById('copy-state').dataset.copied") == markdown
        assert page.locator("#copy-state").inner_text() == "Copied"

        # The Runs page's selection bar and the Compare page open the report of their runs.
        page.goto(f"{stack.api_url}/runs?sel={ids['baseline']}")
        page.locator("#report-selected:not([disabled])").click()
        page.wait_for_url(f"{stack.api_url}/report?runs={ids['baseline']}")
        page.locator("#report-table tr[data-kind='measured']").first.wait_for()
        assert page.locator("#report-table tr[data-kind='measured']").count() == 1
        page.goto(f"{stack.api_url}/compare?runs={ids['evals'][0]}")
        page.locator("#open-report").click()
        page.wait_for_url(f"{stack.api_url}/report?runs={ids['evals'][0]}")
        page.locator("#report-table tr[data-kind='measured']").first.wait_for()

        # Nothing chosen: says what to do, and still shows the published table.
        page.goto(f"{stack.api_url}/report")
        page.locator("#report-empty").get_by_text("No runs chosen").wait_for()
        assert page.locator("#report-table tr[data-kind='published']").count() >= 4
        assert page.locator("#report-table tr[data-kind='measured']").count() == 0

        # /report/<id> is the sweep form of the page: an unknown sweep is an error with a retry, not a crash.
        page.goto(f"{stack.api_url}/report/no-such-sweep")
        page.locator("#banner").get_by_text("does not exist").wait_for()
        assert watch.unexpected(allow_http_errors=True) == []
        context.close()
