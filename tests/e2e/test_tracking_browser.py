"""Compare, Runs, Run, Sweep and Report in a real headless Chromium: every run distinguishable, groups
with mean ± std bands, parallel coordinates, system metrics, the walkthrough's defects, phones and
WCAG 2.1 AA (axe-core, vendored in tests/e2e/vendor).

No training is needed for what these pages show: runs, their metric series and results are arranged
in the database (the service's own queries, the way the worker leaves them) behind a real API.
Screenshots: compare-groups.png and compare-parcoords.png (the README's), run-system.png, phone pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browserlib import PageWatch, save_screenshot
from e2elib import Stack, running_stack

from server.campaigns import queries as sweep_queries
from server.metrics.queries import ingest_metrics
from server.runs import queries as run_queries
from server.settings import Settings
from server.storage.engine import create_db_engine, session_scope
from server.storage.models import new_run_id
from server.vocabulary import RunStatus

pytestmark = [pytest.mark.slow]
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
START = 1_796_556_400.0  # Unix seconds, as the trainer writes `time`: the wall-time axis must not show them
BASE = {
    "dataset": "cifar10",
    "backbone": "resnet5m",
    "method": "dino",
    "n_epochs": 2,
    "global_crop_size": 32,
    "batch_size": 64,
}
PHONE = {"width": 390, "height": 844}


def curve(step: int, lr: float, seed: int) -> dict[str, Any]:
    # Seed 1 runs above seed 0 by an amount that changes with the step (0.15 at every 4th step).
    loss = 6.0 - step * (0.05 + lr * 10) + 0.15 * seed * (1 + (step % 4) / 2)
    return {
        "step": step,
        "epoch": step / 10,
        "time": START + 3 * step,
        "total_steps": 20,
        "loss": loss,
        "knn_top1": 20 + step * (1 + lr * 100) + 2 * seed * (1 + (step % 3) / 2),
    }


class Seeded:
    """Runs arranged in the stack's database; ids by role."""

    def __init__(self, stack: Stack) -> None:
        self.settings = Settings(home=stack.home, database_url=stack.database_url)
        self.engine = create_db_engine(stack.database_url)
        self.palette: list[str] = []  # 8 runs, all different in lr
        self.seeds: dict[str, list[str]] = {}  # recipe -> runs differing only in seed
        self.system = ""
        self.sweep = ""

    def run(
        self,
        session: Any,
        name: str,
        config: dict[str, Any],
        records: list[dict[str, Any]],
        *,
        status: RunStatus = RunStatus.COMPLETED,
        sweep: str | None = None,
        run_id: str | None = None,
    ) -> str:
        run_id = run_id or new_run_id()
        self.settings.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        if sweep is None:
            run_queries.create_run(
                session,
                kind="pretrain",
                config=config,
                name=name,
                run_id=run_id,
                output_dir=str(self.settings.run_dir(run_id)),
            )
        run_queries.update_run_status(session, run_id=run_id, status=RunStatus.RUNNING)
        if records:
            ingest_metrics(session, run_id=run_id, records=records)
        run_queries.update_run_status(session, run_id=run_id, status=status)
        return run_id

    def arrange(self) -> Seeded:
        with session_scope(self.engine) as session:
            for i in range(8):
                lr = 1e-4 * (i + 1)
                config = {**BASE, "lr": lr, "seed": 0}
                self.palette.append(
                    self.run(session, f"colour-{i}", config, [curve(s, lr, 0) for s in range(1, 21)])
                )
            for recipe, lr in (("A", 1e-3), ("B", 3e-3)):
                self.seeds[recipe] = [
                    self.run(
                        session,
                        f"recipe-{recipe}-seed{seed}",
                        {**BASE, "lr": lr, "seed": seed, "backbone": "mobilevit_xs"},
                        [curve(s, lr, seed) for s in range(1, 21)],
                    )
                    for seed in (0, 1)
                ]
            # Teacher temperature held at 0.02, DINO the only loss term (loss == dino_loss), and the
            # system metrics of a data-bound run.
            records = [
                {
                    "step": s,
                    "epoch": s / 10,
                    "time": START + s,
                    "total_steps": 20,
                    "loss": 5 - s * 0.1,
                    "dino_loss": 5 - s * 0.1,
                    "teacher_temp": 0.02,
                    "sys_cpu_percent": 180.0 + s,
                    "sys_rss_mb": 900.0 + s,
                    "sys_data_wait_percent": 62.0,
                }
                for s in range(1, 21)
            ]
            self.system = self.run(session, "data-bound", {**BASE, "lr": 5e-4}, records)
            # A sweep of three runs, cancelled after one completed.
            self.sweep = new_run_id()
            grid_runs = [
                {
                    "kind": "pretrain",
                    "config": {**BASE, "lr": lr},
                    "name": f"sweep-lr-{lr}",
                    "run_id": new_run_id(),
                }
                for lr in (1e-4, 1e-3, 1e-2)
            ]
            sweep_queries.create_sweep(
                session,
                sweep_id=self.sweep,
                kind="pretrain",
                config=BASE,
                runs=grid_runs,
                name="cancelled sweep",
                grid={"lr": [1e-4, 1e-3, 1e-2]},
            )
            for item, status in zip(
                grid_runs, (RunStatus.COMPLETED, RunStatus.CANCELLED, RunStatus.CANCELLED), strict=True
            ):
                lr = item["config"]["lr"]
                self.run(
                    session,
                    item["name"],
                    item["config"],
                    [curve(s, lr, 0) for s in range(1, 21)],
                    status=status,
                    sweep=self.sweep,
                    run_id=item["run_id"],
                )
        self.engine.dispose()
        return self


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("tracking"), "embedded") as stack:
        yield stack


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> Seeded:
    return Seeded(stack).arrange()


