"""The dashboard in a real headless Chromium against a real API and `lowdino worker` (SQLite + file broker).

launch from a preset -> live chart grows over SSE -> runs table -> cancel -> resume -> clone -> edit the
form -> the edited run completes; a bad field shows the API's message at that field; compare two
runs (diff table, four charts, CSV and PNG export); reload and deep links keep the view; every request
(pages, /docs, /redoc) stays on the server's origin; with a token, login first, then streams work.
Each page is saved as a screenshot (set LOWDINO_SCREENSHOTS=docs/screenshots to refresh the README's).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browserlib import PageWatch, chart_points, save_screenshot, wait_for_growing_chart
from e2elib import Stack, make_stack, running_stack, tiny_pretrain, wait_for

pytestmark = [pytest.mark.slow]
LIVE_TIMEOUT_MS = 180_000
TOKEN = "browser-test-token"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("dashboard"), "embedded") as stack:
        stack.start_worker("b1")
        yield stack


def long_tiny_run(**overrides: Any) -> dict[str, Any]:
    """Tiny steps, many of them: long enough to watch it live and to cancel it mid-run."""
    return tiny_pretrain(n_epochs=400, **overrides)


def finished_tiny_runs(stack: Stack) -> tuple[str, str]:
    """Two completed runs that differ in lr and seed, with the kNN monitor on (cached per module)."""
    cached = getattr(stack, "_compare_pair", None)
    if cached:
        return cached
    ids = []
    for name, lr, seed in (("compare-a", 5e-4, 0), ("compare-b", 1e-3, 1)):
        config = tiny_pretrain(lr=lr, seed=seed, knn_monitor=True, knn_max_train=32, knn_max_val=16)
        ids.append(stack.submit(config, name))
    for run_id in ids:
        assert stack.wait_status(run_id, {"completed"}, deadline_s=300)["status"] == "completed"
    stack._compare_pair = (ids[0], ids[1])  # type: ignore[attr-defined]
    return ids[0], ids[1]


def test_launch_watch_cancel_resume_clone_from_the_browser(stack: Stack, page: Any, shots: Path) -> None:
    watch = PageWatch(page)
    base = stack.api_url
    page.goto(f"{base}/")
    page.get_by_text("No runs yet").wait_for()
    save_screenshot(page, "runs-empty", shots)

    # Two clicks from the first screen: the preset card, then "Queue 1 run".
    page.locator("#runs-empty a[data-preset='quickstart']").click()
    page.wait_for_url(re.compile(r"/launch\?kind=pretrain&preset=quickstart"))
    page.locator("button[data-preset='quickstart'][aria-pressed='true']").wait_for()
    assert page.locator("#field-backbone").input_value() == "mobilevit_xxs"
    assert page.locator("#field-dataset").input_value() == "synthetic"
    save_screenshot(page, "launch", shots)
    page.locator("#submit-run").click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f]+$"))
    run_id = page.url.rsplit("/", 1)[1]

    # The loss chart gains points while the page stays open: they arrive over SSE.
    wait_for_growing_chart(page, at_least=2, timeout_ms=LIVE_TIMEOUT_MS)
    assert page.locator("#stream-state").inner_text() == "live"
    assert page.locator(".pill[data-status='running']").count() == 1
    save_screenshot(page, "run", shots)

    page.goto(f"{base}/runs")
    row = page.locator(f"tr[data-run-id='{run_id}']")
    row.wait_for()
    assert "running" in row.inner_text()
    save_screenshot(page, "runs", shots)

    row.locator("a").first.click()
    page.wait_for_url(f"{base}/runs/{run_id}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#cancel-run").click()
    page.locator(".page-head .pill[data-status='cancelled']").wait_for(timeout=LIVE_TIMEOUT_MS)
    cancelled_at = stack.run(run_id)["progress"]["step"]

    page.locator("#resume-run").click()
    page.locator(".page-head .pill[data-status='running']").wait_for(timeout=LIVE_TIMEOUT_MS)
    wait_for(
        lambda: (stack.run(run_id)["progress"]["step"] or 0) > cancelled_at, "the resumed run to step on"
    )
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#cancel-run").click()
    page.locator(".page-head .pill[data-status='cancelled']").wait_for(timeout=LIVE_TIMEOUT_MS)

    # Clone opens the Launch form prefilled; edit it down to a tiny run and queue it.
    page.locator("#clone-run").click()
    page.wait_for_url(re.compile(r"/launch\?.*clone="))
    page.locator("#field-backbone").wait_for()
    assert page.locator("#run-name").input_value().endswith("(copy)")
    assert page.locator("#field-backbone").input_value() == "mobilevit_xxs"
    page.locator("details[data-group='monitor'] > summary").click()
    page.locator("details[data-group='advanced'] > summary").click()
    page.locator("#field-backbone").select_option("resnet5m")
    assert "4.96 M params" in page.locator("#field-backbone-aside").inner_text()
    for field, value in {
        "synthetic_size": "64", "batch_size": "16", "n_epochs": "2", "global_crop_size": "16",
        "local_crop_size": "8", "n_crops": "2", "out_dim": "64", "hidden_dim": "64", "bottleneck_dim": "32",
    }.items():  # fmt: skip
        page.locator(f"#field-{field}").fill(value)
    page.locator("#field-knn_monitor").uncheck()
    page.locator("#run-name").fill("edited clone")
    page.locator("#submit-run").click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f]+$"))
    clone_id = page.url.rsplit("/", 1)[1]
    assert clone_id != run_id
    page.locator(".page-head .pill[data-status='completed']").wait_for(timeout=LIVE_TIMEOUT_MS)
    clone = stack.run(clone_id)
    assert clone["name"] == "edited clone"
    assert clone["backbone"] == "resnet5m"
    assert clone["config"]["batch_size"] == 16
    assert clone["config"]["knn_monitor"] is False
    assert watch.unexpected() == []


def set_status(stack: Stack, run_id: str, status: str, **fields: Any) -> None:
    """Writes a run's status straight into the database (a state no tiny run reaches on its own)."""
    from sqlalchemy import update

    from server.storage.engine import create_db_engine, session_scope
    from server.storage.models import Run

    engine = create_db_engine(stack.database_url)
    try:
        with session_scope(engine) as session:
            session.execute(update(Run).where(Run.id == run_id).values(status=status, **fields))
            session.commit()
    finally:
        engine.dispose()


