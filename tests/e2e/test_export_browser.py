"""Deploy from the dashboard, in a real headless Chromium against a real API and `lowdino worker`:

* a tiny pretrain completes; its Run page offers "Export…"; the form queues an ONNX export of it and
  opens the export run, which completes through the worker and shows its artifact (download) and the
  manifest's parity figure;
* the Report of eval runs that timed latency (results.json written by the library's own writer) shows
  the latency column and the accuracy-against-latency chart beside accuracy-against-parameters, and
  /compare?vs=dinov2 states the speed ratio and the kNN difference in one sentence.
Screenshots: export-form.png, export-run.png, report-latency.png, compare-vs-dinov2.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browserlib import PageWatch, launched_browser, save_screenshot
from e2elib import Stack, running_stack, tiny_pretrain
from seeding import completed_run, write_eval_results
from services import latency_row

from server.runs import queries as run_queries
from server.settings import Settings
from server.storage.engine import create_db_engine, session_scope

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("export-browser"), "embedded") as stack:
        stack.start_worker("xb1")
        yield stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_browser() as browser:
        yield browser


def test_export_from_the_run_page(stack: Stack, browser: Any, tmp_path: Path) -> None:
    trained = stack.submit(tiny_pretrain(n_epochs=1), name="tiny to deploy")
    assert stack.wait_status(trained, {"completed", "failed"}, deadline_s=180)["status"] == "completed"
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    watch = PageWatch(page)
    page.goto(f"{stack.api_url}/runs/{trained}")
    page.locator("#export-run").click()
    form = page.locator("#export-form")
    form.wait_for()
    # The image size defaults to the run's evaluation size; int8 only with ONNX, then calibration shows.
    assert page.locator("#export-image-size").input_value() == "16"
    assert page.locator("#export-calibration").is_hidden()
    page.select_option("#export-quantize", "int8")
    assert page.locator("#export-calibration").is_visible()
    # A refused field (422 at config.calibration_data) is said under that field, and nothing is queued.
    page.locator("#export-calibration-data").fill("/etc")
    page.locator("#export-submit").click()
    error = page.locator("#export-calibration-data-error")
    page.wait_for_function(
        "() => document.getElementById('export-calibration-data-error').textContent.length > 0"
    )
    assert "outside the allowed directories" in error.inner_text()
    assert page.url.endswith(f"/runs/{trained}")
    page.locator("#export-calibration-data").fill("")
    page.select_option("#export-format", "torchscript")
    assert page.locator("#export-quantize").is_disabled()
    assert page.locator("#export-quantize").input_value() == "none"
    page.select_option("#export-format", "onnx")
    assert page.locator("#export-submit").inner_text() == "Queue the ONNX export"
    save_screenshot(page, "export-form", tmp_path)

    page.locator("#export-submit").click()
    page.wait_for_url(lambda url: "/runs/" in url and trained not in url)
    export_id = page.url.rstrip("/").rsplit("/", 1)[1]
    run = stack.run(export_id)
    assert run["kind"] == "export"
    assert run["backbone"] == "resnet5m"
    assert run["config"]["source"].endswith(trained)
    assert stack.wait_status(export_id, {"completed", "failed"}, deadline_s=240)["status"] == "completed"

    # The page follows the run to its end and then shows the artifact and its parity.
    page.locator("#export-summary").wait_for(timeout=60_000)
    link = page.locator("#export-artifact")
    assert link.inner_text() == "resnet5m.onnx"
    parity = page.locator("#export-parity").inner_text()
    assert "max |Δ|" in parity
    assert "tolerance 1.0e-4" in parity
    response = httpx.get(f"{stack.api_url}{link.get_attribute('href')}", timeout=30)
    assert response.content == (stack.home / "runs" / export_id / "resnet5m.onnx").read_bytes()
    assert page.locator("#artifacts").inner_text().count("resnet5m.onnx") == 2  # the file and its manifest
    assert "export: onnx" in page.locator("#summary").inner_text()
    assert (
        page.locator("#summary a", has_text=trained).get_attribute("href") == f"/runs/{trained}"
    )  # "Exports"
    save_screenshot(page, "export-run", tmp_path)
    assert watch.unexpected(allow_http_errors=True) == []  # the 422 above
    context.close()


def seed_timed_runs(stack: Stack) -> dict[str, str]:
    """A LowDINO pretraining with an evaluation that timed latency, and DINOv2 timed (latency only)."""
    settings = Settings(home=stack.home, database_url=stack.database_url)
    engine = create_db_engine(stack.database_url)
    ids: dict[str, str] = {}

    def make(session: Any, kind: str, config: dict[str, Any], parent_id: str | None = None) -> str:
        return completed_run(session, settings, kind=kind, config=config, parent_id=parent_id).id

    def results(run_id: str, backbone: str, params: int, size: int, cells: list, latency: list) -> None:
        write_eval_results(
            settings, run_id, backbone=backbone, params=params, image_size=size, cells=cells, latency=latency
        )

    with session_scope(engine) as session:
        pretrain = {
            "dataset": "cifar10",
            "backbone": "mobilevit_xxs",
            "method": "dino",
            "n_epochs": 2,
            "global_crop_size": 32,
        }
        ids["trained"] = make(session, "pretrain", pretrain)
        run_queries.update_run_status(
            session, run_id=ids["trained"], status="completed", latest_metrics={"knn_top1": 40.0}
        )
        ids["eval"] = make(
            session, "eval", {"dataset": "cifar10", "checkpoint": ids["trained"]}, parent_id=ids["trained"]
        )
        results(
            ids["eval"],
            "mobilevit_xxs",
            951_000,
            32,
            [("knn", 1.0, [40.0]), ("knn_seed", 1.0, [33.0])],
            [latency_row("torch", 1, 1, 16.8, 32), latency_row("onnxruntime", 1, 1, 0.67, 32)],
        )
        ids["dinov2"] = make(
            session, "eval", {"dataset": "cifar10", "backbone": "dinov2_vits14", "protocols": ["latency"]}
        )
        results(
            ids["dinov2"],
            "dinov2_vits14",
            22_056_576,
            28,
            [],
            [latency_row("onnxruntime", 1, 1, 9.31, 28, note="random weights: latency only")],
        )
    engine.dispose()
    return ids


def test_report_latency_column_and_chart_and_the_dinov2_sentence(
    stack: Stack, browser: Any, tmp_path: Path
) -> None:
    ids = seed_timed_runs(stack)
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(30_000)
    watch = PageWatch(page)
    page.goto(f"{stack.api_url}/report?runs={ids['trained']},{ids['dinov2']}&chart=nn1")
    table = page.locator("#report-table")
    table.locator("tr[data-kind='measured']").first.wait_for()
    assert "latency" in page.locator("#latency-column").inner_text()
    small = table.locator("tr[data-kind='measured']").filter(has_text="mobilevit_xxs")
    cell = small.locator("td[data-column='latency']")
    assert cell.locator(".value").inner_text() == "0.67 ms"
    assert "onnxruntime fp32" in cell.inner_text()
    # Published DINOv2 keeps its published accuracy and shows our timing, marked as timed here.
    published = table.locator("tr[data-kind='published']").filter(has_text="ViT-S/14 (DINOv2)").first
    assert "published" in published.locator("td[data-column='nn1']").inner_text()
    assert "9.31 ms" in published.locator("td[data-column='latency']").inner_text()
    assert "timed here" in published.locator("td[data-column='latency']").inner_text()

    page.wait_for_function("() => document.getElementById('report-latency-chart')?.data?.length >= 2")
    traces = page.evaluate(
        "() => document.getElementById('report-latency-chart').data.map((t) => [t.name, t.x])"
    )
    assert traces[0] == ["measured", [0.67]]
    assert traces[1][0] == "published accuracy, latency measured here"
    assert traces[1][1] == [9.31]
    assert page.locator("#report-chart").is_visible()  # beside accuracy against parameters
    page.locator("#report-latency-chart").scroll_into_view_if_needed()
    save_screenshot(page, "report-latency", tmp_path, from_top=False)

    page.goto(f"{stack.api_url}/compare?vs=dinov2&runs={ids['trained']},{ids['dinov2']}")
    sentence = page.locator("#versus-dinov2 li").first
    sentence.wait_for()
    text = sentence.inner_text()
    assert "13.9× faster than DINOv2 ViT-S/14 on this CPU at batch 1" in text
    assert "kNN points" in text
    assert "published" in text
    assert "0.67 ms" in page.locator("#score-table").inner_text()
    page.wait_for_function("() => document.getElementById('accuracy-vs-latency')?.data?.length >= 1")
    save_screenshot(page, "compare-vs-dinov2", tmp_path)
    assert watch.unexpected() == []
    context.close()