def trace_colors(page: Any, chart: str) -> list[str]:
    """Per run drawn in `chart`: its colour (line, or marker for points and bars); helpers left out."""
    return list(
        page.evaluate(
            """(id) => document.getElementById(id).data
                 .filter((t) => t.meta && t.meta.run && t.showlegend !== false)
                 .map((t) => (t.type === 'bar' || t.mode.includes('markers+text')) ? t.marker.color : t.line.color)""",
            chart,
        )
    )


def wait_drawn(page: Any, chart: str) -> None:
    page.wait_for_function(f"() => document.getElementById('{chart}')?._fullLayout !== undefined")


def test_eight_runs_get_eight_distinct_colours_everywhere(stack: Stack, seeded: Seeded, page: Any) -> None:
    watch = PageWatch(page)
    page.goto(f"{stack.api_url}/compare?runs={','.join(seeded.palette)}")
    for chart in ("curve-loss", "curve-knn", "accuracy-vs-params", "label-bars"):
        wait_drawn(page, chart)
        colors = trace_colors(page, chart)
        assert len(colors) == 8, (chart, colors)
        assert len(set(colors)) == 8, (chart, colors)
    chart_colors = trace_colors(page, "curve-loss")
    # The same run has the same colour in every chart and every table of the page.
    for chart in ("curve-knn", "accuracy-vs-params", "label-bars"):
        assert trace_colors(page, chart) == chart_colors, chart
    for table in ("#score-table tbody tr[data-run]", "#compare-runs [data-run]"):
        swatches = page.locator(f"{table} .swatch")
        assert [swatches.nth(i).get_attribute("data-color") for i in range(swatches.count())] == chart_colors
    header = page.locator("#diff-table thead .swatch")
    assert [header.nth(i).get_attribute("data-color") for i in range(header.count())] == chart_colors
    # No yellow, and at least 3:1 against the white page (WCAG 1.4.11 for graphics).
    for color in chart_colors:
        assert contrast(color, "#ffffff") >= 3.0, color
    # Beyond the palette the dash changes: 12 runs are still 12 distinct styles.
    styles = page.evaluate(
        """async () => { const m = await import('/static/js/colors.js');
             const s = m.runStyles(Array.from({length: 12}, (_, i) => 'r' + i));
             return s.ids().map((id) => `${s.get(id).color}/${s.get(id).dash}`); }"""
    )
    assert len(set(styles)) == 12
    assert watch.unexpected() == []