def test_the_run_pages_actions_follow_the_catalogs_status_sets(stack: Stack, page: Any, shots: Path) -> None:
    # Resume on catalog.resumable_statuses (the server's one resume rule), Cancel on active_statuses,
    # Delete on the rest: the page declares none of these sets itself.
    watch = PageWatch(page)
    catalog = page.request.get(f"{stack.api_url}/api/catalog").json()
    assert "failed" in catalog["resumable_statuses"]
    assert "completed" not in catalog["resumable_statuses"]
    run_id = stack.submit(tiny_pretrain(), "resumable")
    assert stack.wait_status(run_id, {"completed"}, deadline_s=300)["status"] == "completed"
    assert "checkpoint.pth" in stack.artifact_names(run_id)
    # Only finished statuses: a queued or running row without a worker behind it would be reconciled.
    finished = [status for status in catalog["statuses"] if status not in catalog["active_statuses"]]
    for status in [*[s for s in finished if s != "failed"], "failed"]:
        set_status(stack, run_id, status, error="simulated: stopped after its last checkpoint", exit_code=1)
        page.goto(f"{stack.api_url}/runs/{run_id}")
        page.locator(f".page-head .pill[data-status='{status}']").wait_for()
        page.locator("#delete-run").wait_for()
        assert page.locator("#resume-run").count() == (status in catalog["resumable_statuses"]), status
        assert page.locator("#cancel-run").count() == 0, status
    # The failed run with a checkpoint resumes from it and completes; a completed run offers no Resume.
    save_screenshot(page, "run-failed", shots)
    page.locator("#resume-run").click()
    page.locator(".page-head .pill[data-status='completed']").wait_for(timeout=LIVE_TIMEOUT_MS)
    assert page.locator("#resume-run").count() == 0
    assert stack.run(run_id)["attempt"] == 2
    assert watch.unexpected() == []


