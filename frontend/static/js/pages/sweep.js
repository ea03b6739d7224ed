// Sweep: one submission's runs as a unit — status counts, progress, skipped baselines, cancel / compare / report all.
import { api } from "../api.js";
import { showBanner } from "../banner.js";
import { getCatalog } from "../catalog.js";
import { ensurePlotly } from "../charts.js";
import { runStyles } from "../colors.js";
import { clear, fill, h } from "../dom.js";
import { knnOf, pct, progressBar, relativeTime, runLabel, statusPill } from "../format.js";
import { drawParallel, varyingKeys } from "../parcoords.js";
import { navigate } from "../url.js";

function describeGrid(sweep) {
  const parts = Object.entries(sweep.grid || {}).map(([key, values]) => `${key} ∈ {${values.join(", ")}}`);
  if (sweep.overrides?.length) parts.unshift(`${sweep.overrides.length} override set${sweep.overrides.length > 1 ? "s" : ""}`);
  return parts.join(" × ") || "base config";
}

export function mount(root, sweepId) {
  let stopped = false;
  let timer = null;
  let statuses = [];  // the server's RunStatus order (catalog.statuses)
  let active = new Set();  // the statuses of runs not finished yet, that Cancel still stops (catalog.active_statuses)
  const title = h("h1", {}, "Sweep");
  const counts = h("div", { class: "sweep-counts", id: "sweep-counts", "aria-live": "polite" });
  const bar = h("div", { class: "sweep-progress" });
  const meta = h("p", { class: "muted", id: "sweep-meta" });
  const skipped = h("div", { id: "sweep-skipped" });
  const parallel = h("div", { id: "parcoords" });
  let drawnFor = ""; // the runs' state the parallel coordinates were drawn for: redrawn only on change
  const tbody = h("tbody");
  const cancelAll = h("button", { type: "button", class: "danger", id: "sweep-cancel" }, "Cancel all");
  const compareAll = h("a", { class: "button", id: "sweep-compare", "data-link": true, href: "#" }, "Compare all");
  const report = h("a", { class: "button primary", id: "sweep-report", "data-link": true, href: `/report/${encodeURIComponent(sweepId)}` }, "Report");

  root.append(
    h("div", { class: "page-head" }, title, h("span", { class: "spacer" }), report, compareAll, cancelAll),
    meta, counts, bar, skipped,
    h("table", { class: "data", id: "sweep-runs" },
      h("thead", {}, h("tr", {}, ["Run", "Kind", "Status", "Backbone", "Evaluates", "kNN top-1", "Created"].map((t) => h("th", {}, t)))),
      tbody),
    h("section", {}, h("h2", {}, "Parallel coordinates"), parallel),
  );

  function render(sweep, runs) {
    const finished = runs.filter((run) => !active.has(run.status)).length;
    // The bar counts completed runs only: a sweep cancelled halfway is not "100 % done".
    const completed = sweep.status_counts.completed || 0;
    const ended = sweep.done; // every run finished and none still owes its chained evaluation
    const allCompleted = completed === sweep.total;
    title.textContent = sweep.name || `Sweep ${sweep.id}`;
    document.title = `${title.textContent} · LowDINO`;
    meta.textContent = `${sweep.study ? `Study ${sweep.study} · ` : ""}${sweep.kind} · ${describeGrid(sweep)} · created ${new Date(sweep.created_at).toLocaleString()}${sweep.evaluate ? " · each run is evaluated when it completes" : ""}`;
    const order = [...statuses, ...Object.keys(sweep.status_counts).filter((status) => !statuses.includes(status))];
    fill(counts, order.filter((status) => sweep.status_counts[status]).map((status) =>
      h("span", { class: "count", "data-status": status }, statusPill(status), ` ${sweep.status_counts[status]}`)),
    h("strong", { id: "sweep-state" }, ended
      ? (allCompleted ? " · done" : ` · stopped: ${completed} of ${sweep.total} completed`)
      : ` · ${finished} of ${sweep.total} finished`));
    const fraction = sweep.total ? completed / sweep.total : 0;
    fill(bar, h("span", { class: "progress big" },
      h("span", { class: "bar", role: "progressbar", "aria-label": "sweep progress", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(fraction * 100) },
        h("span", { style: `width:${(fraction * 100).toFixed(1)}%` })),
      `${Math.round(fraction * 100)} % completed`));
    const skippedRows = Object.entries(sweep.skipped || {});
    fill(skipped, skippedRows.length ? h("div", { class: "notice" },
      h("strong", {}, "Not evaluated here: "),
      h("ul", {}, skippedRows.map(([model, reason]) => h("li", {}, h("strong", {}, model), `: ${reason}`)))) : null);
    compareAll.href = `/compare?runs=${runs.map((run) => run.id).join(",")}`;
    cancelAll.disabled = !runs.some((run) => active.has(run.status) && !run.cancel_requested);
    const byId = new Map(runs.map((run) => [run.id, run]));
    clear(tbody);
    for (const run of runs) {
      const parent = run.kind === "eval" && run.parent_id ? byId.get(run.parent_id) : null;
      tbody.append(h("tr", { class: "clickable", "data-run-id": run.id, onclick: () => navigate(`/runs/${run.id}`) },
        h("td", {}, h("a", { href: `/runs/${run.id}`, "data-link": true, onclick: (e) => e.stopPropagation() }, runLabel(run))),
        h("td", {}, run.kind),
        h("td", {}, statusPill(run.status), " ", progressBar(run)),
        h("td", {}, run.kind === "eval" && parent ? parent.backbone || "–" : run.backbone || "–"),
        h("td", {}, parent ? h("a", { href: `/runs/${parent.id}`, "data-link": true, onclick: (e) => e.stopPropagation() }, runLabel(parent)) : "–"),
        h("td", { class: "num" }, pct(knnOf(run))),
        h("td", {}, relativeTime(run.created_at)),
      ));
    }
  }

  /** The sweep's own runs (not their chained evaluations) on its swept keys against their final figures. */
  async function drawSweepParallel(sweep, runs) {
    const trained = runs.filter((run) => run.kind === sweep.kind);
    const evaluations = new Map(runs.filter((run) => run.parent_id).map((run) => [run.parent_id, run]));
    const state = JSON.stringify(trained.map((run) => [run.id, run.status, run.latest_metrics?.loss ?? null, knnOf(evaluations.get(run.id) || run)]));
    if (state === drawnFor) return;
    drawnFor = state;
    const styles = runStyles(trained.map((run) => run.id));
    const swept = [...new Set([...Object.keys(sweep.grid || {}), ...(sweep.overrides || []).flatMap((item) => Object.keys(item))])];
    const rows = trained.map((run) => ({
      id: run.id, label: runLabel(run), color: styles.color(run.id), href: `/runs/${run.id}`,
      values: { ...Object.fromEntries(swept.map((key) => [key, run.config?.[key]])),
        "kNN top-1": knnOf(evaluations.get(run.id) || run), "training loss": run.latest_metrics?.loss ?? null },
    }));
    try {
      const Plotly = await ensurePlotly();
      if (stopped) return;
      const metrics = ["kNN top-1", "training loss"].filter((name) => rows.some((row) => typeof row.values[name] === "number"));
      await drawParallel(Plotly, parallel, rows, { params: varyingKeys(rows, swept), metrics });
    } catch (exc) {
      fill(parallel, h("p", { class: "field-error" }, `Could not draw the parallel coordinates: ${exc.message}`));
    }
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      if (!statuses.length) {
        const catalog = await getCatalog().catch(() => null);
        statuses = catalog?.statuses || [];
        active = new Set(catalog?.active_statuses || []);
      }
      const [sweep, runs] = await Promise.all([
        api(`/api/sweeps/${encodeURIComponent(sweepId)}`),
        api(`/api/runs?sweep=${encodeURIComponent(sweepId)}&sort=created_at&limit=500`),
      ]);
      if (stopped) return;
      render(sweep, runs.data);
      drawSweepParallel(sweep, runs.data);
      timer = setTimeout(refresh, sweep.done ? 15000 : 2000);
    } catch (exc) {
      if (stopped) return;
      showBanner(`Could not load sweep ${sweepId}: ${exc.message}`, { retry: refresh });
      timer = setTimeout(refresh, 10000);
    }
  }

  cancelAll.addEventListener("click", async () => {
    if (!window.confirm("Cancel every queued and running run of this sweep? Running runs stop at their next step with a checkpoint.")) return;
    try {
      await api(`/api/sweeps/${encodeURIComponent(sweepId)}/cancel`, { method: "POST" });
    } catch (exc) {
      showBanner(`Cancel failed: ${exc.message}`);
    }
    refresh();
  });

  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
