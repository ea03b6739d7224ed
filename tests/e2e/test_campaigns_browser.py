"""Campaigns in a real headless Chromium against a real API and `lowdino worker` (SQLite + file broker).

Turn a field into a list of values on the Launch page -> "Queue 4 runs" -> the sweep page lists them
-> cancel all; and the study preset "Reproduce the original table" at smoke scale from the Launch page
-> watch the sweep finish (pretrainings, their chained evaluations) -> its report -> CSV and Markdown.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browserlib import PageWatch, save_screenshot
from e2elib import Stack, make_stack
from services import extract_cifar

pytestmark = [pytest.mark.slow]
STUDY_TIMEOUT_MS = 600_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = make_stack(tmp_path_factory.mktemp("campaigns"), "embedded")
    stack.env["LOWDINO_CHAIN_POLL_INTERVAL"] = "0.5"
    try:
        stack.start_api()
        stack.start_worker("w1")
        yield stack
    finally:
        stack.stop()


def test_a_field_swept_over_values_queues_one_run_per_combination(
    stack: Stack, page: Any, shots: Path
) -> None:
    watch = PageWatch(page)
    page.goto(f"{stack.api_url}/launch?kind=pretrain&preset=quickstart")
    page.wait_for_selector("#field-lr")
    page.click("#field-lr-sweep-toggle")
    page.fill("#field-lr-sweep", "0.001, 0.002")
    page.click("#field-backbone-sweep-toggle")
    page.fill("#field-backbone-sweep", "resnet5m, mobilevit_xxs")
    assert page.inner_text("#submit-run") == "Queue 4 runs"
    page.fill("#field-max_steps", "1")  # the point here is what gets queued, not the training
    page.locator("[data-field=backbone]").scroll_into_view_if_needed()
    page.evaluate("() => window.scrollBy(0, -80)")
    save_screenshot(page, "launch-sweep", shots, from_top=False)
    page.click("#submit-run")
    page.wait_for_url("**/sweeps/*")
    page.wait_for_selector("#sweep-runs tbody tr[data-run-id]")
    sweep_id = page.url.rstrip("/").rsplit("/", 1)[1]
    sweep = stack.get(f"/api/sweeps/{sweep_id}")
    assert sweep["total"] == 4
    runs = stack.get(f"/api/runs?sweep={sweep_id}&sort=created_at")["data"]
    assert sorted((run["config"]["backbone"], run["config"]["lr"]) for run in runs) == [
        ("mobilevit_xxs", 0.001),
        ("mobilevit_xxs", 0.002),
        ("resnet5m", 0.001),
        ("resnet5m", 0.002),
    ]
    assert all(run["config"]["max_steps"] == 1 for run in runs)
    assert page.locator("#sweep-runs tbody tr[data-run-id]").count() == 4
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#sweep-cancel")
    # Cancelled before all completed: the sweep says it stopped, never "done" (that is for complete sweeps).
    page.wait_for_function(
        "() => document.querySelector('#sweep-state')?.textContent.includes('stopped')", timeout=120_000
    )
    statuses = {run["status"] for run in stack.get(f"/api/runs?sweep={sweep_id}")["data"]}
    assert statuses <= {"cancelled", "completed"}
    assert "cancelled" in statuses
    save_screenshot(page, "sweep", shots)
    assert watch.unexpected() == []


def test_study_preset_at_smoke_scale_from_launch_to_report(stack: Stack, page: Any, shots: Path) -> None:
    # Real CIFAR-10 images, a few per class, as an image folder (a default data root: <home>/data).
    extract_cifar(stack.home / "data", per_class=12, split="train")
    folder = extract_cifar(stack.home / "data", per_class=6, split="test")
    watch = PageWatch(page)
    page.goto(f"{stack.api_url}/launch")
    page.click("[data-study=reproduce_original_table]")
    page.wait_for_selector("#study-panel:not([hidden])")
    assert page.is_checked("#study-scale-smoke")
    # Baselines without local weights are listed with the reason they will be skipped.
    assert "skipped" in page.inner_text(".baseline-list")
    page.select_option("#study-dataset", "imagefolder")
    assert page.input_value("#study-dataset-name") == "cifar10"  # the images are CIFAR-10's own splits
    page.fill("#study-data-path", str(folder))
    page.fill("#study-max-steps", "2")
    save_screenshot(page, "launch-study", shots)
    page.click("#submit-study")
    page.wait_for_url("**/sweeps/*")
    sweep_id = page.url.rstrip("/").rsplit("/", 1)[1]
    page.wait_for_function(
        "() => document.querySelector('#sweep-state')?.textContent.includes('done')", timeout=STUDY_TIMEOUT_MS
    )
    sweep = stack.get(f"/api/sweeps/{sweep_id}")
    assert sweep["status_counts"] == {"completed": 6}, sweep  # 3 pretrainings + their 3 evaluations
    skipped = {"ViT-S/14 (DINOv2)", "ResNet50 (DINO)", "MobileNetV2 (ImageNet-1k supervised)"}
    assert set(sweep["skipped"]) == skipped
    assert page.locator("#sweep-skipped li").count() == 3
    save_screenshot(page, "sweep-study", shots)

    # The report: one measured row per pretrained backbone, the published rows beside them, never mixed.
    page.click("#sweep-report")
    page.wait_for_url(f"**/report/{sweep_id}")
    table = page.locator("#report-table")
    table.locator("tr[data-kind='measured']").first.wait_for()
    assert table.locator("tr[data-kind='measured']").count() == 3
    assert table.locator("tr[data-kind='published']").count() >= 4
    assert table.locator("tr[data-kind='skipped']").count() == 3
    report = stack.get(f"/api/report?sweep={sweep_id}")
    assert report["dataset"] == "cifar10"
    measured = {row["backbone"]: row for row in report["rows"] if row["kind"] == "measured"}
    assert set(measured) == {"mobilevit_s", "resnet5m", "mobilenetv2_100"}
    save_screenshot(page, "report-study", shots)

    with page.expect_download() as download_info:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    measured_csv = {row["model"]: row for row in rows if row["published"] == "false" and row["kNN mean"]}
    assert len(measured_csv) == 3
    for row in measured.values():
        assert float(measured_csv[row["model"]]["kNN mean"]) == row["cells"]["knn"]["mean"]
    assert any(row["published"] == "true" and row["1-NN mean"] == "53.05" for row in rows)

    with page.expect_download() as download_info:
        page.click("#export-md")
    markdown = Path(download_info.value.path()).read_text()
    assert "53.05 (published" in markdown
    assert "dino_resnet50_pretrain.pth" in markdown  # a skipped row's reason, as a footnote
    assert watch.unexpected() == []