def test_bad_field_shows_the_api_message_at_that_field(stack: Stack, page: Any, shots: Path) -> None:
    watch = PageWatch(page)
    page.goto(f"{stack.api_url}/launch?kind=pretrain")
    page.locator("#field-batch_size").fill("0")
    page.locator("#submit-run").click()
    error = page.locator("#field-batch_size-error")
    error.wait_for()
    page.wait_for_function("() => document.querySelector('#field-batch_size-error').textContent.length > 0")
    assert "must be >= 1" in error.inner_text()
    assert page.locator("#field-batch_size").get_attribute("aria-invalid") == "true"
    assert "batch_size" in page.locator(".error-box").inner_text()
    assert page.url.endswith("/launch?kind=pretrain")  # nothing was queued
    assert page.locator(".submit-bar .error-box").is_visible()
    save_screenshot(page, "launch-error", shots, from_top=False)
    assert watch.unexpected(allow_http_errors=True) == []


def test_kind_picker_and_filters_follow_the_servers_catalog(stack: Stack, page: Any) -> None:
    # The dashboard spells out no run kinds or statuses: /api/catalog lists them (the config models,
    # server.models.RunStatus), and every kind's form renders from its schema (eval's has a oneOf).
    watch = PageWatch(page)
    catalog = page.request.get(f"{stack.api_url}/api/catalog").json()
    for kind in catalog["kinds"]:
        page.goto(f"{stack.api_url}/launch?kind={kind}")
        page.locator(".kinds button[aria-pressed='true']", has_text=kind).wait_for()
        # A field of this kind's own schema (export has no dataset: its model is a `source`).
        schema = page.request.get(f"{stack.api_url}/api/schema/{kind}").json()
        field = next(name for name in schema["properties"] if name not in catalog["server_owned_fields"])
        page.locator(f"#field-{field}").wait_for(state="attached")
        assert page.locator(".kinds button").all_inner_texts() == catalog["kinds"]
        # "Then evaluate" only where the run leaves a checkpoint to evaluate (catalog.training_kinds).
        if kind in catalog["training_kinds"]:
            page.locator("#evaluate-toggle").wait_for(state="attached")
        else:
            assert page.locator("#evaluate-toggle").count() == 0
        # The server-owned fields are never in the form.
        for field in catalog["server_owned_fields"]:
            assert page.locator(f"#field-{field}").count() == 0
    page.goto(f"{stack.api_url}/launch?kind=nonsense")
    page.locator(".kinds button[aria-pressed='true']", has_text=catalog["kinds"][0]).wait_for()
    page.goto(f"{stack.api_url}/runs?status=failed&kind=eval")
    page.wait_for_function("() => document.querySelectorAll('#runs-status option').length > 2")
    assert page.locator("#runs-status option").all_inner_texts()[1:] == catalog["statuses"]
    assert page.locator("#runs-kind option").all_inner_texts()[1:] == catalog["kinds"]
    assert (page.locator("#runs-status").input_value(), page.locator("#runs-kind").input_value()) == (
        "failed",
        "eval",
    )
    assert watch.unexpected() == []


def test_copy_commands_really_work(stack: Stack, page: Any) -> None:
    page.goto(f"{stack.api_url}/launch?kind=pretrain&preset=quickstart")
    page.locator("#field-n_epochs").fill("3")
    copied = "document.querySelector('#copy-cli ~ span').dataset.copied || ''"
    page.locator("#copy-cli").click()
    page.wait_for_function(f"() => ({copied}).startsWith('lowdino ')")
    cli = page.evaluate(f"() => {copied}")
    assert cli.startswith("lowdino pretrain ")
    assert "--n-epochs 3" in cli
    assert "--backbone mobilevit_xxs" in cli
    page.locator("#copy-curl").click()
    page.wait_for_function(f"() => ({copied}).startsWith('curl ')")
    curl = page.evaluate(f"() => {copied}")
    body = re.search(r"-d '(.*)'$", curl)
    assert curl.startswith(f"curl -X POST {stack.api_url}/api/runs")
    assert body
    # The curl body is exactly what the form would submit: the API accepts it as it is.
    checked = httpx.post(
        f"{stack.api_url}/api/runs", content=body.group(1), headers={"content-type": "application/json"}
    )
    assert checked.status_code == 201, checked.text
    assert checked.json()["config"]["n_epochs"] == 3
    httpx.post(f"{stack.api_url}/api/runs/{checked.json()['id']}/cancel")


