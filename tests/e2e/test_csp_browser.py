"""The security headers' Content-Security-Policy breaks nothing: every page in a real Chromium, no violation.

The browser reports each blocked script, style, image, connection or worker as a
`securitypolicyviolation` event (and a console error); both are collected from the first byte of each
page on. /docs and /redoc keep their own policy (server.http.web), which is checked the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browserlib import PageWatch, launched_browser
from e2elib import Stack, running_stack, tiny_pretrain

pytestmark = [pytest.mark.slow]
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__csp.push(`${event.effectiveDirective} blocked ${event.blockedURI || "inline"} (${event.sourceFile}:${event.lineNumber})`);
});
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("csp"), "embedded") as stack:
        stack.start_worker("c1")
        yield stack


def test_no_page_violates_its_content_security_policy(stack: Stack, tmp_path: Path) -> None:
    config = tiny_pretrain(knn_monitor=True, knn_max_train=32)
    run_id = stack.submit(config, "csp")
    assert stack.wait_status(run_id, {"completed"}, deadline_s=300)["status"] == "completed"
    pages = [
        "/", "/runs", "/launch?kind=pretrain&preset=quickstart", f"/runs/{run_id}",
        f"/compare?runs={run_id}", "/compare?vs=dinov2", f"/report?runs={run_id}", "/login", "/docs", "/redoc",
    ]  # fmt: skip
    with launched_browser() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
        context.add_init_script(RECORD_VIOLATIONS)
        page = context.new_page()
        page.set_default_timeout(30_000)
        watch = PageWatch(page)
        violations: dict[str, list[str]] = {}
        for path in pages:
            page.goto(f"{stack.api_url}{path}")
            page.wait_for_load_state("networkidle")
            if path.startswith("/runs/"):
                page.wait_for_function(
                    "() => (document.querySelector('[data-chart=loss]')?.data?.length || 0) > 0"
                )
            if path.startswith("/compare?runs"):
                page.wait_for_function(
                    "() => document.getElementById('curve-loss')?._fullLayout !== undefined"
                )
                with page.expect_download() as png:  # canvas -> data:/blob: image, the strictest path
                    page.locator("#png-curve-loss").click()
                assert Path(png.value.path()).read_bytes()[:4] == b"\x89PNG"
            if path.startswith("/report"):
                page.wait_for_function(
                    "() => document.getElementById('report-chart')?._fullLayout !== undefined"
                )
            found: list[Any] = page.evaluate("() => window.__csp")
            if found:
                violations[path] = found
        context.close()
    assert violations == {}
    assert [error for error in watch.unexpected() if "Content Security Policy" in error] == []
    assert watch.unexpected() == []
