"""Headless Chromium for the dashboard tests (Debian's `chromium`, driven by Playwright for Python).

Outside CI a machine without the browser or Playwright skips these tests with the reason; under CI
(`CI` set) their absence is a failure, since `.ci/run` installs both.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 800}
# Chromium logs every non-2xx response as a console error; tests that provoke one on purpose say so.
NETWORK_ERROR_PREFIX = "Failed to load resource"


def chromium_path() -> str:
    path = os.environ.get("LOWDINO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
        reason = "Playwright for Python is not installed (pip install playwright)"
    else:
        reason = "Debian's chromium is not installed (apt-get install -y chromium)"
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must install it before the tests")
    pytest.skip(f"{reason}; under CI this fails")


@contextmanager
def launched_browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageWatch:
    """Collects console errors and uncaught exceptions of a page, so a test can assert there are none."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def unexpected(self, *, allow_http_errors: bool = False) -> list[str]:
        return [
            error
            for error in self.errors
            if not (allow_http_errors and error.startswith(NETWORK_ERROR_PREFIX))
        ]


def save_screenshot(page: Any, name: str, folder: Path, *, from_top: bool = True) -> Path:
    """A viewport-sized PNG in `folder`, and in $LOWDINO_SCREENSHOTS too when set (README images).

    `from_top=False` keeps the page where it scrolled itself (e.g. to a field that shows an error).
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    if from_top:
        page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(path))
    extra = os.environ.get("LOWDINO_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(extra) / f"{name}.png"))
    return path


def chart_points(page: Any, chart: str) -> int:
    """Points in the first trace of the Run page's chart `chart` (0 while it is not drawn)."""
    return int(
        page.evaluate(
            """(id) => { const div = document.querySelector(`[data-chart="${id}"]`);
                 return div && div.data && div.data.length ? div.data[0].x.length : 0; }""",
            chart,
        )
    )


def wait_for_growing_chart(
    page: Any, chart: str = "loss", *, at_least: int = 1, timeout_ms: int = 180_000
) -> None:
    """Until the Run page's chart has `at_least` points, then until it gains one more without a reload."""
    page.wait_for_function(
        '([id, n]) => (document.querySelector(`[data-chart="${id}"]`)?.data?.[0]?.x.length || 0) >= n',
        arg=[chart, at_least],
        timeout=timeout_ms,
    )
    before = chart_points(page, chart)
    page.wait_for_function(
        '([id, n]) => document.querySelector(`[data-chart="${id}"]`).data[0].x.length > n',
        arg=[chart, before],
        timeout=timeout_ms,
    )