def contrast(one: str, other: str) -> float:
    def luminance(color: str) -> float:
        channels = [int(color.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted([luminance(one), luminance(other)], reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_seeds_pool_into_one_band_per_group_with_members_listed(
    stack: Stack, seeded: Seeded, page: Any, shots: Path
) -> None:
    watch = PageWatch(page)
    runs = [*seeded.seeds["A"], *seeded.seeds["B"]]
    page.goto(f"{stack.api_url}/compare?runs={','.join(runs)}")
    wait_drawn(page, "curve-loss")
    # Configs identical but for the seed: pooled by default, two groups of two.
    assert page.locator("#group-by").input_value() == "pool:seed"
    for chart in ("curve-loss", "curve-knn"):
        bands = page.evaluate(
            f"() => document.getElementById('{chart}').data.filter((t) => t.fill === 'toself').length"
        )
        means = page.evaluate(
            f"() => document.getElementById('{chart}').data.filter((t) => t.meta && t.meta.group).map((t) => t.name)"
        )
        assert bands == 2, chart
        assert len(means) == 2, means
        assert all("mean of 2" in name for name in means), means
    # The band spans the two seeds' spread: at step 20, seed 1's loss is 0.15 above seed 0's.
    spread = page.evaluate(
        """() => { const d = document.getElementById('curve-loss').data.find((t) => t.fill === 'toself');
             const n = d.x.length / 2; return d.y[n - 1] - d.y[n]; }"""
    )
    assert spread == pytest.approx(2 * 0.15 / 2**0.5, rel=1e-3)
    members = page.locator("#group-members li")
    assert members.count() == 2
    assert "recipe-A-seed0" in members.nth(0).inner_text()
    assert "recipe-A-seed1" in members.nth(0).inner_text()
    save_screenshot(page, "compare-groups", shots)

    # Any key groups: by lr is the same two groups; no grouping draws one line per run and no band.
    page.locator("#group-by").select_option("none")
    page.wait_for_function(
        """() => { const d = document.getElementById('curve-loss')?.data;
             return d && d.length === 4 && d.every((t) => t.fill !== 'toself'); }"""
    )
    assert len(trace_colors(page, "curve-loss")) == 4
    assert "group=none" in page.url
    page.reload()
    wait_drawn(page, "curve-loss")
    assert page.locator("#group-by").input_value() == "none"

    # The Runs table groups the same way, each group folding away.
    page.goto(f"{stack.api_url}/runs?q=recipe&group=pool:seed")
    page.locator("tr.group-row").first.wait_for()
    assert page.locator("tr.group-row").count() == 2
    toggle = page.locator("tr.group-row button").first
    assert toggle.get_attribute("aria-expanded") == "true"
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "false"
    visible = page.locator("#runs-table tbody tr[data-run-id]:visible")
    assert visible.count() == 2
    assert watch.unexpected() == []


def open_parcoords(page: Any, url: str) -> str:
    """Opens `url`, waits for the parallel coordinates; returns how they were drawn (parcoords or svg)."""
    page.goto(url)
    page.locator("#parcoords-table tbody tr").first.wait_for()
    page.wait_for_function(
        "() => document.getElementById('parcoords-chart')?.dataset.mode === 'svg' || document.getElementById('parcoords-chart')?._fullLayout"
    )
    page.wait_for_function("() => document.getElementById('parcoords-chart')._fullLayout !== undefined")
    return str(page.evaluate("() => document.getElementById('parcoords-chart').dataset.mode"))


def test_parallel_coordinates_one_line_per_run_named_on_hover(
    stack: Stack, seeded: Seeded, page: Any, shots: Path
) -> None:
    watch = PageWatch(page)
    page.set_viewport_size({"width": 1280, "height": 1000})
    # Under the dashboard's CSP (no 'unsafe-eval') parcoords' WebGL code cannot start: SVG lines instead.
    assert open_parcoords(page, f"{stack.api_url}/compare?runs={','.join(seeded.palette)}") == "svg"
    lines = page.evaluate(
        """() => document.getElementById('parcoords-chart').data
             .map((t) => ({run: t.meta.run, color: t.line.color, n: t.x.length, hover: t.customdata}))"""
    )
    assert [line["run"] for line in lines] == seeded.palette  # one line per run, in the page's order
    assert [line["color"] for line in lines] == trace_colors_of_table(page, "#parcoords-table tbody tr")
    assert {line["n"] for line in lines} == {3}  # lr, kNN top-1, final loss
    assert lines[0]["hover"][0] == "lr: 1.000e-4"
    assert page.locator("#parcoords-table tbody tr").count() == 8
    # Hovering a line names its run in the readout and picks it out (the others faded).
    # The mouse on run 2's point on the lr axis (distinct for every run): axes map data to pixels.
    page.locator("#parcoords-chart").scroll_into_view_if_needed()
    x, y = page.evaluate(
        """() => { const gd = document.getElementById('parcoords-chart'); const l = gd._fullLayout;
             const t = gd.data[2]; const box = gd.getBoundingClientRect();
             return [box.left + l.xaxis._offset + l.xaxis.l2p(t.x[0]), box.top + l.yaxis._offset + l.yaxis.l2p(t.y[0])]; }"""
    )
    page.mouse.move(x, y)
    page.wait_for_function(
        "() => document.getElementById('parcoords-readout').textContent.startsWith('colour-2:')"
    )
    opacity = page.evaluate("() => document.getElementById('parcoords-chart').data.map((t) => t.opacity)")
    assert opacity[2] == 1
    assert all(value < 1 for i, value in enumerate(opacity) if i != 2)
    # So does hovering its row in the linked table.
    page.locator(f"#parcoords-table tr[data-run='{seeded.palette[5]}']").hover()
    assert page.locator("#parcoords-readout").inner_text().startswith("colour-5:")
    page.locator("#parcoords").scroll_into_view_if_needed()
    save_screenshot(page, "compare-parcoords", shots, from_top=False)

    # The sweep page draws its own runs the same way (reused module).
    assert open_parcoords(page, f"{stack.api_url}/sweeps/{seeded.sweep}") == "svg"
    assert page.locator("#parcoords-table tbody tr").count() == 3
    assert page.evaluate("() => document.getElementById('parcoords-chart').data.length") == 3
    assert watch.unexpected() == []


def test_parcoords_where_the_browser_lets_it_run(stack: Stack, seeded: Seeded, browser: Any) -> None:
    # Without the CSP (as with a policy allowing it), Plotly's parcoords draws: one line per run.
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, bypass_csp=True)
    page = context.new_page()
    try:
        assert open_parcoords(page, f"{stack.api_url}/compare?runs={','.join(seeded.palette)}") == "parcoords"
        trace = page.evaluate(
            """() => { const t = document.getElementById('parcoords-chart').data[0];
                 return {type: t.type, labels: t.dimensions.map((d) => d.label), n: t.dimensions[0].values.length}; }"""
        )
        assert trace["type"] == "parcoords"
        assert trace["n"] == 8
        assert trace["labels"] == ["lr", "kNN top-1 (final)", "training loss (final)"]
        assert page.locator("#parcoords-chart .no-webgl").count() == 0
        page.locator(f"#parcoords-table tr[data-run='{seeded.palette[2]}']").hover()
        assert page.locator("#parcoords-readout").inner_text().startswith("colour-2:")
        scale = page.evaluate(
            "() => document.getElementById('parcoords-chart').data[0].line.colorscale.map((s) => s[1])"
        )
        assert len({color for color in scale if not color.startswith("rgba(150")}) == 1
    finally:
        context.close()


def trace_colors_of_table(page: Any, rows: str) -> list[str]:
    swatches = page.locator(f"{rows} .swatch")
    return [str(swatches.nth(i).get_attribute("data-color") or "") for i in range(swatches.count())]


def test_compare_defects_wall_time_add_by_name_and_dinov2(stack: Stack, seeded: Seeded, page: Any) -> None:
    watch = PageWatch(page)
    first, second = seeded.palette[:2]
    page.goto(f"{stack.api_url}/compare?runs={first}&x=time")
    wait_drawn(page, "curve-loss")
    xs = page.evaluate(
        "() => document.getElementById('curve-loss').data.filter((t) => t.meta && t.meta.run)[0].x"
    )
    # Seconds since the run's start: its first record 3 s after the first point's start, not 1.79e9.
    assert xs[0] == 0
    assert xs[-1] == pytest.approx(57)
    assert "since the run's start" in page.evaluate(
        "() => document.getElementById('curve-loss')._fullLayout.xaxis.title.text"
    )

    # "Add run" by name resolves it; the URL holds the id, a reload keeps the comparison.
    page.locator("#add-run").fill("colour-1")
    page.locator("#add-run-button").click()
    page.locator(f"#compare-runs [data-run='{second}']").wait_for()
    assert (
        page.url.split("runs=")[1].split("&")[0] == f"{first}%2C{second}" or f"{first},{second}" in page.url
    )
    # An unknown name is refused at the input; the comparison stays as it was.
    url = page.url
    page.locator("#add-run").fill("no-such-run")
    page.locator("#add-run-button").click()
    page.wait_for_function(
        "() => document.getElementById('add-run-error').textContent.includes('no-such-run')"
    )
    assert page.locator("#add-run").get_attribute("aria-invalid") == "true"
    assert page.url == url
    assert page.locator("#compare-runs [data-run]").count() == 2
    page.reload()
    page.locator(f"#compare-runs [data-run='{second}']").wait_for()
    assert page.locator("#compare-runs [data-run]").count() == 2

    # No DINOv2 evaluated: its published rows and the action to queue its evaluation.
    page.goto(f"{stack.api_url}/compare?vs=dinov2")
    page.locator("#dinov2-missing").wait_for()
    published = page.locator("#dinov2-published tbody tr")
    assert published.count() >= 1
    assert "DINOv2" in published.first.inner_text()
    assert page.locator("#queue-dinov2").is_enabled()
    assert watch.unexpected() == []


def test_run_page_system_group_data_bound_flat_axis_and_twin_lines(
    stack: Stack, seeded: Seeded, page: Any, shots: Path
) -> None:
    watch = PageWatch(page)
    page.goto(f"{stack.api_url}/runs/{seeded.system}")
    page.locator("#system [data-chart='sys_cpu']").wait_for()
    for chart in ("sys_cpu", "sys_memory", "sys_data_wait"):
        page.wait_for_function(
            f"() => document.querySelector('[data-chart={chart}]')?.data?.[0]?.x.length === 20"
        )
    assert page.locator("#charts [data-chart^='sys_']").count() == 0  # apart from the learning curves
    text = page.locator("#data-bound").inner_text()
    assert "data-bound" in text
    assert "62 %" in text
    # The constant teacher temperature sits on a readable axis around 0.02, not -0.5...1.
    page.wait_for_function("() => document.querySelector('[data-chart=teacher_temp]')?._fullLayout")
    low, high = page.evaluate(
        "() => document.querySelector('[data-chart=teacher_temp]')._fullLayout.yaxis.range"
    )
    assert 0.015 <= low < 0.02 < high <= 0.025
    # loss equal to dino_loss: both drawn, the second dashed and named for its twin.
    lines = page.evaluate(
        "() => document.querySelector('[data-chart=loss]').data.map((t) => [t.name, t.line.dash])"
    )
    assert lines[0][0] == "loss" or lines[0][0] == "dino_loss"
    assert lines[1][1] == "dash"
    assert "same values as" in lines[1][0]
    page.locator("#system").scroll_into_view_if_needed()
    save_screenshot(page, "run-system", shots, from_top=False)
    assert watch.unexpected() == []


def test_cancelled_sweep_is_not_a_full_bar_and_not_done(stack: Stack, seeded: Seeded, page: Any) -> None:
    page.goto(f"{stack.api_url}/sweeps/{seeded.sweep}")
    state = page.locator("#sweep-state")
    state.wait_for()
    page.wait_for_function("() => document.getElementById('sweep-state').textContent.length > 0")
    assert "done" not in state.inner_text()
    assert "1 of 3 completed" in state.inner_text()
    assert page.locator(".sweep-progress [role=progressbar]").get_attribute("aria-valuenow") == "33"
    page.goto(f"{stack.api_url}/sweeps")
    row = page.locator(f"tr[data-sweep-id='{seeded.sweep}']")
    row.wait_for()
    assert "stopped" in row.inner_text()
    assert "done" not in row.inner_text()


def test_report_uses_monitor_knn_labelled(stack: Stack, seeded: Seeded, page: Any) -> None:
    page.goto(f"{stack.api_url}/report?runs={','.join(seeded.seeds['A'])}")
    cell = page.locator("#report-table tr[data-kind='measured'] td[data-column='knn']").first
    cell.locator(".value").wait_for()
    assert cell.locator(".value").inner_text() != "–"
    assert "monitor" in cell.inner_text()


def pages_to_visit(seeded: Seeded) -> list[str]:
    return [
        "/runs",
        "/launch",
        "/sweeps",
        f"/sweeps/{seeded.sweep}",
        f"/compare?runs={','.join(seeded.palette[:4])}",
        f"/compare?runs={','.join(seeded.seeds['A'] + seeded.seeds['B'])}",
        "/compare?vs=dinov2",
        f"/report?runs={','.join(seeded.seeds['A'])}",
        f"/runs/{seeded.system}",
    ]


def overflowing(page: Any, width: int) -> list[str]:
    """Elements reaching past `width` that no scrolling or clipping box holds in."""
    return list(
        page.evaluate(
            """(width) => {
                 const held = (e) => { for (let p = e.parentElement; p; p = p.parentElement) {
                   if (getComputedStyle(p).overflowX !== 'visible') return true; } return false; };
                 const name = (e) => `${e.tagName.toLowerCase()}#${e.id}.${e.getAttribute('class') || ''}`;
                 return [...document.querySelectorAll('body *')]
                   .filter((e) => e.getBoundingClientRect().right > width + 0.5 && !held(e))
                   .slice(0, 6).map((e) => `${name(e)} in ${name(e.parentElement)} (right ${Math.round(e.getBoundingClientRect().right)})`);
               }""",
            width,
        )
    )


def settle(page: Any, path: str) -> None:
    page.goto(path)
    page.wait_for_load_state("networkidle")
    page.locator("#app h1").first.wait_for()


def test_phone_every_entry_reachable_nothing_wider_than_the_screen(
    stack: Stack, seeded: Seeded, browser: Any, shots: Path
) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    watch = PageWatch(page)
    try:
        for path in pages_to_visit(seeded):
            settle(page, f"{stack.api_url}{path}")
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (path, width, overflowing(page, PHONE["width"]))
            toggle = page.locator("#nav-toggle")
            assert toggle.is_visible()
            toggle.click()
            for link in [*page.locator(".topbar nav a").all(), page.locator(".docs-link")]:
                assert link.is_visible(), (path, link.inner_text())
                box = link.bounding_box()
                assert box is not None, (path, link.inner_text())
                assert 0 <= box["x"] <= box["x"] + box["width"] <= PHONE["width"], (path, link.inner_text())
            assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
            toggle.click()
            name = re.sub(r"[^a-z0-9]+", "-", path.split("?")[0].strip("/").lower()) or "runs"
            if path.startswith(("/runs/", "/compare?runs")):
                save_screenshot(page, f"phone-{name}", shots)
        # The menu takes the user somewhere: Report from the Runs page.
        settle(page, f"{stack.api_url}/runs")
        page.locator("#nav-toggle").click()
        page.locator(".topbar nav a[data-nav='report']").click()
        page.wait_for_url(re.compile(r"/report$"))
        assert not page.locator(".topbar nav a[data-nav='report']").is_visible()  # the menu folded again
        assert watch.unexpected(allow_http_errors=True) == []
    finally:
        context.close()


def test_wide_screen_compare_uses_the_width(stack: Stack, seeded: Seeded, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    try:
        page.goto(f"{stack.api_url}/compare?runs={','.join(seeded.palette[:4])}")
        wait_drawn(page, "curve-loss")
        body = page.evaluate("() => document.getElementById('compare-body').getBoundingClientRect().width")
        chart = page.evaluate("() => document.getElementById('curve-loss').getBoundingClientRect().width")
        assert body >= 1800
        assert chart >= 400
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_or_critical_accessibility_violation_on_any_page(
    stack: Stack, seeded: Seeded, browser: Any, scheme: str
) -> None:
    # bypass_csp: the dashboard's CSP (rightly) refuses the injected axe script.
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, bypass_csp=True, color_scheme=scheme
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    found: dict[str, list[str]] = {}
    try:
        for path in [*pages_to_visit(seeded), "/login"]:
            page.goto(f"{stack.api_url}{path}")
            page.wait_for_load_state("networkidle")
            page.add_script_tag(path=str(AXE))
            violations = page.evaluate(
                """async () => (await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }))
                     .violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
                     .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`)"""
            )
            if violations:
                found[path] = violations
        assert found == {}
    finally:
        context.close()
