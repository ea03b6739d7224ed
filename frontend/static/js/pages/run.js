// Run: live curves over SSE, status and progress, log tail, config, artifacts, results and actions.
import { api, followEvents } from "../api.js";
import { showBanner } from "../banner.js";
import { getCatalog, paramsOf } from "../catalog.js";
import { COLLAPSE_KEY, CONFIG, DATA_WAIT_KEY, ensurePlotly, flatRange, groupFor, groupKeys, layout, markerShapes, revealTwins, traceType, withFlatRange } from "../charts.js";
import { DASHES, styleAt, swatch } from "../colors.js";
import { clear, fill, h } from "../dom.js";
import { exportForm, renderManifest } from "../export.js";
import { duration, knnOf, number, params as fmtParams, pct, progressBar, rate, relativeTime, runLabel, statusPill } from "../format.js";
import { notesPanel } from "../notes.js";
import { navigate } from "../url.js";

const MAX_POINTS = 1500;
const MAX_LOG_LINES = 3000;

export function mount(root, runId) {
  let run = null;
  let stream = null;
  let stopped = false;
  let Plotly = null;
  let catalog = null;
  const charts = new Map(); // group id -> {div, group, keys, index: Map(key -> trace), range, collapse: []}
  const header = h("div");
  const notice = h("div");
  const notesSlot = h("div");
  let notes = null;
  let hasCheckpoint = null; // from the artifacts list: null until it answers
  let lastStreamState = "connecting";
  const chartGrid = h("div", { class: "charts", id: "charts" });
  // System metrics (sys_*) apart from the learning curves, with the plain data-bound sentence.
  const systemGrid = h("div", { class: "charts", id: "system-charts" });
  const dataBound = h("p", { id: "data-bound", "aria-live": "polite" });
  const systemSection = h("section", { id: "system", hidden: true }, h("h2", {}, "System"), dataBound, systemGrid);
  const streamState = h("span", { class: "stream-state", id: "stream-state", role: "status", "aria-live": "polite" }, "connecting…");
  const follow = h("input", { type: "checkbox", id: "follow", checked: true });
  const logBox = h("pre", { class: "log", id: "log", tabindex: "0", role: "log", "aria-label": "training log (follows new lines)" });
  const configTable = h("tbody");
  const artifactList = h("ul", { id: "artifacts" });
  const resultsBox = h("div", { id: "results" });
  const exportPanel = h("div", { id: "export-panel" });
  const manifestBox = h("div", { id: "manifest" });

  root.append(
    header, notice, notesSlot, exportPanel, manifestBox,
    h("div", { class: "chart-head" }, h("h2", {}, "Metrics"), streamState,
      h("label", { for: "follow" }, follow, " follow the latest points when zoomed"),
      h("a", { href: `/api/runs/${encodeURIComponent(runId)}/metrics.csv`, download: true }, "all points as CSV")),
    chartGrid,
    systemSection,
    resultsBox,
    h("div", { class: "two-col" },
      h("section", {}, h("h2", {}, "Log"), logBox),
      h("section", {}, h("h2", {}, "Artifacts"), artifactList,
        h("h2", {}, "Resolved config"), h("div", { class: "scroll-box", tabindex: "0", role: "region", "aria-label": "resolved config (scrolls)" }, h("table", { class: "data kv", id: "config" }, configTable)))),
  );

  function actionButton(label, id, handler, { danger = false, primary = false } = {}) {
    return h("button", { type: "button", id, class: danger ? "danger" : primary ? "primary" : "", onclick: handler }, label);
  }

  async function act(path, method, confirmText) {
    if (confirmText && !window.confirm(confirmText)) return;
    try {
      const updated = await api(path, { method });
      if (method === "DELETE") return navigate("/runs");
      run = updated;
      renderHeader();
    } catch (exc) {
      showBanner(`${exc.message}`);
    }
  }

  function renderHeader() {
    const config = run.config || {};
    const actions = [];
    // Which statuses can be cancelled, resumed or deleted is the server's rule (catalog.active_statuses,
    // catalog.resumable_statuses); until the catalog answers, none of those buttons is offered.
    const active = catalog ? catalog.active_statuses.includes(run.status) : null;
    if (active) {
      actions.push(actionButton(run.cancel_requested ? "Cancelling…" : "Cancel", "cancel-run",
        () => act(`/api/runs/${run.id}/cancel`, "POST", "Cancel this run? A running trainer checkpoints first, so it can be resumed."), { danger: true }));
    }
    // Resume where both the status and the kind allow it (catalog.resumable_kinds: eval and export are cloned).
    const resumable = catalog?.resumable_statuses.includes(run.status) && (catalog.resumable_kinds || []).includes(run.kind);
    // Stopped before its first checkpoint there is nothing to continue: Resume would start it over at
    // step 0, so Clone (a copy the user can change first) is the primary action.
    const noCheckpoint = hasCheckpoint === false;
    if (resumable) actions.push(actionButton(noCheckpoint ? "Restart" : "Resume", "resume-run", () => act(`/api/runs/${run.id}/resume`, "POST"), { primary: !noCheckpoint }));
    // A completed run that left a checkpoint (catalog.training_kinds) can be exported for deployment.
    if (run.status === "completed" && catalog?.training_kinds.includes(run.kind)) {
      actions.push(actionButton("Export…", "export-run", toggleExport, { primary: !exportPanel.firstChild }));
    }
    if (run.status === "completed" && catalog?.training_kinds.includes(run.kind)) {
      actions.push(h("a", { class: "button", id: "evaluate-run", href: `/launch?kind=eval&evaluate=${run.id}`, "data-link": true, title: "Open the evaluation form with this run's checkpoint" }, "Evaluate…"));
    }
    const clonePrimary = run.status === "failed" && (!resumable || noCheckpoint);
    actions.push(h("a", { class: clonePrimary ? "button primary" : "button", id: "clone-run", href: `/launch?clone=${run.id}`, "data-link": true }, "Clone"));
    actions.push(h("a", { class: "button", href: `/compare?runs=${run.id}`, "data-link": true }, "Compare…"));
    if (active === false) {
      actions.push(actionButton("Delete", "delete-run", () => act(`/api/runs/${run.id}`, "DELETE", "Delete this run, its metrics, logs and run directory? This cannot be undone."), { danger: true }));
    }
    const latest = run.latest_metrics || {};
    const facts = [
      ["Kind", run.kind], ["Method", config.method || config.loss || (config.protocols || []).join(", ") || (config.format ? `export: ${config.format}${config.quantize === "int8" ? " int8" : ""}` : "–")],
      ["Backbone", run.backbone || "–"], ["Parameters", fmtParams(paramsOf(run, catalog))], ["Dataset", config.dataset || "–"],
      [run.kind === "eval" ? "kNN top-1" : "kNN top-1 (validation, latest)", knnFact(run)], ["Step", run.progress.step != null ? `${run.progress.step}${run.progress.total_steps ? ` / ${run.progress.total_steps}` : ""}` : "–"],
      ["Throughput", rate(latest.images_per_sec)], ["Loss (latest)", number(latest.loss)],
      ...(active && typeof run.progress.eta_seconds === "number" ? [["ETA", h("span", { id: "run-eta" }, duration(run.progress.eta_seconds))]] : []),
      ["Created", relativeTime(run.created_at)], ["Worker", run.worker_name || "–"], ["Attempt", String(run.attempt)],
    ];
    // The chain, both ways: a training run links its evaluation, an evaluation the run it measures.
    const link = (id, text) => h("a", { href: `/runs/${id}`, "data-link": true }, text);
    if (run.parent_id) facts.push([{ eval: "Evaluates", export: "Exports" }[run.kind] || "Cloned from", link(run.parent_id, run.parent_id)]);
    if (run.evaluation_id) facts.push(["Evaluation", link(run.evaluation_id, run.evaluation_id)]);
    else if (run.evaluate) facts.push(["Evaluation", h("span", { class: "muted" }, run.status === "completed" ? "being queued…" : "queued when this run completes")]);
    if (run.sweep_id) facts.push(["Sweep", h("a", { href: `/sweeps/${run.sweep_id}`, "data-link": true }, run.sweep_id)]);
    fill(header, 
      h("div", { class: "page-head" },
        swatch(styleAt(0)),
        h("h1", {}, runLabel(run)), h("span", { class: "mono muted" }, run.id),
        statusPill(run.status), progressBar(run, true) || "", h("span", { class: "spacer" }), actions),
      (run.tags || []).length ? h("div", {}, run.tags.map((tag) => h("span", { class: "tag" }, tag))) : null,
      h("div", { class: "summary-grid", id: "summary" }, facts.map(([label, value]) => h("div", {}, h("span", {}, label), value))),
    );
    renderDataBound();
    clear(notice);
    const restartNote = "It stopped before writing its first checkpoint, so there is nothing to continue from: Clone starts a copy you can change first; Restart runs this one again from step 0.";
    const failedNote = resumable === false ? "Fix the cause, then Clone (runs it again)."
      : noCheckpoint ? `Fix the cause. ${restartNote}` : "Fix the cause, then Resume (continues from the last checkpoint) or Clone (starts again).";
    const resumeNote = noCheckpoint ? restartNote : "Resume continues from its last checkpoint.";
    if (run.status === "failed") notice.append(h("div", { class: "error-box", id: "run-error" }, h("strong", {}, "This run failed. "), run.error || `exit code ${run.exit_code}`, h("br"), failedNote));
    if (run.status === "interrupted") notice.append(h("div", { class: "error-box", id: "run-error" }, h("strong", {}, "This run was interrupted. "), run.error || "Its worker stopped sending heartbeats.", h("br"), resumeNote));
    if (run.status === "cancelled") notice.append(h("div", { class: "notice", id: "run-cancelled" }, `Cancelled${run.progress.step ? ` at step ${run.progress.step}` : ""}. `, resumable ? resumeNote : "Clone runs it again."));
    showStreamState();
    if (run.status === "queued") notice.append(h("div", { class: "notice", id: "queued-note" }, "Queued: waiting for a worker. The light in the top bar says whether one is alive."));
  }

  // A finished run's stream stays open (a resume would bring new points), but nothing is live any more:
  // no green "live" badge on it.
  function showStreamState() {
    const finished = Boolean(catalog && run && !catalog.active_statuses.includes(run.status));
    const state = finished && lastStreamState === "live" ? "finished" : lastStreamState;
    streamState.className = `stream-state ${state}`;
    streamState.textContent = { live: "live", finished: "finished: no new points", reconnecting: "reconnecting…", paused: "paused while the tab is hidden" }[state] || "connecting…";
  }

  // The plain sentence a researcher needs before tuning the model: is the data path the bottleneck?
  function renderDataBound() {
    const wait = run.latest_metrics?.[DATA_WAIT_KEY];
    const threshold = catalog?.data_bound_wait_percent;
    if (typeof wait !== "number" || typeof threshold !== "number") {
      dataBound.textContent = "";
      dataBound.className = "";
      return;
    }
    const share = `${Math.round(wait)} %`;
    if (wait > threshold) {
      dataBound.className = "notice";
      dataBound.textContent = `This run is data-bound: it spent ${share} of its step time waiting for the next batch (above ${threshold} %). More data-loader workers (num_workers) or a faster data path would speed it up; a faster model would not.`;
    } else {
      dataBound.className = "muted";
      dataBound.textContent = `Not data-bound: ${share} of its step time went to waiting for data (data-bound above ${threshold} %).`;
    }
  }

  function toggleExport() {
    if (exportPanel.firstChild) {
      clear(exportPanel);
    } else {
      fill(exportPanel, exportForm(run, { onClose: () => { clear(exportPanel); renderHeader(); } }));
      exportPanel.querySelector("select")?.focus();
    }
    renderHeader();
  }

  function renderConfig() {
    clear(configTable);
    for (const [key, value] of Object.entries(run.config || {})) {
      configTable.append(h("tr", {}, h("td", {}, key), h("td", { class: "mono" }, Array.isArray(value) ? value.join(", ") : value === null ? "none" : String(value))));
    }
  }

  async function renderArtifacts() {
    try {
      const artifacts = await api(`/api/runs/${runId}/artifacts`);
      const had = hasCheckpoint;
      hasCheckpoint = artifacts.data.some((item) => item.name === "checkpoint.pth");
      if (had !== hasCheckpoint && run && !stopped) renderHeader();
      clear(artifactList);
      if (!artifacts.data.length) artifactList.append(h("li", { class: "muted" }, "Nothing written yet."));
      for (const item of artifacts.data) {
        artifactList.append(h("li", {}, h("a", { href: `/api/runs/${runId}/artifacts/${item.name.split("/").map(encodeURIComponent).join("/")}`, download: true }, item.name),
          h("span", { class: "muted" }, ` ${(item.size / 1024).toFixed(1)} KiB`)));
      }
      if (artifacts.data.some((item) => item.name === "results.json")) renderResults();
      const manifest = artifacts.data.find((item) => item.name.endsWith(".manifest.json"));
      if (manifest) renderManifest(manifestBox, runId, manifest.name).catch(() => {});
    } catch (exc) {
      fill(artifactList, h("li", { class: "field-error" }, `Could not list artifacts: ${exc.message}`));
    }
  }

  async function renderResults() {
    try {
      const response = await fetch(`/api/runs/${runId}/artifacts/results.json`, { credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      const rows = data.results || [];
      fill(resultsBox, h("h2", {}, "Evaluation results (this run, measured)"),
        h("table", { class: "data", id: "results-table" },
          h("thead", {}, h("tr", {}, ["protocol", "labels", "top-1 mean", "± std", "seeds", "image size"].map((t, i) => h("th", { class: i >= 2 ? "num" : "" }, t)))),
          h("tbody", {}, rows.map((row) => h("tr", {},
            h("td", {}, row.column || row.protocol), h("td", { class: "num" }, `${Math.round(row.label_fraction * 100)} %`),
            h("td", { class: "num" }, pct(row.mean)), h("td", { class: "num" }, number(row.std)),
            h("td", { class: "num" }, (row.seeds || []).join(", ")), h("td", { class: "num" }, row.image_size || data.image_size ? `${row.image_size || data.image_size} px` : "–"))))));
    } catch {
      // results.json is optional; the artifacts list links to it anyway.
    }
  }

  async function loadLogs() {
    try {
      const logs = await api(`/api/runs/${runId}/logs?tail=300`);
      logBox.textContent = logs.lines.join("\n");
      logBox.scrollTop = logBox.scrollHeight;
    } catch (exc) {
      logBox.textContent = `Could not load the log: ${exc.message}`;
    }
  }

  function appendLog(lines) {
    const atBottom = logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 40;
    logBox.textContent += (logBox.textContent ? "\n" : "") + lines.join("\n");
    if (logBox.textContent.length > MAX_LOG_LINES * 200) {
      logBox.textContent = logBox.textContent.split("\n").slice(-MAX_LOG_LINES).join("\n");
    }
    if (atBottom) logBox.scrollTop = logBox.scrollHeight;
  }

  // ----- charts -----
  function traceFor(series, index = 0) {
    return {
      type: traceType(series.y.length), mode: series.y.length < 3 ? "lines+markers" : "lines", name: series.key,
      x: series.x, y: series.y, line: { dash: DASHES[index % DASHES.length] },
      hovertemplate: `${series.key}: %{y:.4g}<br>step %{x}<extra>${runLabel(run)}${series.downsampled ? " · each point stands for a bucket" : ""}</extra>`,
    };
  }

  function createChart(group) {
    // A figure, not role="img": Plotly's own buttons live inside the chart and must stay reachable.
    const div = h("div", { class: "chart", "data-chart": group.id });
    const system = group.section === "system";
    (system ? systemGrid : chartGrid).append(h("figure", { class: "chart-box", "aria-label": `${group.title} chart` }, div));
    if (system) systemSection.hidden = false;
    const chart = { div, group, keys: [], index: new Map(), last: new Map(), range: null, collapse: [] };
    charts.set(group.id, chart);
    Plotly.newPlot(div, [], layout({ title: group.title, yTitle: group.y }), CONFIG);
    div.on("plotly_relayout", (event) => onZoom(chart, event));
    return chart;
  }

  function chartLayout(chart) {
    const extra = chart.group.id === "loss" && chart.collapse.length ? markerShapes(chart.collapse, "collapse warning") : {};
    const base = layout({ title: chart.group.title, yTitle: chart.group.y, extra });
    if (chart.range) base.xaxis = { ...base.xaxis, range: chart.range, autorange: false };
    return base;
  }

  function drawChart(chart, seriesList) {
    chart.keys = seriesList.map((series) => series.key);
    chart.index = new Map(chart.keys.map((key, i) => [key, i]));
    chart.last = new Map(seriesList.map((series) => [series.key, series.x[series.x.length - 1] ?? -Infinity]));
    const traces = revealTwins(seriesList.map((series, i) => traceFor(series, i)));
    chart.flat = flatRange(traces) !== null;
    Plotly.react(chart.div, traces, withFlatRange(chartLayout(chart), traces), CONFIG);
  }

  async function fetchSeries(keys, range) {
    const query = new URLSearchParams({ max_points: String(MAX_POINTS) });
    if (keys) query.set("keys", keys.join(","));
    if (range) {
      query.set("start", String(Math.floor(range[0])));
      query.set("end", String(Math.ceil(range[1])));
    }
    return (await api(`/api/runs/${runId}/metrics?${query}`)).series;
  }

  async function loadCharts(seriesPromise) {
    const series = await (seriesPromise || fetchSeries(null, null));
    if (stopped) return;
    const collapse = series.find((item) => item.key === COLLAPSE_KEY);
    const groups = groupKeys(series.map((item) => item.key));
    clear(chartGrid);
    clear(systemGrid);
    systemSection.hidden = true;
    charts.clear();
    if (!groups.length) {
      chartGrid.append(h("p", { class: "muted", id: "no-metrics" }, run.kind === "export" ? "An export records no curves: its result is the artifact and its parity, above." : run.status === "queued" ? "Curves appear here as soon as the run starts training." : "No metrics recorded."));
    }
    for (const group of groups) {
      const chart = createChart(group);
      if (group.id === "loss" && collapse) chart.collapse = collapse.x.slice();
      drawChart(chart, series.filter((item) => group.keys.includes(item.key)));
    }
  }

  async function onZoom(chart, event) {
    let range = null;
    if (event["xaxis.range[0]"] !== undefined) range = [event["xaxis.range[0]"], event["xaxis.range[1]"]];
    else if (Array.isArray(event["xaxis.range"])) range = event["xaxis.range"];
    else if (!event["xaxis.autorange"]) return;
    chart.range = range;
    try {
      // A finer downsample of the visible range: zooming in shows real points, not bucket extremes.
      const series = await fetchSeries(chart.keys, range);
      if (!stopped) drawChart(chart, series);
    } catch (exc) {
      showBanner(`Could not load the zoomed range: ${exc.message}`);
    }
  }

  function applyMetricEvent(data) {
    if (data.truncated) return loadCharts();
    run.progress = { step: data.step, total_steps: data.total_steps, fraction: data.fraction, eta_seconds: data.eta_seconds };
    const byKey = new Map();
    for (const point of data.points || []) {
      if (!byKey.has(point.key)) byKey.set(point.key, { x: [], y: [] });
      byKey.get(point.key).x.push(point.step);
      byKey.get(point.key).y.push(point.value);
      run.latest_metrics[point.key] = point.value;
    }
    const perChart = new Map();
    for (const [key, points] of byKey) {
      if (key === COLLAPSE_KEY) {
        const loss = charts.get("loss");
        if (loss) {
          loss.collapse.push(...points.x);
          Plotly.relayout(loss.div, markerShapes(loss.collapse, "collapse warning"));
        }
        continue;
      }
      const group = groupFor(key);
      document.getElementById("no-metrics")?.remove();
      const chart = charts.get(group.id) || createChart({ ...group, keys: [] });
      if (!perChart.has(chart)) perChart.set(chart, []);
      perChart.get(chart).push([key, points]);
    }
    for (const [chart, items] of perChart) {
      const indices = [], xs = [], ys = [];
      let rewound = false;
      for (const [key, points] of items) {
        if (!chart.index.has(key)) {
          chart.index.set(key, chart.keys.length);
          chart.keys.push(key);
          chart.last.set(key, -Infinity);
          Plotly.addTraces(chart.div, traceFor({ key, x: [], y: [], downsampled: false }, chart.keys.length - 1));
        }
        // A resumed run rewrites steps after its checkpoint: redraw instead of drawing backwards.
        if (points.x[0] <= chart.last.get(key)) rewound = true;
        chart.last.set(key, points.x[points.x.length - 1]);
        indices.push(chart.index.get(key));
        xs.push(points.x);
        ys.push(points.y);
      }
      if (rewound) {
        fetchSeries(chart.keys, chart.range).then((series) => !stopped && drawChart(chart, series));
        continue;
      }
      Plotly.extendTraces(chart.div, { x: xs, y: ys }, indices);
      if (chart.flat) {
        // A series flat so far got its own y range; once it moves, Plotly's autorange takes over again.
        const range = flatRange(chart.div.data);
        chart.flat = range !== null;
        Plotly.relayout(chart.div, range ? { "yaxis.range": range, "yaxis.autorange": false } : { "yaxis.autorange": true });
      }
      if (!chart.range && !chart.refreshing && chart.div.data.some((trace) => trace.x.length > 4 * MAX_POINTS)) {
        // A long live run would grow the traces without bound: swap in a fresh downsample now and then.
        chart.refreshing = true;
        fetchSeries(chart.keys, null)
          .then((series) => !stopped && drawChart(chart, series))
          .finally(() => { chart.refreshing = false; });
      }
      if (chart.range && follow.checked) {
        const newest = Math.max(...xs.flat());
        if (newest > chart.range[1]) {
          const width = chart.range[1] - chart.range[0];
          chart.range = [newest - width, newest];
          Plotly.relayout(chart.div, { "xaxis.range": chart.range });
        }
      }
    }
    renderHeaderSoon();
  }

  let headerTimer = null;
  function renderHeaderSoon() {
    if (headerTimer) return;
    headerTimer = setTimeout(() => { headerTimer = null; if (!stopped) renderHeader(); }, 500);
  }

  async function onStatus() {
    try {
      run = await api(`/api/runs/${runId}`);
      if (stopped) return;
      renderHeader();
      notes?.update(run);
      renderArtifacts();
    } catch (exc) {
      showBanner(`Could not refresh the run: ${exc.message}`);
    }
  }

  function retryCatalog() {
    getCatalog().then((found) => { catalog = found; if (!stopped && run) renderHeader(); })
      .catch((exc) => showBanner(`Could not load the server's catalog: ${exc.message}`, { retry: retryCatalog }));
  }

  async function start() {
    // Everything the first chart needs is requested at once: the chart library, the log, the run, its series.
    const plotlyPromise = ensurePlotly();
    plotlyPromise.catch(() => {});
    const catalogPromise = getCatalog().catch(() => null);
    // The log tail before the run: the run's last_event_id then covers every line in that tail, so
    // the stream (which starts after it) never repeats one.
    await loadLogs();
    try {
      run = await api(`/api/runs/${encodeURIComponent(runId)}`);
    } catch (exc) {
      fill(root, h("div", { class: "empty" }, h("h1", {}, exc.status === 404 ? "No such run" : "Could not load this run"), exc.message,
        h("br"), h("a", { href: "/runs", "data-link": true, class: "button" }, "Back to runs")));
      return;
    }
    const seriesPromise = fetchSeries(null, null);
    seriesPromise.catch(() => {});
    document.title = `${runLabel(run)} · LowDINO`;
    catalog = await catalogPromise;
    if (stopped) return;
    renderHeader();
    renderConfig();
    notes = notesPanel(run, {
      onSaved: (saved) => {
        run = { ...run, name: saved.name, tags: saved.tags, notes: saved.notes };
        document.title = `${runLabel(run)} · LowDINO`;
        renderHeader();
      },
    });
    notesSlot.append(notes.element);
    if (!catalog) showBanner("Could not load the server's catalog: Cancel, Resume and Delete appear once it answers.", { retry: retryCatalog });
    try {
      Plotly = await plotlyPromise;
      await loadCharts(seriesPromise);
    } catch (exc) {
      showBanner(`Could not draw the charts: ${exc.message}`, { retry: () => loadCharts() });
    }
    if (stopped) return;
    // Events after the snapshot just drawn; earlier ones are already in the charts.
    stream = followEvents(runId, {
      after: run.last_event_id || 0,
      onState: (state) => {
        lastStreamState = state;
        showStreamState();
      },
      onEvent: (type, data) => {
        if (type === "metric") applyMetricEvent(data);
        else if (type === "status") onStatus();
        else if (type === "log") appendLog(data.lines || []);
      },
    });
    renderArtifacts();
  }

  start();
  return () => {
    stopped = true;
    stream?.close();
    clearTimeout(headerTimer);
    for (const chart of charts.values()) window.Plotly?.purge(chart.div);
    document.title = "LowDINO";
  };
}

// A training run's first kNN look is at step 0, before any update, and the server never counts it as a
// best: while it is the only look, say so, or the untrained network's figure reads as a result.
function knnFact(run) {
  const knn = knnOf(run);
  const onlyTheStep0Look = run.kind !== "eval" && knn != null && !(run.best_metrics || {}).knn_top1;
  return onlyTheStep0Look ? `${pct(knn)} (step 0: random init)` : pct(knn);
}