def test_compare_two_runs_diff_table_four_charts_and_exports(stack: Stack, page: Any, shots: Path) -> None:
    watch = PageWatch(page)
    first, second = finished_tiny_runs(stack)
    page.goto(f"{stack.api_url}/compare?runs={first},{second}")
    for chart in ("curve-loss", "curve-knn", "accuracy-vs-params", "label-bars"):
        page.wait_for_function(f"() => document.getElementById('{chart}')?._fullLayout !== undefined")
    traces = page.evaluate("() => document.getElementById('curve-loss').data.filter(t => t.x.length).length")
    assert traces == 2
    measured = page.evaluate(
        "() => document.getElementById('accuracy-vs-params').data.filter(t => /measured/.test(t.name)).length"
    )
    assert measured >= 1
    differing = page.locator("#diff-table tr.differs")
    keys = {differing.nth(i).get_attribute("data-key") for i in range(differing.count())}
    assert {"lr", "seed"} <= keys
    assert page.locator("#diff-table tbody tr").count() == differing.count()  # identical rows hidden
    page.locator("#hide-same").uncheck()
    assert page.locator("#diff-table tbody tr").count() > differing.count()
    save_screenshot(page, "compare", shots)

    with page.expect_download() as download:
        page.locator("#export-csv").click()
    text = Path(download.value.path()).read_text()
    assert first in text
    assert second in text
    assert text.startswith("model,run_id")
    with page.expect_download() as png:
        page.locator("#png-curve-loss").click()
    assert Path(png.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert watch.unexpected() == []


def test_reload_and_deep_links_keep_the_view(stack: Stack, page: Any) -> None:
    first, second = finished_tiny_runs(stack)
    base = stack.api_url
    page.goto(f"{base}/runs?q=compare&status=completed&sel={first}")
    page.locator(f"tr[data-run-id='{first}']").wait_for()
    page.reload()
    page.locator(f"tr[data-run-id='{first}']").wait_for()
    assert page.locator("#runs-search").input_value() == "compare"
    assert page.locator("#runs-status").input_value() == "completed"
    assert page.locator(f"tr[data-run-id='{first}'] input[type=checkbox]").is_checked()
    assert not page.locator(f"tr[data-run-id='{second}'] input[type=checkbox]").is_checked()
    assert page.locator("#compare-selected").inner_text() == "Compare 1"

    page.goto(f"{base}/compare?runs={first},{second}&x=epoch&smooth=0.6&same=show")
    page.wait_for_function("() => document.getElementById('curve-loss')?._fullLayout !== undefined")
    page.reload()
    page.wait_for_function("() => document.getElementById('curve-loss')?._fullLayout !== undefined")
    assert page.locator("#x-axis").input_value() == "epoch"
    assert page.locator("#smoothing").input_value() == "0.6"
    assert not page.locator("#hide-same").is_checked()
    # Smoothing draws the raw series faintly behind the smoothed one: two traces per run.
    assert page.evaluate("() => document.getElementById('curve-loss').data.length") == 4

    fresh = page.context.new_page()
    fresh.goto(f"{base}/runs/{second}")
    assert fresh.locator("h1").inner_text() == "compare-b"
    fresh.locator(".page-head .pill[data-status='completed']").wait_for()


def test_a_lost_stream_says_reconnecting_then_resumes(stack: Stack, page: Any) -> None:
    watch = PageWatch(page)
    run_id = stack.submit(long_tiny_run(), "reconnect")
    page.goto(f"{stack.api_url}/runs/{run_id}")
    page.wait_for_function(
        "() => (document.querySelector('[data-chart=loss]')?.data?.[0]?.x.length || 0) >= 1",
        timeout=LIVE_TIMEOUT_MS,
    )
    port = int(stack.api_url.rsplit(":", 1)[1])
    stack.stop_api()
    page.wait_for_function("() => document.getElementById('stream-state').textContent === 'reconnecting…'")
    before = chart_points(page, "loss")
    stack.start_api(port=port)  # the worker kept training meanwhile; the page catches up from its last id
    page.wait_for_function(
        "() => document.getElementById('stream-state').textContent === 'live'", timeout=60_000
    )
    page.wait_for_function(
        f"() => document.querySelector('[data-chart=loss]').data[0].x.length > {before}",
        timeout=LIVE_TIMEOUT_MS,
    )
    steps = page.evaluate("() => document.querySelector('[data-chart=loss]').data[0].x")
    assert steps == sorted(set(steps))  # no step drawn twice, none backwards
    stack.post(f"/api/runs/{run_id}/cancel")
    # Only the browser's own reports of the cut stream and the refused reconnects while it was down.
    dropped = ("ERR_CONNECTION_REFUSED", "ERR_INCOMPLETE_CHUNKED_ENCODING")
    assert [e for e in watch.unexpected() if not any(code in e for code in dropped)] == []


def test_every_request_stays_on_the_servers_origin(stack: Stack, page: Any) -> None:
    first, second = finished_tiny_runs(stack)
    base = stack.api_url
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    # Nothing may leave the machine even if a page tried: foreign requests are recorded, then aborted.
    page.route(
        "**/*", lambda route: route.continue_() if route.request.url.startswith(base) else route.abort()
    )
    for path in ("/", "/launch", f"/runs/{first}", f"/compare?runs={first},{second}", "/compare?vs=dinov2"):
        page.goto(f"{base}{path}")
        page.wait_for_load_state("networkidle")
    page.goto(f"{base}/docs")
    page.locator(".swagger-ui .opblock").first.wait_for()
    page.goto(f"{base}/redoc")
    page.locator("redoc, [role=navigation], .menu-content").first.wait_for(state="attached")
    page.wait_for_load_state("networkidle")
    foreign = [url for url in requests if not url.startswith((base, "data:", "blob:"))]
    assert foreign == []
    assert any(url.endswith("/static/vendor/plotly.min.js") for url in requests)
    assert any("/static/docs/swagger-ui-bundle.js" in url for url in requests)
    assert any("/static/docs/redoc.standalone.js" in url for url in requests)


@pytest.fixture(scope="module")
def secured_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = make_stack(tmp_path_factory.mktemp("secured"), "embedded")
    stack.env["LOWDINO_API_TOKEN"] = TOKEN
    try:
        stack.start_api()
        stack.start_worker("t1")
        yield stack
    finally:
        stack.stop()


def test_token_login_page_then_streams_work(secured_stack: Stack, page: Any, shots: Path) -> None:
    base = secured_stack.api_url
    auth = {"Authorization": f"Bearer {TOKEN}"}
    page.goto(f"{base}/compare?runs=x")
    page.wait_for_url(re.compile(r"/login\?next="))
    save_screenshot(page, "login", shots)
    page.locator("#token").fill("wrong")
    page.locator("button[type=submit]").click()
    page.wait_for_function("() => document.getElementById('login-error').textContent.includes('wrong token')")
    page.locator("#token").fill(TOKEN)
    page.locator("button[type=submit]").click()
    page.wait_for_url(f"{base}/compare?runs=x")  # back where the user was going

    cookie = next(c for c in page.context.cookies() if c["name"] == "lowdino_session")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert TOKEN not in cookie["value"]

    response = httpx.post(
        f"{base}/api/runs",
        json={"kind": "pretrain", "name": "secured", "config": long_tiny_run()},
        headers=auth,
    )
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    page.goto(f"{base}/runs/{run_id}")
    wait_for_growing_chart(page, timeout_ms=LIVE_TIMEOUT_MS)
    assert page.locator("#stream-state").inner_text() == "live"
    assert TOKEN not in page.url
    httpx.post(f"{base}/api/runs/{run_id}/cancel", headers=auth)

    page.goto(f"{base}/")
    page.locator("#logout").click()
    page.wait_for_url(re.compile(r"/login"))
    page.goto(f"{base}/runs")
    page.wait_for_url(re.compile(r"/login\?next="))
    assert httpx.get(f"{base}/api/runs").status_code == 401
